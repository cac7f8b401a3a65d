"""``build_layer``: a recurrent layer from a cell name, as the CLI and task configs name them."""
from __future__ import annotations

from typing import Dict, Tuple

from ..cells.base import Cell
from ..cells.elman import ElmanCell
from ..cells.gru import GRUCell
from ..cells.indrnn import IndRNNCell
from ..cells.jordan import JordanCell
from ..cells.lstm import LSTMCell
from ..cells.minrnn import MinGRUCell, MinLSTMCell
from .recurrent import Recurrent

#: name -> (cell class, fixed options)
CELLS: Dict[str, Tuple[type, dict]] = {
    "rnn": (ElmanCell, {}),
    "elman": (ElmanCell, {}),
    "jordan": (JordanCell, {}),
    "lstm": (LSTMCell, {}),
    "peephole_lstm": (LSTMCell, {"peephole": True}),
    "lnlstm": (LSTMCell, {"layer_norm": True}),
    "gru": (GRUCell, {}),
    "gru_cho": (GRUCell, {"reset_after": False}),
    "lngru": (GRUCell, {"layer_norm": True}),
    "indrnn": (IndRNNCell, {}),
    "mingru": (MinGRUCell, {}),
    "minlstm": (MinLSTMCell, {}),
}


def register_cell(name: str, cell_class: type, **fixed) -> None:
    """Make a cell class available to build_layer and the CLI under ``name``."""
    CELLS[name] = (cell_class, fixed)


def make_cell(cell: str, input_size: int, hidden_size: int, **options) -> Cell:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
    cls, fixed = CELLS[cell]
    clash = set(fixed) & set(options)
    if clash:
        raise ValueError(f"cell {cell!r} fixes {sorted(clash)}; use the base cell name to set them")
    try:
        return cls.from_options(input_size, hidden_size, **fixed, **options)
    except TypeError as exc:  # an option this cell's config does not have
        raise ValueError(f"bad option for cell {cell!r}: {exc}") from None


def build_layer(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
                bidirectional: bool = False, batch_first: bool = False, dropout: float = 0.0,
                variational_dropout: float = 0.0, recurrent_dropout: float = 0.0, dropconnect: float = 0.0,
                zoneout: float = 0.0, engine: str = "auto", **cell_options) -> Recurrent:
    """A stacked recurrent layer of the named cell; cell_options go to the cell's config."""
    first = make_cell(cell, input_size, hidden_size, **cell_options)
    return Recurrent(first, num_layers, bidirectional=bidirectional, batch_first=batch_first, dropout=dropout,
                     variational_dropout=variational_dropout, recurrent_dropout=recurrent_dropout,
                     dropconnect=dropconnect, zoneout=zoneout, engine=engine)
