"""Reusable model blocks shared by tasks: acoustic features, encoders, decoders."""
