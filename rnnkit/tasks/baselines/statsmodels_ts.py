"""Exponential smoothing (ETS) and SARIMA from statsmodels, as forecasting baselines.

Both are state-space models fitted by maximum likelihood on the values before
the test part; forecasts from each test origin then come from the Kalman filter
run with the parameters fixed (the rolling-origin protocol without refitting).
The filter runs once over the whole series (``results.apply``): its predicted
state at ``o`` uses ``y[:o]`` only, and the h-step forecast of a time-invariant
model is ``Z T^(h-1) a_o + d`` (equal to ``results.apply(y[:o]).forecast(H)``,
which costs a pass over the series per origin: hours for thousands of origins).
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
        applied = res.apply(y[:max(origins)])
        f = applied.filter_results
        if not f.time_invariant:  # a model whose matrices change over time: one filter pass per origin
            return np.stack([np.asarray(res.apply(y[:o]).forecast(horizon)) for o in origins])
    return state_forecasts(f, origins, horizon)


def state_forecasts(f, origins: Sequence[int], horizon: int) -> np.ndarray:
    """(W, H) forecasts ``Z T^(h-1) a_o + d`` from the filter's predicted states at each origin."""
    Z, T = f.design[0, :, 0], f.transition[:, :, 0]                  # (k,), (k, k)
    d, c = float(f.obs_intercept[0, 0]), f.state_intercept[:, 0]    # scalar, (k,)
    a = f.predicted_state[:, list(origins)]                         # (k, W): state for step o given y[:o]
    out = []
    for _ in range(horizon):
        out.append(Z @ a + d)                                       # (W,)
        a = T @ a + c[:, None]
    return np.stack(out, axis=1)


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
