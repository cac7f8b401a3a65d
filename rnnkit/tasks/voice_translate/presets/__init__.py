"""Presets of the voice-translate task (``rnnkit train voice-translate --preset NAME``)."""
