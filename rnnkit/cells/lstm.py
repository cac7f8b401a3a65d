"""LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

Gate order i, f, g, o and parameter names as torch.nn.LSTM, so weights load across::

    gates = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh                         (B, 4H)
    i = sigmoid(g_i [+ w_ci * c_{t-1}])   f = sigmoid(g_f [+ w_cf * c_{t-1}])
    g = tanh(g_g)                          c_t = f * c_{t-1} + i * g
    o = sigmoid(g_o [+ w_co * c_t])        h_t = o * tanh(c_t)       [h_t = W_hr h_t  (proj_size)]

Options: peepholes (Gers & Schmidhuber 2000), layer normalisation (Ba et al. 2016: LN on the input
and recurrent pre-activations and on c_t before the output tanh), projection (Sak et al. 2014,
torch's proj_size), the forget-gate bias initialisation (Jozefowicz et al. 2015: +1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor, nn

from .base import Cell, CellConfig, State, StepContext, layer_norm


@dataclass
class LSTMConfig(CellConfig):
    proj_size: int = 0
    peephole: bool = False
    layer_norm: bool = False
    #: added to the forget-gate bias after initialisation (torch.nn.LSTM compatibility: 0)
    forget_bias: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.proj_size, int) or self.proj_size < 0:
            raise ValueError(f"proj_size must be an integer >= 0, got {self.proj_size!r}")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size must be smaller than hidden_size ({self.hidden_size}), "
                             f"got {self.proj_size}")


class LSTMCell(Cell):
    family = "lstm"
    config_class = LSTMConfig
    state_names = ("h", "c")

    def __init__(self, config: LSTMConfig):
        super().__init__(config)
        H, I = config.hidden_size, config.input_size
        P = config.proj_size or H
        self._parameter("weight_ih", 4 * H, I)
        self._parameter("weight_hh", 4 * H, P)
        self._parameter("bias_ih", 4 * H, present=config.bias)
        self._parameter("bias_hh", 4 * H, present=config.bias)
        self._parameter("weight_hr", P, H, present=bool(config.proj_size))
        if config.peephole:
            for name in ("weight_ci", "weight_cf", "weight_co"):
                self._parameter(name, H)
        if config.layer_norm:
            for name, size in (("ln_ih", 4 * H), ("ln_hh", 4 * H), ("ln_c", H)):
                self._parameter(f"{name}_weight", size)
                self._parameter(f"{name}_bias", size)
        self._init_initial_state()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        H = self.hidden_size
        if self.bias_ih is not None and self.config.forget_bias:
            with torch.no_grad():
                self.bias_ih[H:2 * H] += self.config.forget_bias

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        return (self.config.proj_size or self.hidden_size, self.hidden_size)  # (h, c)

    def project_input(self, x: Tensor) -> Tensor:
        if self.config.layer_norm:
            xp = layer_norm(nn.functional.linear(x, self.weight_ih), self.ln_ih_weight, self.ln_ih_bias)
            return xp + (self.bias_ih + self.bias_hh) if self.bias_ih is not None else xp
        b = self.bias_ih + self.bias_hh if self.bias_ih is not None else None
        return nn.functional.linear(x, self.weight_ih, b)  # (..., 4H)

    def recur(self, xp_t: Tensor, state: State, ctx: StepContext) -> State:
        h, c = state
        if ctx.h_mask is not None:
            h = h * ctx.h_mask
        w_hh = ctx.weights["weight_hh"]
        if self.config.layer_norm:
            gates = xp_t + layer_norm(h @ w_hh.t(), self.ln_hh_weight, self.ln_hh_bias)
        else:
            gates = torch.addmm(xp_t, h, w_hh.t())  # (B, 4H)
        gi, gf, gg, go = gates.chunk(4, dim=1)
        if self.config.peephole:
            gi = gi + self.weight_ci * c
            gf = gf + self.weight_cf * c
        i, f, g = torch.sigmoid(gi), torch.sigmoid(gf), torch.tanh(gg)
        c_new = f * c + i * g
        if self.config.peephole:
            go = go + self.weight_co * c_new
        o = torch.sigmoid(go)
        c_out = layer_norm(c_new, self.ln_c_weight, self.ln_c_bias) if self.config.layer_norm else c_new
        h_new = o * torch.tanh(c_out)
        if self.weight_hr is not None:
            h_new = h_new @ self.weight_hr.t()  # (B, P)
        if ctx.trace is not None:
            ctx.trace.append({"i": i, "f": f, "g": g, "o": o})
        return (h_new, c_new)
