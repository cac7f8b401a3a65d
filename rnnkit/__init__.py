"""rnnkit: recurrent neural networks on PyTorch: cells, drop-in layers, fast engines, training, tasks."""
from . import cells, engines, layers
from .layers import GRU, LSTM, RNN, Recurrent, build_layer, detach_state

from rnnkit.version import __version__

__all__ = ["RNN", "LSTM", "GRU", "Recurrent", "build_layer", "detach_state", "cells", "engines", "layers"]
