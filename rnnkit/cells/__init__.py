"""Recurrent cells: one module per family, each the equations of one time step."""
from .base import Cell, CellConfig, StepContext, resolve_activation
from .elman import ElmanCell, ElmanConfig
from .gru import GRUCell, GRUConfig
from .indrnn import IndRNNCell, IndRNNConfig
from .jordan import JordanCell, JordanConfig
from .lstm import LSTMCell, LSTMConfig
from .minrnn import MinGRUCell, MinLSTMCell, MinRNNConfig

__all__ = [
    "Cell", "CellConfig", "StepContext", "resolve_activation",
    "ElmanCell", "ElmanConfig", "JordanCell", "JordanConfig", "LSTMCell", "LSTMConfig",
    "GRUCell", "GRUConfig", "IndRNNCell", "IndRNNConfig", "MinGRUCell", "MinLSTMCell", "MinRNNConfig",
]
