"""Pure metric functions over arrays and tensors (no models, no I/O)."""
