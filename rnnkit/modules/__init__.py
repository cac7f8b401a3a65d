"""Reusable model blocks that tasks compose on top of rnnkit's recurrent layers."""
