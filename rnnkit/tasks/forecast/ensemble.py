"""An ensemble: forecasters trained side by side, forecasts averaged.

The members differ in their initial weights (K seeds of one model) or in their kind (the
``rnn+esrnn`` model: a recurrent forecaster and an ES-RNN, the combination of a statistical and
a learned forecast).  The members share nothing but the batches: the loss is the mean of their losses, so each
member's gradient is its own (Adam's per-parameter steps keep them independent; only the
global gradient-norm clip couples them).  One module means one checkpoint, exact resume and
the usual refit.  ``distribution`` averages the members' means and quantiles; for Gaussian
outputs it returns the moments of the equal-weight mixture; for ``direction`` the mean
probability.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from rnnkit.train import ModelOutput


class Ensemble(nn.Module):
    """``forward(batch) -> ModelOutput``; ``logits`` (B, H, T, P) are the members' raw outputs averaged (each
    relative to its own origin, so only :meth:`distribution` is a forecast)."""

    def __init__(self, makers: Sequence[Callable[[], nn.Module]]):
        super().__init__()
        if len(makers) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(makers)}")
        self.members = nn.ModuleList(make() for make in makers)     # each draws its own initial weights
        first = self.members[0]
        self.output, self.n_targets, self.n_future = first.output, first.n_targets, first.n_future
        self.quantiles = first.quantiles

    def forward(self, batch: dict) -> ModelOutput:
        outs = [m(batch) for m in self.members]
        loss = None if outs[0].loss is None else torch.stack([o.loss for o in outs]).mean()
        logits = torch.stack([o.logits for o in outs]).mean(0)       # (B, H, T, P)
        return ModelOutput(logits, loss, n=outs[0].n)

    def init_from_windows(self, x: torch.Tensor, y: torch.Tensor, position: torch.Tensor, ridge: float) -> None:
        for m in self.members:
            m.init_from_windows(x, y, position, ridge)

    def distribution(self, x: torch.Tensor, future: torch.Tensor | None = None, **kw) -> dict:
        ds = [m.distribution(x, future, **kw) for m in self.members]
        out = {}
        if "p_up" in ds[0]:
            return {"p_up": torch.stack([d["p_up"] for d in ds]).mean(0)}
        means = torch.stack([d["mean"] for d in ds])                  # (K, B, H, T)
        out["mean"] = means.mean(0)
        if "std" in ds[0]:
            second = torch.stack([d["std"] ** 2 for d in ds]) + means ** 2
            out["std"] = (second.mean(0) - out["mean"] ** 2).clamp(min=0).sqrt()
        if "quantiles" in ds[0]:
            out["quantiles"] = torch.stack([d["quantiles"] for d in ds]).mean(0)
        return out
