"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv:2410.01201).

Both gates depend on x_t only, so one step is the linear recurrence ``h_t = a_t * h_{t-1} + b_t``
with ``a_t`` in (0, 1) and ``b_t`` computed from x_t alone; a whole sequence is then a parallel
scan (``rnnkit.engines.scan``) instead of a loop. The step mode below and the scan compute the
same function; the equations live here, in :meth:`scan_coefficients`::

    minGRU:   z = sigmoid(W_z x + b_z)      h~ = g(W_h x + b_h)
              h_t = (1 - z) * h_{t-1} + z * h~          a = 1 - z,  b = z * h~
    minLSTM:  f = sigmoid(W_f x + b_f)      i = sigmoid(W_i x + b_i)      h~ = g(W_h x + b_h)
              f' = f / (f + i)   i' = i / (f + i)       (length-independent normalisation)
              h_t = f' * h_{t-1} + i' * h~               a = f', b = i' * h~

``g`` is the paper's positive activation for the log-space version (``g(x) = x + 0.5`` for
x >= 0, ``sigmoid(x)`` otherwise) when ``positive_candidate=True`` (default); with False, h~ is the
raw linear projection (the paper's non-log version) and the scan runs in linear space.

Input projection layout (G = 2H for minGRU: [z | h~]; G = 3H for minLSTM: [f | i | h~]).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Cell, CellConfig, State, StepContext, uniform_init_


def g_positive(x: Tensor) -> Tensor:
    """Feng et al.'s continuous positive activation: x + 0.5 for x >= 0, sigmoid(x) below."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g_positive(x: Tensor) -> Tensor:
    """log(g(x)) computed without forming g: log(x + 0.5) for x >= 0, -softplus(-x) below."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


@dataclass
class MinRNNConfig(CellConfig):
    #: apply g() to the candidate (needed by the log-space scan; Feng et al.'s default)
    positive_candidate: bool = True


class _MinRNNCell(Cell):
    """Shared parts of minGRU/minLSTM: a gate block projection and the linear-recurrence step."""

    recurrent_weight_name = None  # no recurrent matrix: DropConnect does not apply
    n_gates = 0  # blocks of H in the input projection

    def __init__(self, config: MinRNNConfig):
        super().__init__(config)
        H, I = config.hidden_size, config.input_size
        self.weight_ih = nn.Parameter(torch.empty(self.n_gates * H, I))
        if config.bias:
            self.bias_ih = nn.Parameter(torch.empty(self.n_gates * H))
        else:
            self.register_parameter("bias_ih", None)
        self._init_initial_state()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_([p for n, p in self.named_parameters() if not n.startswith("initial_states")],
                      self.hidden_size)

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        return (self.hidden_size,)

    def project_input(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight_ih, self.bias_ih)  # (..., G)

    def candidate(self, pre: Tensor) -> Tensor:
        return g_positive(pre) if self.config.positive_candidate else pre

    def scan_coefficients(self, xp: Tensor) -> Tuple[Tensor, Tensor]:
        """(a, b) of h_t = a * h_{t-1} + b from the projected input xp (..., G); each (..., H)."""
        raise NotImplementedError

    def scan_log_coefficients(self, xp: Tensor) -> Tuple[Tensor, Tensor]:
        """(log a, log b) for the log-space scan; needs positive_candidate=True."""
        raise NotImplementedError

    def recur(self, xp_t: Tensor, state: State, ctx: StepContext) -> State:
        if ctx.h_mask is not None:
            raise ValueError(f"recurrent dropout is not defined for the {self.family} cell "
                             "(no recurrent matmul for the mask to act on)")
        a, b = self.scan_coefficients(xp_t)  # (B, H) each
        if ctx.trace is not None:
            ctx.trace.append({"a": a, "b": b})
        return (a * state[0] + b,)


class MinGRUCell(_MinRNNCell):
    """minGRU: h_t = (1 - z_t) * h_{t-1} + z_t * g(h~_t); projection blocks [z | h~]."""

    family = "mingru"
    config_class = MinRNNConfig
    n_gates = 2

    def scan_coefficients(self, xp: Tensor) -> Tuple[Tensor, Tensor]:
        kz, kh = xp.chunk(2, dim=-1)
        z = torch.sigmoid(kz)
        return 1.0 - z, z * self.candidate(kh)

    def scan_log_coefficients(self, xp: Tensor) -> Tuple[Tensor, Tensor]:
        if not self.config.positive_candidate:
            raise ValueError("the log-space scan needs positive_candidate=True")
        kz, kh = xp.chunk(2, dim=-1)
        return -F.softplus(kz), -F.softplus(-kz) + log_g_positive(kh)


class MinLSTMCell(_MinRNNCell):
    """minLSTM: h_t = f'_t * h_{t-1} + i'_t * g(h~_t), f', i' = f, i normalised to sum to 1."""

    family = "minlstm"
    config_class = MinRNNConfig
    n_gates = 3

    def scan_coefficients(self, xp: Tensor) -> Tuple[Tensor, Tensor]:
        kf, ki, kh = xp.chunk(3, dim=-1)
        # f/(f+i) with f = sigmoid(kf), i = sigmoid(ki), as a sigmoid of a difference (stable)
        d = F.softplus(-kf) - F.softplus(-ki)  # log i - log f
        return torch.sigmoid(-d), torch.sigmoid(d) * self.candidate(kh)

    def scan_log_coefficients(self, xp: Tensor) -> Tuple[Tensor, Tensor]:
        if not self.config.positive_candidate:
            raise ValueError("the log-space scan needs positive_candidate=True")
        kf, ki, kh = xp.chunk(3, dim=-1)
        d = F.softplus(-kf) - F.softplus(-ki)
        return -F.softplus(d), -F.softplus(-d) + log_g_positive(kh)
