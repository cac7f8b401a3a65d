"""ES-RNN: exponential smoothing with a recurrent network (Smyl 2020, the M4 competition's winner).

Per target, a Holt-Winters-style level ``l`` and seasonality ``s`` (period m) run over the
window with learned smoothing coefficients ``α, γ`` (sigmoids of parameters) and learned
initial seasonal indices per phase ``t mod m`` (started at the classical decomposition of the
training windows)::

    l_0     = x_0 - s_0
    l_t     = α (x_t - s_t) + (1 - α) l_{t-1}
    s_{t+m} = γ (x_t - l_t) + (1 - γ) s_t

As in Smyl's model the smoothing has no trend: the network supplies it.  The network (any
rnnkit cell) reads the deseasonalised, level-normalised window ``x_t - s_t - l_{L-1}`` and
emits, for each step h (0-based), an offset from the smoothed forecast
``l_{L-1} + s_{L + (h mod m)}``.  The model is additive; after the ``log`` transform it is
Smyl's multiplicative form.  The smoothing runs over each window (seasonal indices start at
their learned values at the window's absolute phase, hence ``position``), so a batch of windows
of one series trains like Smyl's batch of series.  With a zero-initialised head training starts
at plain exponential smoothing; ``output=quantile`` trains the offsets with the pinball loss.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.modules.encoders import Pooling, build_encoder
from rnnkit.tasks.forecast.highway import least_squares
from rnnkit.tasks.forecast.model import pinball
from rnnkit.tasks.forecast.transforms import seasonal_indices
from rnnkit.train import ModelOutput

ALPHA0, GAMMA0 = 0.5, 0.1  # initial smoothing coefficients (level, seasonality)
ES_RIDGE = 1.0  # relative ridge of the linear map's fit with highway_ridge=auto (measured: docs/forecast.md)
FIT_LR = 0.05               # Adam step of the smoothing fit (sigmoid logits and seasonal indices)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


class ESRNN(nn.Module):
    """``forward(batch) -> ModelOutput(logits (B, H, T, P), loss)``; batch: ``inputs`` (B, L, C) scaled,
    ``position`` (B,) absolute index of each window's first step, ``targets`` (B, H, T) when training."""

    n_future = 0

    def __init__(self, cfg, n_features: int, n_targets: int, steps: int, quantiles: list[float], season: int):
        super().__init__()
        if cfg.output not in ("point", "quantile"):
            raise ValueError(f"model=esrnn supports output point or quantile, got {cfg.output!r}")
        self.cfg, self.n_targets, self.steps, self.output = cfg, n_targets, steps, cfg.output
        self.season = max(int(season), 1)
        self.register_buffer("quantiles", torch.tensor(quantiles, dtype=torch.float32))
        self.n_params = len(quantiles) if cfg.output == "quantile" else 1
        self.alpha_logit = nn.Parameter(torch.full((n_targets,), _logit(ALPHA0)))
        self.gamma_logit = nn.Parameter(torch.full((n_targets,), _logit(GAMMA0)))
        self.init_season = nn.Parameter(torch.zeros(self.season, n_targets))        # (m, T)
        if self.season == 1:
            self.gamma_logit.requires_grad_(False)
            self.init_season.requires_grad_(False)
        self.encoder = build_encoder("rnn", n_features, cell=cfg.cell, hidden=cfg.hidden, layers=cfg.layers,
                                     bidirectional=False, dropout=cfg.dropout, window=cfg.window, engine=cfg.engine)
        self.pool = Pooling("last", self.encoder.out_size, 1)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(self.encoder.out_size, steps * n_targets * self.n_params)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # a linear map of the deseasonalised, level-normalised window to the offsets (the trend the
        # smoothing lacks); zero until init_from_windows fits it by least squares
        self.linear = nn.Linear(cfg.lookback, steps) if cfg.es_linear else None
        if self.linear is not None:
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    @property
    def alpha(self) -> torch.Tensor:
        return torch.sigmoid(self.alpha_logit)

    @property
    def gamma(self) -> torch.Tensor:
        return torch.sigmoid(self.gamma_logit) if self.season > 1 else torch.zeros_like(self.gamma_logit)

    def smooth(self, y: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Level after the window (B, T) and the seasonal indices of positions 0 .. L + m - 1 (B, L + m, T).

        y: (B, L, T) the window's targets; position: (B,) absolute index of y[:, 0].
        """
        m, L = self.season, y.shape[1]
        phase = (position[:, None] + torch.arange(m, device=y.device)[None, :]) % m      # (B, m)
        seas = list(self.init_season[phase].unbind(1))                                 # m x (B, T)
        a, g = self.alpha, self.gamma
        level = y[:, 0] - seas[0]
        for t in range(L):
            if t:
                level = a * (y[:, t] - seas[t]) + (1 - a) * level
            seas.append(g * (y[:, t] - level) + (1 - g) * seas[t])
        return level, torch.stack(seas, dim=1)

    def base(self, x: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's input (B, L, C) and the smoothed forecast (B, H, T) it corrects."""
        T, m = self.n_targets, self.season
        y = x[..., :T]
        level, seas = self.smooth(y, position)                                          # (B, T), (B, L+m, T)
        L = y.shape[1]
        rel = y - seas[:, :L] - level[:, None, :]                                       # (B, L, T)
        h = torch.arange(self.steps, device=x.device)
        ahead = level[:, None, :] + seas[:, L + h % m]                                  # (B, H, T)
        return torch.cat([rel, x[..., T:]], dim=-1), ahead

    def params(self, x: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, H, T, P) offsets from the smoothed forecast, and that forecast (B, H, T)."""
        if position is None:
            raise ValueError("model=esrnn needs each window's position (its seasonal phase)")
        inputs, ahead = self.base(x, position)
        lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
        h = self.drop(self.pool(self.encoder(inputs, lengths), lengths))
        out = self.head(h).view(x.shape[0], self.steps, self.n_targets, self.n_params)
        if self.linear is not None:
            rel = inputs[..., : self.n_targets].transpose(1, 2)                         # (B, T, L)
            out = out + self.linear(rel).transpose(1, 2).unsqueeze(-1)                  # + (B, H, T, 1)
        return out, ahead

    def forward(self, batch: dict) -> ModelOutput:
        out, ahead = self.params(batch["inputs"], batch.get("position"))
        loss = None
        if "targets" in batch:
            rel = batch["targets"] - ahead                                              # (B, H, T)
            if self.output == "point":
                loss = F.mse_loss(out[..., 0], rel)
            else:
                loss = pinball(rel.unsqueeze(-1) - out, self.quantiles)
        return ModelOutput(out, loss, n=int(out.shape[0] * out.shape[1] * out.shape[2]))

    def init_from_windows(self, x: torch.Tensor, y: torch.Tensor, position: torch.Tensor, ridge: float) -> None:
        """Start from what the training windows say: seasonal indices from their classical decomposition,
        then (``es_fit_steps``) the smoothing coefficients and indices fitted to the windows' targets,
        then (``es_linear``) the linear map's least-squares fit to what the smoothing misses.  The
        network's head is zero, so training starts at that fitted smoothing + linear forecast.

        x: (N, L, C) scaled training windows, y: (N, H, T) their targets, position: (N,) their absolute
        starts; ``ridge`` (the recurrent forecaster's highway ridge) is not used: the linear map's is
        ``--highway-ridge`` when given, else :data:`ES_RIDGE` (relative to mean(diag X'X)).
        """
        self.init_seasonal_indices(x, position)
        self.fit_smoothing(x, y, position, self.cfg.es_fit_steps)
        if self.linear is not None:
            fixed = self.cfg.fixed_ridge()
            self.init_linear(x, y, position, ES_RIDGE if fixed is None else fixed)

    def fit_smoothing(self, x: torch.Tensor, y: torch.Tensor, position: torch.Tensor, steps: int) -> None:
        """``steps`` full-batch Adam steps on the squared error of the smoothed forecast alone (α, γ and
        the initial seasonal indices; network and linear map untouched)."""
        params = [p for p in (self.alpha_logit, self.gamma_logit, self.init_season) if p.requires_grad]
        if not steps or not params:
            return
        opt = torch.optim.Adam(params, lr=FIT_LR)
        with torch.enable_grad():
            for _ in range(steps):
                _, ahead = self.base(x, position)                                       # (N, H, T)
                loss = F.mse_loss(ahead, y)
                opt.zero_grad()
                loss.backward()
                opt.step()

    @torch.no_grad()
    def init_linear(self, x: torch.Tensor, y: torch.Tensor, position: torch.Tensor, ridge: float) -> None:
        """Ridge least squares of the targets' offsets from the smoothed forecast on the normalised window."""
        inputs, ahead = self.base(x, position)
        T, L = self.n_targets, x.shape[1]
        feats = inputs[..., :T].transpose(1, 2).reshape(-1, L)                           # (N*T, L)
        X = torch.cat([feats, torch.ones(feats.shape[0], 1)], dim=1).double()
        Y = (y - ahead).transpose(1, 2).reshape(-1, y.shape[1]).double()                # (N*T, H)
        W = least_squares(X, Y, ridge)                                                  # (L + 1, H)
        self.linear.weight.copy_(W[:-1].T.float())
        self.linear.bias.copy_(W[-1].float())

    @torch.no_grad()
    def init_seasonal_indices(self, x: torch.Tensor, position: torch.Tensor) -> None:
        """Initial seasonal indices from the classical decomposition of the series the windows cover."""
        m, T = self.season, self.n_targets
        if m == 1:
            return
        start = int(position.min())
        series = torch.full((int(position.max()) + x.shape[1] - start, T), float("nan"), dtype=torch.float64)
        for i, p in enumerate(position.tolist()):
            series[p - start: p - start + x.shape[1]] = x[i, :, :T].double()
        if torch.isnan(series).any() or len(series) < 2 * m + 1:
            return  # windows that do not tile a stretch of two seasons: keep the zero start
        index = seasonal_indices(series.numpy(), m)                                   # phase 0 = position start
        phases = (torch.arange(m) - start) % m                                        # absolute phase -> row
        self.init_season.copy_(torch.from_numpy(index)[phases].float())

    def distribution(self, x: torch.Tensor, future: torch.Tensor | None = None,
                     position: torch.Tensor | None = None) -> dict:
        """Scaled forecasts: ``mean`` (B, H, T), plus ``quantiles`` (B, H, T, Q) for output=quantile."""
        out, ahead = self.params(x, position)
        if self.output == "point":
            return {"mean": out[..., 0] + ahead}
        qs = torch.sort(out, dim=-1).values + ahead.unsqueeze(-1)
        median = int(torch.argmin((self.quantiles - 0.5).abs()))
        return {"mean": qs[..., median], "quantiles": qs}
