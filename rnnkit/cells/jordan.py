"""Jordan network (Jordan 1986): the context fed back is the previous *output*, not the hidden state.

    h_t = act(W_hx x_t + b_ih + W_hy y_{t-1})        (H)
    y_t = out_act(W_yh h_t + b_y)                     (O)

The state carried from step to step is y_t alone (state_sizes == (O,)).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor, nn

from .base import Activation, Cell, OutputLayerConfig, State, StepContext, resolve_activation


@dataclass
class JordanConfig(OutputLayerConfig):
    """output_size: the size of y_t fed back as context, 0 = hidden_size."""

    #: bounded by default: an unbounded output fed back can grow without limit
    out_activation: Activation = "tanh"


class JordanCell(Cell):
    family = "jordan"
    config_class = JordanConfig
    recurrent_weight_name = "weight_hy"
    state_names = ("y",)

    def __init__(self, config: JordanConfig):
        super().__init__(config)
        H, I, O = config.hidden_size, config.input_size, config.output_size or config.hidden_size
        self.act = resolve_activation(config.activation)
        self.out_act = resolve_activation(config.out_activation, "out_activation")
        self._parameter("weight_ih", H, I)
        self._parameter("weight_hy", H, O)
        self._parameter("weight_yh", O, H)
        self._parameter("bias_ih", H, present=config.bias)
        self._parameter("bias_y", O, present=config.bias)
        self._init_initial_state()
        self.reset_parameters()

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        return (self.config.output_size or self.hidden_size,)

    def project_input(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight_ih, self.bias_ih)  # (..., H)

    def recur(self, xp_t: Tensor, state: State, ctx: StepContext) -> State:
        y = state[0]
        if ctx.h_mask is not None:
            y = y * ctx.h_mask
        h = self.act(torch.addmm(xp_t, y, ctx.weights["weight_hy"].t()))  # (B, H)
        return (self.out_act(nn.functional.linear(h, self.weight_yh, self.bias_y)),)  # (B, O)
