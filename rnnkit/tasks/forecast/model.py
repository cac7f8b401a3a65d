"""Forecasting networks and their output distributions.

A :class:`Forecaster` reads a window ``x (B, L, C)`` (scaled; the first
``n_targets`` columns are the targets) and emits, for ``H`` future steps and
each target, the parameters of its output:

=============  ==========================  ========================================
output         parameters per step/target  loss
=============  ==========================  ========================================
``point``      value                       mean squared error
``gaussian``   mean, std (softplus)        Gaussian negative log-likelihood
``quantile``   one value per quantile      pinball (quantile) loss, averaged
``direction``  logit of "up"               binary cross-entropy (up = above y[o-1])
=============  ==========================  ========================================

With ``normalize="last"`` every target channel of a window is shifted by its
last observed value and the forecast is an offset from it (as NLinear does),
so a series that leaves the training range (a trend) is still in range for
the network; ``instance_scale`` also divides the network's inputs by the
window's std and scales its output back (RevIN, Kim et al. 2022).  With
``highway`` a linear autoregressive map of each target's window
(:mod:`rnnkit.tasks.forecast.highway`; with ``highway_level`` every linear
AR of the window) is added to the network's first output parameter (value,
mean, every quantile, or the direction logit): the network then models what
the linear AR part cannot (the "autoregressive highway" of LSTNet, Lai et
al. 2018).  ``freeze_highway`` keeps that part at its least-squares fit, so
the network learns the AR residual (the hybrid of Zhang 2003).
``strategy="direct"`` emits all H steps at once; ``"recursive"`` is a
one-step model (H = 1) whose forecasts are fed back through a sliding window
by :func:`recursive_forecast`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.modules.encoders import Pooling, build_encoder
from rnnkit.tasks.forecast.highway import HighwayFeatures, least_squares
from rnnkit.train import ModelOutput

OUTPUTS = ("point", "gaussian", "quantile", "direction")
REVIN_EPS = 1e-5  # added to each window's variance before the square root, as RevIN does
N_PARAMS = {"point": 1, "gaussian": 2, "direction": 1}


def pinball(diff: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean quantile loss of ``diff = target - prediction`` (..., Q) at levels ``q`` (Q,)."""
    return torch.maximum(q * diff, (q - 1) * diff).mean()


