"""IndRNN (Li et al. 2018, "Independently Recurrent Neural Network"): each unit recurs on itself only.

    h_t = act(W_ih x_t + b + u * h_{t-1})      u a vector (H,), element-wise

The recurrent weight is kept in a stable range by clamping it to [-recurrent_max, recurrent_max]
in the forward pass (|u| <= 1 keeps a ReLU IndRNN from exploding; Li et al. use 2**(1/T) for long T).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from .base import Activation, Cell, CellConfig, State, StepContext, resolve_activation


@dataclass
class IndRNNConfig(CellConfig):
    activation: Activation = "relu"
    recurrent_max: float = 1.0
    recurrent_init: Tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        resolve_activation(self.activation)
        if not self.recurrent_max > 0:
            raise ValueError(f"recurrent_max must be > 0, got {self.recurrent_max!r}")
        lo, hi = self.recurrent_init
        if not (lo <= hi):
            raise ValueError(f"recurrent_init must be (low, high) with low <= high, got {self.recurrent_init!r}")


class IndRNNCell(Cell):
    family = "indrnn"
    config_class = IndRNNConfig

    def __init__(self, config: IndRNNConfig):
        super().__init__(config)
        H, I = config.hidden_size, config.input_size
        self.act = resolve_activation(config.activation)
        self.weight_ih = nn.Parameter(torch.empty(H, I))
        self.weight_hh = nn.Parameter(torch.empty(H))  # the recurrent weight is a vector
        if config.bias:
            self.bias_ih = nn.Parameter(torch.zeros(H))
        else:
            self.register_parameter("bias_ih", None)
        self._init_initial_state()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight_ih, a=5 ** 0.5)
        lo, hi = self.config.recurrent_init
        with torch.no_grad():
            self.weight_hh.uniform_(lo, hi)
            if self.bias_ih is not None:
                self.bias_ih.zero_()

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        return (self.hidden_size,)

    def recurrent_vector(self, w: Optional[Tensor] = None) -> Tensor:
        """The effective recurrent weight u, clamped to the stable range."""
        m = self.config.recurrent_max
        return (self.weight_hh if w is None else w).clamp(-m, m)

    def project_input(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight_ih, self.bias_ih)

    def recur(self, xp_t: Tensor, state: State, ctx: StepContext) -> State:
        h = state[0]
        if ctx.h_mask is not None:
            h = h * ctx.h_mask
        u = self.recurrent_vector(ctx.weights["weight_hh"])  # (H,)
        return (self.act(xp_t + u * h),)
