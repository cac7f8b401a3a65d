"""Target transforms fitted on the training part only, each exactly invertible.

A :class:`TransformChain` maps the target columns ``y (N, T)`` through steps such as
``log -> deseason -> diff`` before scaling and windowing, and maps a network's forecasts back.
Every step is causal: its value at step ``t`` depends on ``y[: t + 1]`` and on parameters
fitted on ``y[:n_train]`` only (never on validation or test values).  Inverting a forecast
from origin ``o`` needs the history ``y[:o]`` (differencing adds the forecast offsets to the
last observed values)::

    y ──log──> a ──deseason──> b ──diff──> z          (apply, whole series at once)
    ŷ <──exp── â <──+season─── b̂ <──cumsum── ẑ        (invert, from origin o: b[:o], positions o..o+H-1)

Steps:

=============  =====================================================  ==========================
step           value at t                                             fitted on the training part
=============  =====================================================  ==========================
``log``        ``log(y_t)`` (needs y > 0)                             nothing
``boxcox``     ``(y_t^λ - 1) / λ`` (``log`` when λ = 0; needs y > 0)  λ by maximum likelihood
``deseason``   ``y_t - s[t mod m]``                                   seasonal indices s (classical
                                                                      decomposition, sum 0)
``diff``       ``y_t - y_{t-1}``                                      nothing
``sdiff``      ``y_t - y_{t-m}``                                      nothing
=============  =====================================================  ==========================

Differencing leaves the first lag(s) undefined (:attr:`TransformChain.warmup` steps, set to 0
and never used as a window's input or target).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from rnnkit.data.readers import DataError
from rnnkit.tasks.runs import need

STEPS = ("log", "boxcox", "deseason", "diff", "sdiff")


class Step:
    """One transform; ``fit`` sees the training part only, ``params`` round-trips through run metadata."""
    name = ""

    def fit(self, train: np.ndarray) -> None:
        """Fit on ``train`` (n_train, T): the training part of this step's input."""

    def apply(self, y: np.ndarray) -> np.ndarray:
        """(N, T) -> (N, T), position ``t`` of the result from ``y[: t + 1]``."""
        raise NotImplementedError

    def invert(self, z: np.ndarray, history: np.ndarray, origins: Sequence[int]) -> np.ndarray:
        """Forecasts ``z`` (W, H, T) of positions ``o .. o + H - 1`` back to this step's input space.

        ``history`` (>= max(origins), T) is this step's input up to the latest origin.
        """
        raise NotImplementedError

    def params(self) -> dict:
        return {}

    def load(self, params: dict) -> None:
        """Set the fitted parameters saved by :meth:`params`."""

    lag = 0  # leading steps left undefined by apply


def _require_positive(y: np.ndarray, step: str, names: Sequence[str]) -> None:
    bad = np.argwhere(~(y > 0))
    if bad.size:
        t, j = bad[0]
        raise DataError(f"transform {step!r} needs positive values, but column {names[j]!r} has {y[t, j]:g} "
                        f"at step {t} (of {len(y)}); use --transform none or deseason/diff/sdiff")


@dataclass
class Log(Step):
    names: Sequence[str] = ()
    name = "log"

    def apply(self, y):
        _require_positive(y, self.name, self.names)
        return np.log(y)

    def invert(self, z, history, origins):
        return np.exp(z)


@dataclass
class BoxCox(Step):
    """Box & Cox (1964); λ per column by maximum likelihood on the training part (scipy)."""
    names: Sequence[str] = ()
    lam: list[float] = field(default_factory=list)
    name = "boxcox"

    def fit(self, train):
        stats = need("scipy.stats", "the boxcox transform")
        _require_positive(train, self.name, self.names)
        self.lam = [float(stats.boxcox_normmax(train[:, j], method="mle")) for j in range(train.shape[1])]

    def apply(self, y):
        special = need("scipy.special", "the boxcox transform")
        _require_positive(y, self.name, self.names)
        return np.stack([special.boxcox(y[:, j], lam) for j, lam in enumerate(self.lam)], axis=1)

    def invert(self, z, history, origins):
        special = need("scipy.special", "the boxcox transform")
        return np.stack([special.inv_boxcox(z[..., j], lam) for j, lam in enumerate(self.lam)], axis=-1)

    def params(self):
        return {"lam": self.lam}

    def load(self, params):
        self.lam = [float(v) for v in params["lam"]]


def _centred_trend(m: int) -> np.ndarray:
    """The centred moving average of classical decomposition: m terms, 2 x m when m is even."""
    if m % 2:
        return np.full(m, 1.0 / m)
    return np.concatenate([[0.5], np.ones(m - 1), [0.5]]) / m