class Forecaster(nn.Module):
    """``forward(batch) -> ModelOutput(logits (B, H, T, P), loss, n=B*H*T)``.

    batch: ``inputs`` (B, L, C), ``targets`` (B, H, T) when training, and ``future`` (B, H, n_future) with
    known-future covariates of the forecast steps when the direct model has them (they join the pooled
    window summary before the output layer).
    """

    def __init__(self, cfg, n_features: int, n_targets: int, steps: int, quantiles: list[float],
                 n_future: int = 0):
        super().__init__()
        self.cfg, self.n_targets, self.steps = cfg, n_targets, steps
        self.n_future = n_future if cfg.strategy == "direct" else 0  # recursive: covariates come with each step
        self.output, self.normalize = cfg.output, cfg.normalize
        self.register_buffer("quantiles", torch.tensor(quantiles, dtype=torch.float32))
        self.n_params = len(quantiles) if cfg.output == "quantile" else N_PARAMS[cfg.output]
        self.lookback = cfg.lookback
        if cfg.model in ("auto", "esrnn", "rnn+esrnn") or not cfg.lookback:
            raise ValueError(f"a Forecaster is an rnn, tdnn or mlp with a lookback; got model={cfg.model!r}, "
                             f"lookback={cfg.lookback} (the pipeline resolves model=auto and lookback=0 first)")
        if cfg.model == "mlp":  # the whole flattened window through an MLP: no recurrence, no weight sharing
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(cfg.lookback * n_features, cfg.hidden), nn.ReLU(),
                                         nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU())
            size = cfg.hidden
        else:
            self.encoder = build_encoder(cfg.model, n_features, cell=cfg.cell, hidden=cfg.hidden,
                                         layers=cfg.layers, bidirectional=False, dropout=cfg.dropout,
                                         window=cfg.window, engine=cfg.engine)
            self.pool = Pooling("last", self.encoder.out_size, 1)
            size = self.encoder.out_size
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(size + steps * self.n_future, steps * n_targets * self.n_params)
        self.ar_features = HighwayFeatures(n_targets, cfg.normalize, cfg.highway_level)
        self.highway = nn.Linear(cfg.lookback, steps) if cfg.highway else None
        if self.highway is not None and cfg.freeze_highway and cfg.output != "direction":
            self.highway.requires_grad_(False)  # kept at its least-squares fit: the network learns the residual

    @torch.no_grad()
    def init_highway(self, x: torch.Tensor, y: torch.Tensor, ridge: float = 1e-4) -> None:
        """Start from the least-squares AR fit of the training windows, with a zero network head.

        x: (N, L, C) scaled windows, y: (N, H, T) scaled targets.  Training then starts exactly at linear
        autoregression and the network learns what it misses.  ``ridge`` is relative to the mean diagonal
        of X'X and shrinks every coefficient, the intercept too, towards 0: the naive forecast (with
        ``normalize="last"``).
        """
        if self.highway is None or self.output == "direction":
            return
        W = least_squares(*self.ar_features.design(x, y), ridge)              # (L + 1, H)
        self.highway.weight.copy_(W[:-1].T.float())
        self.highway.bias.copy_(W[-1].float())
        self.head.weight.zero_()
        self.head.bias.zero_()

    def init_from_windows(self, x: torch.Tensor, y: torch.Tensor, position: torch.Tensor, ridge: float) -> None:
        """Start from what the training windows say before any update: here, the highway's AR fit."""
        self.init_highway(x, y, ridge)

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) last observed target values used as the origin of the forecast (zeros if not normalising)."""
        return self.ar_features.shift(x)

    def params(self, x: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, T, P) raw output parameters (offsets from :meth:`shift` for values)."""
        raw_x, last = x, self.shift(x)
        rel = x[..., : self.n_targets] - last[:, None, :]                # (B, L, T)
        scale = self.window_scale(raw_x)                                 # (B, 1, T)
        x = torch.cat([rel / scale, x[..., self.n_targets:]], dim=-1)
        if self.cfg.model == "mlp":
            h = self.encoder(x)
        else:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
            h = self.pool(self.encoder(x, lengths), lengths)
        h = self.drop(h)
        if self.n_future:
            if future is None:
                raise ValueError(f"this forecaster needs the {self.n_future} known-future covariate(s) "
                                 "of the forecast steps")
            h = torch.cat([h, future.reshape(x.shape[0], -1)], dim=-1)
        out = self.head(h).view(x.shape[0], self.steps, self.n_targets, self.n_params)
        out = self.unscale(out, scale)
        if self.highway is None:
            return out
        ar = self.highway(self.ar_features.inputs(raw_x)).transpose(1, 2)          # (B, H, T)
        if self.output == "quantile":
            return out + ar.unsqueeze(-1)
        return torch.cat([out[..., :1] + ar.unsqueeze(-1), out[..., 1:]], dim=-1)

    def window_scale(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) each window's target std with ``instance_scale`` (RevIN, Kim et al. 2022), else ones."""
        t = x[..., : self.n_targets]
        if not self.cfg.instance_scale:
            return torch.ones_like(t[:, :1])
        return torch.sqrt(t.var(dim=1, unbiased=False, keepdim=True) + REVIN_EPS)

    def unscale(self, out: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The network's location outputs (value, mean, quantiles) back to the series' scale: (B, H, T, P).

        The Gaussian std and the direction logit stay as they are (the std is learnt on the global scale).
        """
        if not self.cfg.instance_scale or self.output == "direction":
            return out
        s = scale.unsqueeze(-1)                                          # (B, 1, T, 1)
        if self.output == "gaussian":
            return torch.cat([out[..., :1] * s, out[..., 1:]], dim=-1)
        return out * s

    def forward(self, batch: dict) -> ModelOutput:
        x = batch["inputs"]
        raw = self.params(x, batch.get("future"))
        loss = None
        if "targets" in batch:
            loss = self.loss(raw, batch["targets"], x)
        return ModelOutput(raw, loss, n=int(raw.shape[0] * raw.shape[1] * raw.shape[2]))

    def loss(self, raw: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        last = self.shift(x)[:, None, :]                                # (B, 1, T)
        if self.output == "direction":
            up = (y > x[:, -1:, : self.n_targets]).float()              # vs the last observed value
            return F.binary_cross_entropy_with_logits(raw[..., 0], up)
        rel = y - last                                                  # (B, H, T)
        if self.output == "point":
            return F.mse_loss(raw[..., 0], rel)
        if self.output == "gaussian":
            std = F.softplus(raw[..., 1]) + 1e-3
            return F.gaussian_nll_loss(raw[..., 0], rel, std ** 2, full=True)
        return pinball(rel.unsqueeze(-1) - raw, self.quantiles)         # (B, H, T, Q) vs (Q,)

    def distribution(self, x: torch.Tensor, future: torch.Tensor | None = None,
                     position: torch.Tensor | None = None) -> dict:
        """Scaled forecasts: ``mean`` (B, H, T) plus ``std`` (gaussian), ``quantiles`` (.., Q) or ``p_up``.

        ``position`` (the windows' absolute start, which the ES-RNN needs) is not used here."""
        raw = self.params(x, future)
        last = self.shift(x)[:, None, :]
        if self.output == "direction":
            return {"p_up": torch.sigmoid(raw[..., 0])}
        if self.output == "point":
            return {"mean": raw[..., 0] + last}
        if self.output == "gaussian":
            return {"mean": raw[..., 0] + last, "std": F.softplus(raw[..., 1]) + 1e-3}
        qs = torch.sort(raw, dim=-1).values + last.unsqueeze(-1)        # no crossing quantiles
        median = int(torch.argmin((self.quantiles - 0.5).abs()))
        return {"mean": qs[..., median], "quantiles": qs}


@torch.no_grad()
def direct_forecast(model: Forecaster, x: torch.Tensor, future: torch.Tensor | None = None) -> dict:
    return model.distribution(x, future)


@torch.no_grad()
def recursive_forecast(model: Forecaster, x: torch.Tensor, horizon: int, future_cov: torch.Tensor | None,
                       samples: int = 0, generator: torch.Generator | None = None) -> dict:
    """Feed one-step forecasts back through a sliding window.

    x: (B, L, C) scaled window; future_cov: (B, horizon, C - T) covariates of the forecast steps (known future
    covariates), or None without covariates.  Gaussian outputs draw ``samples`` paths and report their mean,
    std and empirical quantiles; other outputs feed back the point forecast (median for quantile output).
    """
    if model.output == "direction":
        raise ValueError("direction output needs strategy=direct")
    T = model.n_targets
    if samples and model.output == "gaussian":
        x = x.repeat_interleave(samples, dim=0)                          # (B*S, L, C)
        future_cov = None if future_cov is None else future_cov.repeat_interleave(samples, dim=0)
    steps, quants = [], []
    for h in range(horizon):
        d = model.distribution(x)
        mean = d["mean"][:, 0]                                           # (B', T)
        if samples and model.output == "gaussian":
            noise = torch.randn(mean.shape, generator=generator, device=mean.device)
            value = mean + d["std"][:, 0] * noise
        else:
            value = mean
        if model.output == "quantile":
            quants.append(d["quantiles"][:, 0])
        steps.append(value if samples and model.output == "gaussian" else mean)
        new = value if future_cov is None else torch.cat([value, future_cov[:, h]], dim=-1)
        x = torch.cat([x[:, 1:], new[:, None, :]], dim=1)
    paths = torch.stack(steps, dim=1)                                    # (B', H, T)
    if samples and model.output == "gaussian":
        paths = paths.view(-1, samples, horizon, T)                      # (B, S, H, T)
        return {"mean": paths.mean(1), "std": paths.std(1), "samples": paths}
    out = {"mean": paths}
    if quants:
        out["quantiles"] = torch.stack(quants, dim=1)
    return out


def interval_bounds(interval: float) -> tuple[float, float]:
    """Quantile levels bounding the central ``interval``: 0.8 -> (0.1, 0.9)."""
    return round((1.0 - interval) / 2, 12), round((1.0 + interval) / 2, 12)


QUANTILE_TOL = 1e-6  # quantile levels are stored as float32 in the model


def gaussian_interval(mean, std, level: float):
    """Central ``level`` interval of N(mean, std^2)."""
    z = math.sqrt(2.0) * torch.erfinv(torch.tensor(level, dtype=torch.float64)).item()
    return mean - z * std, mean + z * std
