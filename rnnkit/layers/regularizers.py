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

import math
from typing import Tuple

import torch
from torch import Tensor

from ..engines.base import DirectionMasks, Regularization

__all__ = ["Regularization", "sample_direction_masks", "bernoulli_keep", "bernoulli_mask", "locked_dropout"]


def bernoulli_keep(shape, p: float, device, dtype) -> Tensor:
    """Dropout mask with keep probability 1-p, scaled by 1/(1-p)."""
    return bernoulli_mask(shape, 1.0 - p, device, dtype).div_(1.0 - p)


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


def bernoulli_mask(shape, p: float, device, dtype) -> Tensor:
    """A 0/1 mask of `shape`, 1 with probability p.

    On the CPU, where ``bernoulli_`` draws one 32-bit number per element (about 2.5 ms for a
    (100, 32, 128) zoneout mask, a tenth of an LSTM training step at that shape, and 2 ms for the
    DropConnect mask of a (1024, 256) W_hh, more than a step at B = 1), each element is one
    16-bit lane of a 64-bit draw compared with p * 2^16, about 3.5x faster; p is then rounded to a
    multiple of 2^-16 (at most 7.6e-6 off). Elsewhere ``bernoulli_``.
    """
    if torch.device(device).type != "cpu":
        return torch.empty(shape, device=device, dtype=dtype).bernoulli_(p)
    k = round(p * 65536)  # P(lane < k - 2^15) = k / 2^16 for a uniform int16 lane
    if k <= 0 or k >= 65536:
        return torch.full(shape, 0.0 if k <= 0 else 1.0, device=device, dtype=dtype)
    n = math.prod(shape)
    words = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), device=device, dtype=torch.int64)
    lanes = words.view(torch.int16)[:n]  # four uniform 16-bit lanes per word
    return (lanes < k - 32768).view(shape).to(dtype)


def _zoneout_masks(sizes, p: float, batch: int, steps: int, training: bool, device, dtype) -> Tuple[Tensor, ...]:
    if training:
        return tuple(bernoulli_mask((steps, batch, s), p, device, dtype) for s in sizes)
    return tuple(torch.full((steps, 1, 1), p, device=device, dtype=dtype) for _ in sizes)


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Variational dropout on a (T, B, F) input: one mask per sequence, shared over time."""
    if not training or not p:
        return x
    return x * bernoulli_keep((1, x.shape[1], x.shape[2]), p, x.device, x.dtype)