def _detrended(col: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``col`` minus its centred moving average, and the phase ``t mod m`` of each remaining step."""
    kernel = _centred_trend(m)
    half = len(kernel) // 2
    trend = np.convolve(col, kernel, mode="valid")                     # positions half .. n - half - 1
    return col[half:len(col) - half] - trend, np.arange(half, len(col) - half) % m


def seasonal_indices(train: np.ndarray, m: int) -> np.ndarray:
    """Additive seasonal indices (m, T) of classical decomposition: the mean by phase ``t mod m`` of
    ``train`` minus its centred moving average (2 x m when m is even), centred to sum 0."""
    idx = np.zeros((m, train.shape[1]))
    for j in range(train.shape[1]):
        detrended, phase = _detrended(train[:, j], m)
        idx[:, j] = [detrended[phase == p].mean() for p in range(m)]
    return idx - idx.mean(axis=0, keepdims=True)


def seasonal_strength(train: np.ndarray, m: int) -> float:
    """Strength of seasonality ``max(0, 1 - Var(R) / Var(S + R))`` of the classical decomposition of
    ``train`` (n, T) (Wang, Smith & Hyndman 2006), averaged over the columns: 0 without a season, near 1
    when the seasonal pattern explains the detrended series; 0 when ``train`` holds under 2 seasons."""
    if m < 2 or train.shape[0] < 2 * m + 1:
        return 0.0
    index = seasonal_indices(train, m)                                  # (m, T)
    out = []
    for j in range(train.shape[1]):
        detrended, phase = _detrended(train[:, j], m)
        remainder = detrended - index[phase, j]
        out.append(max(0.0, 1.0 - remainder.var() / detrended.var()) if detrended.var() > 0 else 0.0)
    return float(np.mean(out))


@dataclass
class Deseason(Step):
    """Subtract seasonal indices by absolute position; after ``log`` this is multiplicative."""
    season: int = 1
    index: np.ndarray | None = None   # (m, T)
    name = "deseason"

    def fit(self, train):
        m = self.season
        if train.shape[0] < 2 * m + 1:
            raise DataError(f"transform 'deseason' needs more than two seasons ({2 * m} steps) in the training "
                            f"part, which has {train.shape[0]}; use a shorter --season or drop the step")
        self.index = seasonal_indices(train, m)

    def _at(self, positions: np.ndarray) -> np.ndarray:
        return self.index[positions % self.season]                         # (..., T)

    def apply(self, y):
        return y - self._at(np.arange(len(y)))

    def invert(self, z, history, origins):
        pos = np.asarray(origins)[:, None] + np.arange(z.shape[1])[None, :]  # (W, H)
        return z + self._at(pos)

    def params(self):
        return {"index": self.index.tolist()}

    def load(self, params):
        self.index = np.asarray(params["index"], dtype=np.float64)


@dataclass
class Difference(Step):
    """``z_t = y_t - y_{t - lag}`` (lag 1: ``diff``, lag m: ``sdiff``)."""
    lag: int = 1
    name = "diff"

    def apply(self, y):
        z = np.zeros_like(y)
        z[self.lag:] = y[self.lag:] - y[:-self.lag]
        return z

    def invert(self, z, history, origins):
        out = np.empty_like(z)
        k = self.lag
        for h in range(z.shape[1]):
            before = out[:, h - k] if h >= k else np.stack([history[o + h - k] for o in origins])
            out[:, h] = z[:, h] + before
        return out


def make_step(name: str, season: int, names: Sequence[str]) -> Step:
    if name == "log":
        return Log(names)
    if name == "boxcox":
        return BoxCox(names)
    if name == "deseason":
        return Deseason(season)
    if name == "diff":
        return Difference(1)
    if name == "sdiff":
        return Difference(season)
    raise DataError(f"unknown transform step {name!r}; choose from {', '.join(STEPS)}")


class TransformChain:
    """Steps applied in order to the targets; see the module docstring."""

    def __init__(self, steps: Sequence[str], season: int, names: Sequence[str]):
        self.spec = list(steps)
        self.steps = [make_step(s, season, names) for s in self.spec]

    @property
    def warmup(self) -> int:
        """Leading steps whose transformed value is undefined (the sum of the differencing lags)."""
        return sum(s.lag for s in self.steps)

    def fit(self, train: np.ndarray) -> "TransformChain":
        """Fit each step on its input over the training part ``train`` (n_train, T) (after the earlier steps)."""
        x, skip = train, 0
        for s in self.steps:
            s.fit(x[skip:])
            x = s.apply(x)
            skip += s.lag
        return self

    def stages(self, y: np.ndarray) -> list[np.ndarray]:
        """Each step's input over the whole series, then the final output: len(steps) + 1 arrays (N, T)."""
        out = [y]
        for s in self.steps:
            out.append(s.apply(out[-1]))
        return out

    def apply(self, y: np.ndarray) -> np.ndarray:
        return self.stages(y)[-1]

    def apply_columns(self, values: np.ndarray, n_targets: int) -> np.ndarray:
        """(N, C) with the first ``n_targets`` columns transformed, the covariates as they are."""
        return np.concatenate([self.apply(values[:, :n_targets]), values[:, n_targets:]], axis=1)

    def invert(self, z: np.ndarray, y: np.ndarray, origins: Sequence[int]) -> np.ndarray:
        """Forecasts ``z`` (W, H, T) in transformed units, from ``origins``, back to the units of ``y``.

        ``y`` (>= max(origins), T): the observed targets (only ``y[:o]`` shapes the forecast from ``o``).
        """
        history = self.stages(y[: max(origins)])
        for k in reversed(range(len(self.steps))):
            z = self.steps[k].invert(z, history[k], origins)
        return z

    def to_dict(self) -> dict:
        return {"steps": self.spec, "params": [s.params() for s in self.steps]}

    @classmethod
    def from_dict(cls, d: dict, season: int, names: Sequence[str]) -> "TransformChain":
        chain = cls(d["steps"], season, names)
        for s, p in zip(chain.steps, d["params"]):
            s.load(p)
        return chain


NO_TRANSFORM = {"steps": [], "params": []}  # runs saved before transforms existed
