"""Elman network (Elman 1990): h_t = act(W_hx x_t + b_ih + W_hh h_{t-1} + b_hh), optional y_t = out_act(W_yh h_t + b_y).

Parameter names follow torch.nn.RNN (weight_ih, weight_hh, bias_ih, bias_hh) so weights load across.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor, nn

from .base import Cell, OutputLayerConfig, State, StepContext, resolve_activation


@dataclass
class ElmanConfig(OutputLayerConfig):
    """activation; output_size: the optional per-step output layer y_t = out_act(W_yh h_t + b_y),
    0 = emit h_t; out_activation (identity by default)."""


class ElmanCell(Cell):
    """Simple recurrent network cell; tanh, relu, sigmoid, identity or any callable activation."""

    family = "elman"
    config_class = ElmanConfig

    def __init__(self, config: ElmanConfig):
        super().__init__(config)
        H, I = config.hidden_size, config.input_size
        self.act = resolve_activation(config.activation)
        self.out_act = resolve_activation(config.out_activation, "out_activation")
        O = config.output_size
        self._parameter("weight_ih", H, I)
        self._parameter("weight_hh", H, H)
        self._parameter("bias_ih", H, present=config.bias)
        self._parameter("bias_hh", H, present=config.bias)
        self._parameter("weight_yh", O, H, present=bool(O))
        self._parameter("bias_y", O, present=bool(O))
        self._init_initial_state()
        self.reset_parameters()

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        return (self.hidden_size,)

    @property
    def output_size(self) -> int:
        return self.config.output_size or self.hidden_size

    def project_input(self, x: Tensor) -> Tensor:
        b = None
        if self.bias_ih is not None:
            b = self.bias_ih + self.bias_hh  # both biases are constant over time: fold them in
        return nn.functional.linear(x, self.weight_ih, b)  # (..., H)

    def recur(self, xp_t: Tensor, state: State, ctx: StepContext) -> State:
        h = state[0]
        if ctx.h_mask is not None:
            h = h * ctx.h_mask
        pre = torch.addmm(xp_t, h, ctx.weights["weight_hh"].t())  # (B, H)
        return (self.act(pre),)

    def readout(self, hidden_seq: Tensor) -> Tensor:
        if self.weight_yh is None:
            return hidden_seq
        return self.out_act(nn.functional.linear(hidden_seq, self.weight_yh, self.bias_y))
