"""GRU (Cho et al. 2014), both variants. Gate order r, z, n and parameter names as torch.nn.GRU.

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)      z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    reset_after=True  (cuDNN, torch):  n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    reset_after=False (Cho et al.):    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
    h_t = (1 - z) * n + z * h_{t-1}

layer_norm=True normalises the input pre-activations (3H) and the recurrent ones: the whole 3H block
with reset_after, the r/z block (2H) and the candidate block (H) separately without.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor, nn

from .base import Cell, CellConfig, State, StepContext, layer_norm


@dataclass
class GRUConfig(CellConfig):
    reset_after: bool = True
    layer_norm: bool = False


class GRUCell(Cell):
    family = "gru"
    config_class = GRUConfig

    def __init__(self, config: GRUConfig):
        super().__init__(config)
        H, I = config.hidden_size, config.input_size
        self._parameter("weight_ih", 3 * H, I)
        self._parameter("weight_hh", 3 * H, H)
        self._parameter("bias_ih", 3 * H, present=config.bias)
        self._parameter("bias_hh", 3 * H, present=config.bias)
        if config.layer_norm:
            rec = 3 * H if config.reset_after else 2 * H
            for name, size in [("ln_ih", 3 * H), ("ln_hh", rec)] + ([] if config.reset_after else [("ln_hn", H)]):
                self._parameter(f"{name}_weight", size)
                self._parameter(f"{name}_bias", size)
        self._init_initial_state()
        self.reset_parameters()

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        return (self.hidden_size,)

    def project_input(self, x: Tensor) -> Tensor:
        if self.config.layer_norm:
            xp = layer_norm(nn.functional.linear(x, self.weight_ih), self.ln_ih_weight, self.ln_ih_bias)
            return xp + self.bias_ih if self.bias_ih is not None else xp
        return nn.functional.linear(x, self.weight_ih, self.bias_ih)  # (..., 3H)

    def _recurrent(self, h: Tensor, w: Tensor, b, ln_w, ln_b) -> Tensor:
        out = h @ w.t()
        if ln_w is not None:
            out = layer_norm(out, ln_w, ln_b)
        return out + b if b is not None else out

    def recur(self, xp_t: Tensor, state: State, ctx: StepContext) -> State:
        h = state[0]
        H = self.hidden_size
        h_in = h * ctx.h_mask if ctx.h_mask is not None else h
        w_hh = ctx.weights["weight_hh"]
        ln = self.config.layer_norm
        xr, xz, xn = xp_t.chunk(3, dim=1)
        if self.config.reset_after:
            if ln:
                gh = self._recurrent(h_in, w_hh, self.bias_hh, self.ln_hh_weight, self.ln_hh_bias)
            elif self.bias_hh is not None:
                gh = torch.addmm(self.bias_hh, h_in, w_hh.t())  # (B, 3H)
            else:
                gh = h_in @ w_hh.t()
            hr, hz, hn = gh.chunk(3, dim=1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
        else:
            b = self.bias_hh
            ghrz = self._recurrent(h_in, w_hh[: 2 * H], None if b is None else b[: 2 * H],
                                   self.ln_hh_weight if ln else None, self.ln_hh_bias if ln else None)
            hr, hz = ghrz.chunk(2, dim=1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            hn = self._recurrent(r * h_in, w_hh[2 * H:], None if b is None else b[2 * H:],
                                 self.ln_hn_weight if ln else None, self.ln_hn_bias if ln else None)
            n = torch.tanh(xn + hn)
        h_new = n + z * (h - n)  # == (1 - z) * n + z * h
        if ctx.trace is not None:
            ctx.trace.append({"r": r, "z": z, "n": n})
        return (h_new,)
