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


class LinearAR:
    """Direct multi-output linear autoregression on the last ``lags`` values (least squares, small ridge).

    One linear map per target column from its lags (plus intercept) to the next ``horizon`` values,
    fitted on windows whose targets lie in ``y[:n_fit]``.
    """

    def __init__(self, lags: int, horizon: int, ridge: float = 1e-6):
        self.lags, self.horizon, self.ridge = lags, horizon, ridge
        self.coef: list[np.ndarray] = []

    def _features(self, col: np.ndarray, origins: Sequence[int]) -> np.ndarray:
        X = np.stack([col[o - self.lags:o] for o in origins])
        return np.concatenate([X, np.ones((len(origins), 1))], axis=1)

    def fit(self, y: np.ndarray, n_fit: int) -> "LinearAR":
        origins = list(range(self.lags, n_fit - self.horizon + 1))
        if len(origins) < self.lags + 2:
            raise ValueError(f"linear AR with {self.lags} lags needs more than {n_fit} training values")
        self.coef = []
        for c in range(y.shape[1]):
            X = self._features(y[:, c], origins)
            Y = np.stack([y[o:o + self.horizon, c] for o in origins])
            A = X.T @ X + self.ridge * len(origins) * np.eye(X.shape[1])
            self.coef.append(np.linalg.solve(A, X.T @ Y))  # (lags + 1, H)
        return self

    def forecast(self, y: np.ndarray, origins: Sequence[int]) -> np.ndarray:
        cols = [self._features(y[:, c], origins) @ self.coef[c] for c in range(y.shape[1])]  # (W, H) each
        return np.stack(cols, axis=-1)
