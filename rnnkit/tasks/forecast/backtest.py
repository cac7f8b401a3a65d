"""Forecasts from a trained network at many origins, their scores, the backtest table and the plot."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rnnkit.atomic import atomic_write_csv
from rnnkit.tasks.forecast.data import Series, SplitPoints, future_windows
from rnnkit.config import ConfigError
from rnnkit.tasks.forecast.model import QUANTILE_TOL, gaussian_interval, interval_bounds, recursive_forecast
from rnnkit.metrics import forecast_metrics, interval_coverage


@dataclass
class Forecast:
    """Forecasts from W origins, original units: ``mean`` (W, H, T), optional interval, or ``p_up``; ``chosen``:
    what a baseline chose on its fit part (the AR's lags per target), for result.json."""
    mean: np.ndarray | None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    p_up: np.ndarray | None = None
    chosen: dict | None = None


def _windows(scaled: np.ndarray, origin_list: list[int], L: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([scaled[o - L:o] for o in origin_list]).astype(np.float32))


def network_forecast(loaded, series: Series, origin_list: list[int], future: np.ndarray | None = None) -> Forecast:
    """The network's forecast from each origin (the window ``[o - L, o)``); see ``Forecaster``.

    A direct model with known-future covariates takes them from the series (backtest) or from ``future``
    (W, H, F), already scaled (forecasting past the series' end).
    """
    cfg, model, scaler, chain = loaded.config, loaded.model, loaded.scaler, loaded.transform
    L, H, T = cfg.model.lookback, cfg.data.horizon, series.n_targets
    scaled = scaler.transform(chain.apply_columns(series.values, T))
    x = _windows(scaled, origin_list, L)
    position = torch.as_tensor(origin_list, dtype=torch.int64) - L
    gen = torch.Generator().manual_seed(cfg.train.seed)
    with torch.no_grad():
        if cfg.model.strategy == "direct":
            fut = None
            if model.n_future:
                fut = future if future is not None else future_windows(scaled, origin_list, H, model.n_future)
                fut = torch.as_tensor(fut)
            d = model.distribution(x, fut, position=position)
        else:
            cov = None
            if series.values.shape[1] > T:
                cov = torch.from_numpy(np.stack([scaled[o:o + H, T:] for o in origin_list]).astype(np.float32))
            samples = cfg.model.samples if cfg.model.output == "gaussian" else 0
            d = recursive_forecast(model, x, H, cov, samples, gen)
    if "p_up" in d:
        return Forecast(None, p_up=d["p_up"].numpy())
    mu, sd = scaler.mean[:T], scaler.std[:T]

    def original(z: np.ndarray) -> np.ndarray:  # scaled, transformed units -> the series' units
        return chain.invert(z * sd + mu, series.targets, origin_list)
    mean = original(d["mean"].double().numpy())
    lower = upper = None
    level = cfg.data.interval
    if "samples" in d:
        qs = np.quantile(d["samples"].double().numpy(), [(1 - level) / 2, (1 + level) / 2], axis=1)
        lower, upper = original(qs[0]), original(qs[1])
    elif "std" in d:
        lo, hi = gaussian_interval(d["mean"].double(), d["std"].double(), level)
        lower, upper = original(lo.numpy()), original(hi.numpy())
    elif "quantiles" in d:
        q = d["quantiles"].double().numpy()                          # (W, H, T, Q)
        i, j = interval_columns(model.quantiles.tolist(), level)
        lower, upper = original(q[..., i]), original(q[..., j])
    return Forecast(mean, lower, upper)


def interval_columns(levels: list[float], interval: float) -> tuple[int, int]:
    """Indices of the quantiles bounding the central ``interval`` among the model's ``levels``."""
    cols = []
    for bound in interval_bounds(interval):
        near = [i for i, q in enumerate(levels) if abs(q - bound) < QUANTILE_TOL]
        if not near:
            raise ConfigError(f"interval={interval} needs the quantile {bound:g}, but this run was trained "
                              f"for {', '.join(f'{q:g}' for q in levels)}")
        cols.append(near[0])
    return cols[0], cols[1]


def actuals(series: Series, origin_list: list[int], H: int) -> np.ndarray:
    return np.stack([series.targets[o:o + H] for o in origin_list])  # (W, H, T)


def score_models(models: dict[str, Forecast], series: Series, origin_list: list[int], H: int,
                 scale: list[float], level: float) -> dict[str, dict]:
    """Per model: MAE, RMSE, sMAPE, MASE averaged over targets (+ coverage), or direction accuracy."""
    y = actuals(series, origin_list, H)
    out = {}
    for name, fc in models.items():
        if fc.p_up is not None:
            out.update(direction_scores(name, fc.p_up, series, origin_list, H))
            continue
        per = [forecast_metrics(y[..., j], fc.mean[..., j], scale[j]) for j in range(y.shape[-1])]
        row = {k: float(np.mean([p[k] for p in per])) for k in per[0]}
        if fc.lower is not None:
            row["coverage"] = interval_coverage(y, fc.lower, fc.upper)
        out[name] = row
    return out


def direction_scores(name: str, p_up: np.ndarray, series: Series, origin_list: list[int], H: int) -> dict:
    """Accuracy of "above the last observed value" for the network, 'always up' and 'last change'."""
    y = series.targets
    last = np.stack([y[o - 1] for o in origin_list])[:, None, :]                 # (W, 1, T)
    up = actuals(series, origin_list, H) > last                                  # (W, H, T)
    change = np.stack([y[o - 1] - y[o - 2] for o in origin_list])[:, None, :] > 0
    return {name: {"accuracy": float(np.mean((p_up > 0.5) == up))},
            "always-up": {"accuracy": float(np.mean(up))},
            "last-change": {"accuracy": float(np.mean(np.broadcast_to(change, up.shape) == up))}}


def backtest_table(path: Path, models: dict[str, Forecast], series: Series, origin_list: list[int], H: int) -> None:
    """One CSV row per model, origin, step and target."""
    y = actuals(series, origin_list, H)
    rows = [["model", "origin", "step", "time", "target", "actual", "forecast", "lower", "upper"]]
    for name, fc in models.items():
        values = fc.mean if fc.mean is not None else fc.p_up
        for i, o in enumerate(origin_list):
            for h in range(H):
                for j, tname in enumerate(series.target_names):
                    lo = "" if fc.lower is None else f"{fc.lower[i, h, j]:.6g}"
                    hi = "" if fc.upper is None else f"{fc.upper[i, h, j]:.6g}"
                    rows.append([name, series.times[o], h + 1, series.times[o + h], tname,
                                 f"{y[i, h, j]:.6g}", f"{values[i, h, j]:.6g}", lo, hi])
    atomic_write_csv(path, rows)


def plot_forecast(path: Path, series: Series, models: dict[str, Forecast], origin_list: list[int], H: int,
                  sp: SplitPoints, title: str = "") -> None:
    """Actual series over validation + test, and each model's forecasts from origins H steps apart."""
    from rnnkit.train.plots import plt, save_figure  # matplotlib (Agg backend), imported only when plotting
    start = max(0, sp.n_train - (sp.n_val_end - sp.n_train))
    t = np.arange(len(series))
    tiles = list(range(0, len(origin_list), H))
    fig, ax = plt.subplots(figsize=(10, 4))
    y = series.targets[:, 0]
    ax.plot(t[start:], y[start:], color="black", lw=1.2, label=f"actual {series.target_names[0]}")
    ax.axvline(sp.n_val_end, color="grey", ls=":", lw=1)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, fc) in enumerate(models.items()):
        if fc.mean is None:
            continue
        c = colours[k % len(colours)]
        for n, i in enumerate(tiles):
            o = origin_list[i]
            steps = t[o:o + H]
            ax.plot(steps, fc.mean[i, :, 0], color=c, lw=1.4 if k == 0 else 0.8, ls="-" if k == 0 else "--",
                    label=name if n == 0 else None)
            if fc.lower is not None and k == 0:
                ax.fill_between(steps, fc.lower[i, :, 0], fc.upper[i, :, 0], color=c, alpha=0.2,
                                label="interval" if n == 0 else None)
    ax.set_title(title or "forecast")
    ax.set_xlabel("step (dotted line: start of the test part)")
    ax.legend(fontsize=7, ncol=3)
    save_figure(fig, path, dpi=100)
