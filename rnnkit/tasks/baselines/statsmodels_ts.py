"""Exponential smoothing (ETS) and SARIMA from statsmodels, as forecasting baselines.

Both are state-space models fitted by maximum likelihood on the values before
the test part; forecasts from each test origin then re-run the Kalman filter
on the data up to that origin with the parameters fixed (``results.apply``),
the rolling-origin protocol without refitting.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from rnnkit.tasks.runs import need


def _fit(model_fn, y: np.ndarray, n_fit: int, origins: Sequence[int], horizon: int) -> np.ndarray:
    """(W, H) forecasts of one column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the score shows how well it did
        res = model_fn(y[:n_fit]).fit(disp=False)
        out = []
        for o in origins:
            applied = res.apply(y[:o])
            out.append(np.asarray(applied.forecast(horizon)))
    return np.stack(out)


def ets(y: np.ndarray, n_fit: int, origins: Sequence[int], horizon: int, season: int) -> np.ndarray:
    """Additive-trend (damped) exponential smoothing, additive seasonality when ``season > 1``."""
    es = need("statsmodels.tsa.statespace.exponential_smoothing", "the exponential-smoothing baseline")
    seasonal = season if 1 < season <= 52 and n_fit >= 2 * season else None

    def model(endog):
        return es.ExponentialSmoothing(endog, trend=True, damped_trend=True, seasonal=seasonal)
    return np.stack([_fit(model, y[:, c], n_fit, origins, horizon) for c in range(y.shape[1])], axis=-1)


def sarima(y: np.ndarray, n_fit: int, origins: Sequence[int], horizon: int, season: int,
           order=(1, 1, 1), seasonal_order=(0, 1, 1)) -> np.ndarray:
    """SARIMA(1,1,1)(0,1,1)_m (the "airline"-style default); ARIMA(1,1,1) when there is no usable season."""
    sx = need("statsmodels.tsa.statespace.sarimax", "the SARIMA baseline")
    s_order = (*seasonal_order, season) if 1 < season <= 52 and n_fit >= 3 * season else (0, 0, 0, 0)

    def model(endog):
        return sx.SARIMAX(endog, order=order, seasonal_order=s_order, trend="n")
    return np.stack([_fit(model, y[:, c], n_fit, origins, horizon) for c in range(y.shape[1])], axis=-1)
