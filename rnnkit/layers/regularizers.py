"""Regularisers for every cell, with masks sampled once per sequence by the layer so that every
engine sees the same masks (reference and bptt agree exactly under the same seed).

* dropout: between stacked layers, a fresh mask per element and step (as torch.nn.LSTM).
* variational_dropout: locked dropout on each layer's input, one mask per sequence shared by all
  steps (Gal & Ghahramani 2016; AWD-LSTM's LockedDropout).
* recurrent_dropout: locked dropout on the state entering the recurrent matmul (Gal & Ghahramani).
* dropconnect: a mask on the recurrent weight, one per forward call (Wan et al. 2013; AWD-LSTM's
  WeightDrop), applied to the cell's own parameter so weights stay flat and loadable.
* zoneout: each state unit keeps its previous value with probability p at each step (Krueger et al.
  2017); in evaluation the expectation p*old + (1-p)*new is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..cells.base import check_probability
from ..engines.base import DirectionMasks


@dataclass
class Regularization:
    dropout: float = 0.0
    variational_dropout: float = 0.0
    recurrent_dropout: float = 0.0
    dropconnect: float = 0.0
    zoneout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("dropout", "variational_dropout", "recurrent_dropout", "dropconnect", "zoneout"):
            check_probability(name, getattr(self, name))


def bernoulli_keep(shape, p: float, device, dtype) -> Tensor:
    """Dropout mask with keep probability 1-p, scaled by 1/(1-p)."""
    return torch.empty(shape, device=device, dtype=dtype).bernoulli_(1.0 - p).div_(1.0 - p)


def sample_direction_masks(cell, reg: Regularization, batch: int, steps: int, training: bool,
                           device, dtype) -> DirectionMasks:
    masks = DirectionMasks()
    if training and reg.dropconnect:
        if cell.recurrent_weight_name is None:
            raise ValueError(f"dropconnect is not defined for the {cell.family} cell (no recurrent weight)")
        w = getattr(cell, cell.recurrent_weight_name)
        masks.dropconnect = bernoulli_keep(w.shape, reg.dropconnect, w.device, w.dtype)
    if training and reg.recurrent_dropout:
        masks.h_mask = bernoulli_keep((batch, cell.state_sizes[0]), reg.recurrent_dropout, device, dtype)
    if reg.zoneout:
        masks.zoneout = _zoneout_masks(cell.state_sizes, reg.zoneout, batch, steps, training, device, dtype)
    return masks


def _zoneout_masks(sizes, p: float, batch: int, steps: int, training: bool, device, dtype) -> Tuple[Tensor, ...]:
    if training:
        return tuple(torch.empty(steps, batch, s, device=device, dtype=dtype).bernoulli_(p) for s in sizes)
    return tuple(torch.full((steps, 1, 1), p, device=device, dtype=dtype) for _ in sizes)


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Variational dropout on a (T, B, F) input: one mask per sequence, shared over time."""
    if not training or not p:
        return x
    return x * bernoulli_keep((1, x.shape[1], x.shape[2]), p, x.device, x.dtype)
