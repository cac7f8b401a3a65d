"""Presets of the speech-translate task (``rnnkit train speech-translate --preset NAME``)."""
