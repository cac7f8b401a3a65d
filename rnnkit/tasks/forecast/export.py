"""The forecaster's export graph: scaled windows (B, L, C) [+ known future covariates] -> the raw output
parameters (B, H, T, P) of :meth:`~rnnkit.tasks.forecast.model.Forecaster.params`.

An ES-RNN or an ensemble (``rnn+esrnn``, ``--ensemble K``) exports its forecast instead, as its raw outputs
are offsets from each member's own origin: windows and each window's absolute start ``position`` (B,) (the
seasonal phase) -> the scaled mean (B, H, T, 1), or the quantiles (B, H, T, Q) for ``output=quantile``.

The lookback L and horizon H are the run's (the output layer is sized for them); the batch is free.
Scaling stays outside the graph: inputs are scaled, and values / means / quantiles come back on the scaled
axis, with the run's scaler (``meta.scaler`` in the checkpoint) to undo it, as ``rnnkit predict`` does.
"""
from __future__ import annotations

import torch

from rnnkit.tasks.forecast.model import Forecaster
from rnnkit.tasks.graphs import BatchGraph, ExportGraph


def _params(model, batch):
    return (model.params(batch["inputs"], batch.get("future")),)


def _forecast(model, batch):
    d = model.distribution(batch["inputs"], batch.get("future"), position=batch["position"])
    return (d["quantiles"] if "quantiles" in d else d["mean"].unsqueeze(-1),)


def forecast_graphs(loaded) -> list[ExportGraph]:
    model, cfg = loaded.model, loaded.config
    gen = torch.Generator().manual_seed(0)
    C, L = len(loaded.meta["names"]), cfg.model.lookback
    raw = isinstance(model, Forecaster)
    keys = ("inputs",) + (("future",) if model.n_future else ()) + (() if raw else ("position",))

    def batch(B):
        x = torch.randn(B, L, C, generator=gen)                               # (B, L, C)
        fut = (torch.randn(B, cfg.data.horizon, model.n_future, generator=gen),) if model.n_future else ()
        return (x, *fut) + (() if raw else (torch.randint(0, 1000, (B,), generator=gen),))   # position (B,)

    about = (" -> output parameters (B, horizon, targets, params) on the scaled axis" if raw else
             " and window starts (B,) -> the forecast (B, horizon, targets, 1 or quantiles) on the scaled axis")
    return [ExportGraph("model", BatchGraph(model, keys, _forecast if not raw else _params), batch(2), batch(5),
                        keys, ("params" if raw else "forecast",), {k: {0: "batch"} for k in keys},
                        about=f"scaled windows (B, {L}, {C})" + (" and future covariates" if model.n_future else "")
                              + about)]
