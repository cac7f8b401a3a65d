"""Task heads and their training entry points (language modelling in :mod:`rnnkit.tasks.lm`)."""
