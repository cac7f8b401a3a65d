"""Drop-in replacements for torch.nn.RNN, LSTM and GRU.

Same constructor arguments, ``forward(input, hx)`` signature, output shapes, parameter names and
state_dict keys (``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``...): ``named_parameters()``
yields torch.nn's names in torch.nn's order (also inside a parent module: ``rnn.weight_ih_l0``), and a
state_dict moves between ``torch.nn.LSTM`` and ``rnnkit.LSTM`` in both directions and gives the same
results. In addition:
``lengths=`` with a padded batch, ``engine=``, the regularisers of ``rnnkit.Recurrent``, ``run()``
for every step's state, and ``explain()``. Initialisation is torch's (no forget-gate bias offset).
"""
from __future__ import annotations

import re
from typing import List

from ..cells.elman import ElmanCell, ElmanConfig
from ..cells.gru import GRUCell, GRUConfig
from ..cells.lstm import LSTMCell, LSTMConfig
from .recurrent import Recurrent

_TORCH_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
_TORCH_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


class _TorchCompatible(Recurrent):
    """Maps torch.nn's flat parameter names onto the per-cell parameters.

    The cells own their parameters (the engines read ``cell.weight_ih``); the layer registers the same
    Parameter objects once more under torch.nn's names, in torch.nn's order. ``named_parameters()`` and
    ``parameters()`` drop the second sighting of each tensor, so they yield each parameter once, under
    its torch.nn name, first, as torch.nn.LSTM does. ``_apply`` (``.to``, ``.double()``...), assignment of
    a torch name and ``load_state_dict(assign=True)`` keep the two registrations the same objects.
    """

    def __init__(self, cell, num_layers, bidirectional, batch_first, dropout, device, dtype, **extra):
        super().__init__(cell, num_layers, bidirectional=bidirectional, batch_first=batch_first,
                         dropout=dropout, **extra)
        self._alias_parameters()
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)
        self._register_state_dict_hook(_rename_to_torch)
        self._register_load_state_dict_pre_hook(_rename_from_torch, with_module=True)
        self.register_load_state_dict_post_hook(lambda module, keys: module._alias_parameters())

    def _alias_parameters(self) -> None:
        """Register each cell's parameters on the layer under torch.nn's names, in torch.nn's order."""
        for name in [n for n in self._parameters if _TORCH_KEY.match(n)]:
            del self._parameters[name]
        for i, cell in enumerate(self._cell_list()):
            for p in _TORCH_PARAMS:
                value = getattr(cell, p, None)
                if value is not None:
                    self._parameters[self._torch_name(i, p)] = value

    def _apply(self, fn, recurse=True):
        # the cells convert their parameters; the layer's torch-named entries then point at the results
        for name in [n for n in self._parameters if _TORCH_KEY.match(n)]:
            del self._parameters[name]
        try:
            return super()._apply(fn, recurse)
        finally:
            self._alias_parameters()

    def __setattr__(self, name: str, value) -> None:
        key = self._cell_key(name) if "_modules" in self.__dict__ and _TORCH_KEY.match(name) else None
        if key is None:
            super().__setattr__(name, value)
            return
        setattr(self._cell_list()[key[0]], key[1], value)  # the cell owns it; the layer's entry follows
        self._alias_parameters()

    def _torch_name(self, index: int, param: str) -> str:
        k, d = divmod(index, self.num_directions)
        return f"{param}_l{k}{'_reverse' if d else ''}"

    def _cell_key(self, torch_name: str):
        m = _TORCH_KEY.match(torch_name)
        if m is None:
            return None
        param, k, rev = m.group(1), int(m.group(2)), bool(m.group(3))
        if k >= self.num_layers or (rev and not self.bidirectional):
            return None
        return k * self.num_directions + int(rev), param

    @property
    def _flat_weights_names(self) -> List[str]:
        return [self._torch_name(i, p) for i, cell in enumerate(self.cells)
                for p in _TORCH_PARAMS if getattr(cell, p, None) is not None]

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(cell, p) for p in _TORCH_PARAMS if getattr(cell, p, None) is not None]
                for cell in self.cells]

    def flatten_parameters(self) -> None:
        """Compact the weights into one buffer for cuDNN (done automatically on the first CUDA call)."""
        if self.cells[0].weight_ih.is_cuda:
            from ..engines.native import NativeEngine
            NativeEngine().flatten(self._cell_list(), self.num_layers, self.bidirectional)

    def __getattr__(self, name: str):
        if name.startswith(("weight_", "bias_")) and _TORCH_KEY.match(name):
            key = self._cell_key(name)
            if key is not None:
                value = getattr(self._modules["cells"][key[0]], key[1])
                if value is not None:
                    return value
        return super().__getattr__(name)


def _rename_to_torch(module, state_dict, prefix, local_metadata):
    """One key per parameter, torch.nn's: the cells' entries are the same tensors as the torch-named ones."""
    for i, cell in enumerate(module.cells):
        for p in _TORCH_PARAMS:
            old = f"{prefix}cells.{i}.{p}"
            if old in state_dict:
                state_dict[prefix + module._torch_name(i, p)] = state_dict.pop(old)
    return state_dict


def _rename_from_torch(module, state_dict, prefix, local_metadata, strict, missing_keys,
                       unexpected_keys, error_msgs):
    """torch.nn's keys load the layer's torch-named entries; the cells' entries (the same tensors) get a
    copy of each key, so that neither is reported missing."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        found = module._cell_key(key[len(prefix):])
        if found is not None:
            state_dict[f"{prefix}cells.{found[0]}.{found[1]}"] = state_dict[key]


def _check_bias(bias):
    if not isinstance(bias, bool):
        raise ValueError(f"bias must be True or False, got {bias!r}")


class RNN(_TorchCompatible):
    """Elman RNN, as torch.nn.RNN: nonlinearity 'tanh' or 'relu' (rnnkit also takes 'sigmoid',
    'identity' or a callable; those run on rnnkit's own engines)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity="tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None, **rnnkit_options):
        _check_bias(bias)
        cell = ElmanCell(ElmanConfig(input_size, hidden_size, bias=bias, activation=nonlinearity))
        super().__init__(cell, num_layers, bidirectional, batch_first, dropout, device, dtype, **rnnkit_options)
        self.nonlinearity = nonlinearity
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


class LSTM(_TorchCompatible):
    """LSTM, as torch.nn.LSTM (proj_size included)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, **rnnkit_options):
        _check_bias(bias)
        cell = LSTMCell(LSTMConfig(input_size, hidden_size, bias=bias, proj_size=proj_size, forget_bias=0.0))
        super().__init__(cell, num_layers, bidirectional, batch_first, dropout, device, dtype, **rnnkit_options)
        self.proj_size = proj_size
        self.mode = "LSTM"


class GRU(_TorchCompatible):
    """GRU, as torch.nn.GRU (reset gate after the matmul, as cuDNN)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, **rnnkit_options):
        _check_bias(bias)
        cell = GRUCell(GRUConfig(input_size, hidden_size, bias=bias, reset_after=True))
        super().__init__(cell, num_layers, bidirectional, batch_first, dropout, device, dtype, **rnnkit_options)
        self.mode = "GRU"
