"""rnnkit: recurrent neural networks on PyTorch: cells, drop-in layers, fast engines, training, tasks."""
from . import cells, engines, layers
from .layers import GRU, LSTM, RNN, Recurrent, build_layer, detach_state

__version__ = "0.1.0"

__all__ = ["RNN", "LSTM", "GRU", "Recurrent", "build_layer", "detach_state", "cells", "engines", "layers"]
