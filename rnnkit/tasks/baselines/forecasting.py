"""Forecasting baselines that need no training loop: naive, seasonal naive, linear autoregression.

All share ``forecast(y, origins, horizon) -> (W, H, C)``: ``y`` is the target
series (N, C) in original units, and the forecast from origin ``o`` may use
``y[:o]`` only.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def naive(y: np.ndarray, origins: Sequence[int], horizon: int) -> np.ndarray:
    """The last observed value, repeated."""
    return np.stack([np.repeat(y[o - 1][None, :], horizon, axis=0) for o in origins])


def seasonal_naive(y: np.ndarray, origins: Sequence[int], horizon: int, season: int) -> np.ndarray:
    """``y[o + h - m * (h // m + 1)]``: the value one season before (repeated beyond one season)."""
    m = max(int(season), 1)
    out = []
    for o in origins:
        if o < m:
            raise ValueError(f"seasonal naive needs {m} past values at origin {o}")
        out.append(np.stack([y[o + h - m * (h // m + 1)] for h in range(horizon)]))
    return np.stack(out)


def max_ar_lags(n_fit: int, horizon: int, season: int, longest: int = 0) -> int:
    """The largest order :func:`ar_order_by_aic` tries: ``max(2 m, longest, 10 log10 n)`` (two seasons, the
    longest calendar period given, e.g. a week of hourly data, or R's ``ar()`` default), capped so the direct
    fit of :class:`LinearAR` keeps more windows than coefficients."""
    wanted = max(2 * max(int(season), 1), int(longest), int(round(10 * np.log10(max(n_fit, 1)))))
    feasible = (n_fit - horizon - 1) // 2        # n_fit - horizon - p + 1 windows >= p + 2
    if feasible < 1:
        raise ValueError(f"linear AR with horizon {horizon} needs more than {n_fit} values to fit")
    return min(wanted, feasible)


def ar_order_by_aic(col: np.ndarray, max_lags: int) -> int:
    """The order p in 1..max_lags minimising AIC = n log(RSS / n) + 2 (p + 1) of a one-step least-squares
    AR(p) with intercept, every order scored on the same n = len(col) - max_lags targets (the first
    ``max_lags`` values held back), as statsmodels' ``ar_select_order(..., ic="aic")`` does.

    The fits are nested, so one QR of [1, lag 1, .., lag max_lags] gives every RSS:
    ``RSS_p = |y|^2 - |Q[:, :p+1]' y|^2``.
    """
    col = np.asarray(col, dtype=np.float64)
    n = len(col) - max_lags
    if n <= max_lags + 1:
        raise ValueError(f"choosing an AR order up to {max_lags} needs more than {2 * max_lags + 1} values, "
                         f"got {len(col)}")
    target = col[max_lags:]                                                        # (n,)
    lagged = [col[max_lags - k:len(col) - k] for k in range(1, max_lags + 1)]
    X = np.stack([np.ones(n), *lagged], axis=1)                                    # (n, max_lags + 1)
    q, _ = np.linalg.qr(X)
    explained = np.cumsum((q.T @ target) ** 2)                                     # (max_lags + 1,)
    rss = np.maximum(float(target @ target) - explained[1:], 1e-300)               # (max_lags,): p = 1..max
    aic = n * np.log(rss / n) + 2 * (np.arange(1, max_lags + 1) + 1)
    return int(np.argmin(aic)) + 1


class LinearAR:
    """Direct multi-output linear autoregression on the last ``lags`` values (least squares, small ridge).

    One linear map per target column from its lags (plus intercept) to the next ``horizon`` values,
    fitted on windows whose targets lie in ``y[:n_fit]``.  ``lags`` is one number for every column, or
    None: each column's own order by AIC on ``y[:n_fit]`` (:func:`ar_order_by_aic`, up to
    :func:`max_ar_lags` of ``season`` and ``longest``), so the baseline chooses its order on the data it
    is fitted on, whatever window a network reads.
    """

    def __init__(self, lags: int | None, horizon: int, ridge: float = 1e-6, season: int = 1, longest: int = 0):
        self.lags, self.horizon, self.ridge, self.season, self.longest = lags, horizon, ridge, season, longest
        self.coef: list[np.ndarray] = []
        self.orders: list[int] = []    # the lags of each column, set by fit

    @staticmethod
    def _features(col: np.ndarray, origins: Sequence[int], lags: int) -> np.ndarray:
        X = np.stack([col[o - lags:o] for o in origins])
        return np.concatenate([X, np.ones((len(origins), 1))], axis=1)

    def fit(self, y: np.ndarray, n_fit: int) -> "LinearAR":
        self.coef, self.orders = [], []
        for c in range(y.shape[1]):
            col = y[:n_fit, c]                       # nothing after n_fit is read
            p = self.lags or ar_order_by_aic(col, max_ar_lags(n_fit, self.horizon, self.season, self.longest))
            origins = list(range(p, n_fit - self.horizon + 1))
            if len(origins) < p + 2:
                raise ValueError(f"linear AR with {p} lags needs more than {n_fit} training values")
            X = self._features(col, origins, p)
            Y = np.stack([col[o:o + self.horizon] for o in origins])
            A = X.T @ X + self.ridge * len(origins) * np.eye(X.shape[1])
            self.coef.append(np.linalg.solve(A, X.T @ Y))  # (p + 1, H)
            self.orders.append(p)
        return self

    def forecast(self, y: np.ndarray, origins: Sequence[int]) -> np.ndarray:
        cols = [self._features(y[:, c], origins, p) @ coef                        # (W, H) each
                for c, (p, coef) in enumerate(zip(self.orders, self.coef))]
        return np.stack(cols, axis=-1)
