"""Pure metric functions over predictions and references (no models, no I/O)."""
