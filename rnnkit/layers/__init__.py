"""Layers: the time loop over cells, and drop-in torch.nn.RNN/LSTM/GRU."""
from .build import CELLS, build_layer, make_cell, register_cell
from .recurrent import Recurrent, SequenceResult, check_engine_ran
from .regularizers import Regularization
from .state import detach_state
from .torch_compat import GRU, LSTM, RNN

__all__ = ["Recurrent", "SequenceResult", "RNN", "LSTM", "GRU", "build_layer", "make_cell",
           "register_cell", "CELLS", "detach_state", "Regularization", "check_engine_ran"]
