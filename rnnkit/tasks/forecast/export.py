"""The forecaster's export graph: scaled windows (B, L, C) [+ known future covariates] -> the raw output
parameters (B, H, T, P) of :meth:`~rnnkit.tasks.forecast.model.Forecaster.params`.

The lookback L and horizon H are the run's (the output layer is sized for them); the batch is free.
Scaling stays outside the graph: inputs are scaled, and values / means / quantiles come back on the scaled
axis, with the run's scaler (``meta.scaler`` in the checkpoint) to undo it, as ``rnnkit predict`` does.
"""
from __future__ import annotations

import torch

from rnnkit.tasks.graphs import BatchGraph, ExportGraph


def _params(model, batch):
    return (model.params(batch["inputs"], batch.get("future")),)


def forecast_graphs(loaded) -> list[ExportGraph]:
    model, cfg = loaded.model, loaded.config
    gen = torch.Generator().manual_seed(0)
    C, L = len(loaded.meta["names"]), cfg.model.lookback
    keys = ("inputs",) + (("future",) if model.n_future else ())

    def batch(B):
        x = torch.randn(B, L, C, generator=gen)                               # (B, L, C)
        return (x,) + ((torch.randn(B, cfg.data.horizon, model.n_future, generator=gen),) if model.n_future else ())

    return [ExportGraph("model", BatchGraph(model, keys, _params), batch(2), batch(5), keys, ("params",),
                        {k: {0: "batch"} for k in keys},
                        about=f"scaled windows (B, {L}, {C})" + (" and future covariates" if model.n_future else "")
                              + " -> output parameters (B, horizon, targets, params) on the scaled axis")]
