"""Forecasting: stock prices, sensors, any time series, with baselines always beside the network.

Commands::

    rnnkit train forecast [--data FILE --target COL[,COL] --covariates COL,..] --horizon H --lookback L
    rnnkit evaluate RUN --data FILE     # rolling-origin metrics on a file, network vs naive baselines
    rnnkit predict RUN --data FILE      # the next H steps after the file's end, with intervals

Training splits the series chronologically (train / validation / test),
fits the scaling on the training part only, trains with early stopping on
the validation part, then runs a rolling-origin backtest over the test part:
from every ``--stride``-th origin, an H-step forecast by the network and by
the baselines (naive, seasonal naive, linear AR; ETS and SARIMA from
statsmodels), scored by MAE, RMSE, sMAPE and MASE (and interval coverage for
probabilistic outputs; accuracy for ``--output direction``).  The run gets
``result.json``, ``backtest.csv`` and ``forecast.png``.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rnnkit.atomic import atomic_write_csv
from rnnkit.config import ConfigError, TrainConfig, save_yaml, to_dict
from rnnkit.data.embedded_tasks import series_set
from rnnkit.data.readers import DataError
from rnnkit.data.tabular import Table, read_table
from rnnkit.tasks.forecast.data import (Scaler, Series, SplitPoints, auto_lookback, column_order, future_windows,
                                        in_time_order,
                                        infer_step, origins, parse_columns, read_series, series_from_table,
                                        part_sizes, split_future_rows, split_points, windows)
from rnnkit.tasks.forecast.backtest import Forecast, backtest_table, network_forecast, plot_forecast, score_models
from rnnkit.tasks.forecast.highway import HighwayFeatures, select_ridge
from rnnkit.tasks.forecast.ensemble import Ensemble
from rnnkit.tasks.forecast.esrnn import ESRNN
from rnnkit.tasks.forecast.model import Forecaster
from rnnkit.tasks.forecast.transforms import NO_TRANSFORM, TransformChain, seasonal_strength
from rnnkit.metrics import mase_scale
from rnnkit.tasks.baselines import forecasting as fb, statsmodels_ts
from rnnkit.tasks.forecast.config import ES_MODELS, REFIT, ForecastDataConfig, ForecastRunConfig, upgrade_config
from rnnkit.tasks.runs import load_task_checkpoint, write_json
from rnnkit.train import ListData, Trainer, seed_everything
from rnnkit.train.checkpoint import read_meta

TASK = "forecast"


# ------------------------------------------------------------------------ data

def season_from_times(times: list[str]) -> int:
    """12 for monthly, 7 for daily, 24 for hourly, 4 for quarterly, 52 for weekly data; else 1."""
    try:
        t = np.array([np.datetime64(x, "s") for x in times[: min(len(times), 50)]])
    except ValueError:
        return 1
    days = float(np.median(np.diff(t).astype("timedelta64[s]").astype(np.float64))) / 86400.0
    for lo, hi, m in ((0.03, 0.05, 24), (0.9, 1.1, 7), (6.5, 7.5, 52), (27, 32, 12), (88, 93, 4)):
        if lo <= days <= hi:
            return m
    return 1


def load_series(cfg: ForecastDataConfig) -> tuple[Series, int]:
    """The series and its seasonal period."""
    if cfg.data:
        s = read_series(cfg.data, parse_columns(cfg.target), parse_columns(cfg.covariates), cfg.time_column,
                        cfg.missing, parse_columns(cfg.future_covariates))
        return s, cfg.season or season_from_times(s.times)
    e = series_set(cfg.dataset)
    targets = parse_columns(cfg.target) or [e.target]
    covs = parse_columns(cfg.covariates) if cfg.covariates else list(e.covariates)  # the set's defaults
    future = parse_columns(cfg.future_covariates)
    names = column_order(targets, covs, future)
    missing = [c for c in names if c not in e.columns]
    if missing:
        raise DataError(f"embedded series {e.name!r} has no column {missing[0]!r}; columns: {', '.join(e.columns)}")
    values = np.stack([e.columns[c] for c in names], axis=1)
    n_future = len([c for c in dict.fromkeys(future) if c not in targets])
    return Series(e.times, values, names, len(targets), e.source, n_future), cfg.season or e.season


@dataclass
class WindowArrays:
    """Training windows: inputs (W, L, C), targets (W, H, T), known-future covariates (W, H, F) or None,
    and each window's absolute start index (W,)."""
    x: np.ndarray
    y: np.ndarray
    future: np.ndarray | None
    position: np.ndarray


def window_batches(a: WindowArrays, batch_size: int, seed: int) -> list[dict]:
    order = np.random.default_rng(seed).permutation(len(a.x))
    batches = []
    for i in range(0, len(a.x), batch_size):
        idx = order[i:i + batch_size]
        b = {"inputs": torch.from_numpy(a.x[idx]), "targets": torch.from_numpy(a.y[idx]),
             "position": torch.from_numpy(a.position[idx])}
        if a.future is not None:
            b["future"] = torch.from_numpy(a.future[idx])
        batches.append(b)
    return batches


# -------------------------------------------------------------------- training

def build_model(cfg: ForecastRunConfig, n_features: int, n_targets: int, n_future: int = 0, season: int = 1
                ) -> torch.nn.Module:
    """The configured network: a :class:`Forecaster`, an :class:`ESRNN`, or an :class:`Ensemble` of either."""
    steps = 1 if cfg.model.strategy == "recursive" else cfg.data.horizon
    quantiles = cfg.model.quantile_list(cfg.data.interval)
    kinds = ["rnn", "esrnn"] if cfg.model.model == "rnn+esrnn" else [cfg.model.model]

    def one(kind: str) -> torch.nn.Module:
        if kind == "esrnn":
            return ESRNN(cfg.model, n_features, n_targets, steps, quantiles, season)
        mcfg = cfg.model if kind == cfg.model.model else dataclasses.replace(cfg.model, model=kind)
        return Forecaster(mcfg, n_features, n_targets, steps, quantiles, n_future)
    makers = [lambda k=kind: one(k) for _ in range(cfg.model.ensemble) for kind in kinds]
    return Ensemble(makers) if len(makers) > 1 else makers[0]()


@dataclass
class Prepared:
    """The series, its split, target transform and scaling, and the training / validation windows."""
    series: Series
    season: int
    sp: SplitPoints
    chain: TransformChain
    scaler: Scaler
    scaled: np.ndarray
    meta: dict

    def arrays(self, cfg: ForecastRunConfig, start: int, end: int) -> WindowArrays:
        """The windows whose targets lie in [start, end) (none reads a value the transform left undefined)."""
        L = cfg.model.lookback
        steps = 1 if cfg.model.strategy == "recursive" else cfg.data.horizon
        o = origins(max(start, self.chain.warmup + L), end, L, steps)
        x, y = windows(self.scaled, o, L, steps, self.series.n_targets)
        F = self.series.n_future if cfg.model.strategy == "direct" else 0
        return WindowArrays(x, y, future_windows(self.scaled, o, steps, F) if F else None,
                            np.asarray(o, dtype=np.int64) - L)


def resolve_transform(spec: str, train: np.ndarray, model: str, validated: bool = True) -> list[str]:
    """The transform steps of ``--transform``, decided on the training part ``train`` (n, T) only.

    ``auto``: ``log`` for the models with exponential smoothing when every training value is positive; for the
    others none, except on a series too short for a validation part (``validated`` False: nothing can stop the
    training or choose the highway's ridge), which the network reads as differences (``log, diff``: growth
    rates, when every training value is positive), a random walk with drift as its start
    (measured: docs/forecast.md).
    """
    if spec == "none":
        return []
    if spec != "auto":
        return parse_columns(spec)
    positive = bool((train > 0).all())
    if model in ES_MODELS:
        return ["log"] if positive else []
    if not validated:
        return ["log", "diff"] if positive else ["diff"]
    return []


def resumed_transform(spec: str, steps: list[str], checkpoint: Path) -> list[str]:
    """The transform steps a resumed run continues with: those its ``checkpoint`` was trained on.

    ``auto`` was decided when the run started, by the rule of the rnnkit that started it, which may differ from
    today's ``steps`` (``log, diff`` on a series too short for a validation part came later): the run goes on
    with its own steps, with a notice.  A named transform other than the trained one is an error: the network
    learned the series read another way.
    """
    trained = list(read_meta(checkpoint).get("metadata", {}).get("transform", NO_TRANSFORM)["steps"])
    if steps == trained:
        return steps
    was, now = ",".join(trained) or "none", ",".join(steps) or "none"
    if spec == "auto":
        print(f"notice: {checkpoint} was trained with transform {was} (what --transform auto gave when the run "
              f"started; it gives {now} now): the resumed run keeps {was}", file=sys.stderr)
        return trained
    raise ConfigError(f"{checkpoint}: the run was trained with transform {was}, not {now}; resume with "
                      f"--transform {was}, or start a new run")


STRONG_SEASON = 0.6  # seasonal strength from which a series counts as seasonal (measured: docs/forecast.md)
PLAIN_LOOKBACK = 24  # lookback of the automatic rule for a series without a strong season
LONGER_PERIOD = {24: 168}  # season -> the longer calendar period of that time step: hourly data's week


def longest_period(season: int) -> int:
    """The longest regular calendar period of a series with this season (hourly: a week, 168), else the season."""
    return LONGER_PERIOD.get(season, season)


@dataclass
class AutoChoice:
    """What ``lookback 0`` and ``model auto`` resolve to on a series, and the facts they follow from."""
    lookback: int
    model: str
    season: int
    seasonal_strength: float


def auto_choice(cfg: ForecastRunConfig, series: Series, season: int) -> AutoChoice:
    """The documented rule (docs/forecast.md), decided on the training part only.

    A series is seasonal when its seasonal strength (classical decomposition of the training part) is at
    least :data:`STRONG_SEASON`.  Lookback: one season for a seasonal series, else the longest calendar
    period (:func:`longest_period`: a week of hourly data) or 24 steps, whichever is longer, shortened for a
    short series (:func:`auto_lookback`).  Model: rnn+esrnn for a seasonal series whose
    training part holds 3 seasons (direct point or quantile forecasts), else rnn.
    """
    d, m = cfg.data, cfg.model
    n_val, n_test = part_sizes(len(series), d.val_fraction, d.test_fraction, d.horizon)
    strength = seasonal_strength(series.targets[: len(series) - n_val - n_test], season)
    seasonal = season > 1 and strength >= STRONG_SEASON
    preferred = season if seasonal else max(longest_period(season), PLAIN_LOOKBACK)
    lookback = m.lookback or auto_lookback(len(series), preferred, d.horizon, d.val_fraction, d.test_fraction)
    model = m.model
    if model == "auto":
        n_train = split_points(len(series), d.val_fraction, d.test_fraction, lookback, d.horizon).n_train
        es_ok = m.strategy == "direct" and m.output in ("point", "quantile")
        model = "rnn+esrnn" if seasonal and es_ok and n_train >= 3 * season else "rnn"
    return AutoChoice(lookback, model, season, strength)


def resolve_auto(cfg: ForecastRunConfig) -> tuple[ForecastRunConfig, AutoChoice | None]:
    """``cfg`` with ``lookback 0`` and ``model auto`` replaced by what they resolve to on this series (the
    saved config holds the resolved values, so a run loads and resumes without the rule)."""
    if cfg.model.lookback and cfg.model.model != "auto":
        return cfg, None
    choice = auto_choice(cfg, *load_series(cfg.data))
    model = dataclasses.replace(cfg.model, lookback=choice.lookback, model=choice.model)
    return dataclasses.replace(cfg, model=model), choice


def prepare(cfg: ForecastRunConfig, resumed: Path | None = None) -> Prepared:
    """The series, its split, and the transform and scaler fitted on the training part; ``resumed``: the
    checkpoint a resumed run continues from (its transform is the one the run goes on with)."""
    series, season = load_series(cfg.data)
    sp = split_points(len(series), cfg.data.val_fraction, cfg.data.test_fraction, cfg.model.lookback,
                      cfg.data.horizon)
    T = series.n_targets
    train = series.targets[: sp.n_train]                      # every fitted statistic sees this part only
    spec = "none" if cfg.model.output == "direction" else cfg.data.transform
    steps = resolve_transform(spec, train, cfg.model.model, sp.has_validation)
    if resumed is not None:
        steps = resumed_transform(spec, steps, resumed)
    chain = TransformChain(steps, season, series.target_names).fit(train)
    values = chain.apply_columns(series.values, T)
    scaler = Scaler.fit(values[chain.warmup: sp.n_train])
    meta = {"task": TASK, "scaler": scaler.to_dict(), "transform": chain.to_dict(), "names": series.names,
            "n_targets": T, "season": season, "n_future": series.n_future, "source": series.source,
            "split": to_dict(sp), "mase_scale": [mase_scale(train[:, j], season) for j in range(T)],
            "times": series.times[-2:]}
    return Prepared(series, season, sp, chain, scaler, scaler.transform(values), meta)


def _fit(cfg: ForecastRunConfig, prep: Prepared, run_dir: Path, train_arrays, val_arrays, resume: bool,
         ridge: float, train_cfg: TrainConfig | None = None, callbacks=()):
    model = build_model(cfg, prep.series.values.shape[1], prep.series.n_targets, prep.series.n_future,
                        prep.season)
    if not resume:
        model.init_from_windows(torch.from_numpy(train_arrays.x), torch.from_numpy(train_arrays.y),
                                torch.from_numpy(train_arrays.position), ridge)
    tcfg = train_cfg or cfg.train
    trainer = Trainer(model, tcfg, run_dir=run_dir, run_config=to_dict(cfg), metadata=prep.meta, callbacks=callbacks)
    val = window_batches(val_arrays, 256, 0) if val_arrays else None
    fit = trainer.fit(ListData(window_batches(train_arrays, tcfg.batch_size, tcfg.seed), shuffle=True,
                               seed=tcfg.seed), val, resume=resume)
    return model, fit


def refit(cfg: ForecastRunConfig, prep: Prepared, run_dir: Path, updates: int, ridge: float):
    """Train a fresh network on train + validation windows for ``updates`` updates (the selected length)."""
    arrays = prep.arrays(cfg, 0, prep.sp.n_val_end)
    per_epoch = math.ceil(len(arrays.x) / cfg.train.batch_size)
    tcfg = dataclasses.replace(cfg.train, max_steps=max(updates, 1), patience=0,
                               epochs=math.ceil(max(updates, 1) / per_epoch) + 1)
    return _fit(cfg, prep, run_dir / REFIT, arrays, None, False, ridge, tcfg)


def highway_ridge(cfg: ForecastRunConfig, prep: Prepared, train_arrays, val_arrays) -> float:
    """The configured ridge, or (``auto``) the one whose AR fit on the training windows does best on validation
    (the smallest of the grid without a validation part)."""
    fixed = cfg.model.fixed_ridge()
    if (fixed is not None or not cfg.model.highway or cfg.model.output == "direction" or cfg.model.model == "esrnn"
            or val_arrays is None):
        return 1e-4 if fixed is None else fixed
    features = HighwayFeatures(prep.series.n_targets, cfg.model.normalize, cfg.model.highway_level)
    as_t = [torch.from_numpy(a) for a in (train_arrays.x, train_arrays.y, val_arrays.x, val_arrays.y)]
    return select_ridge(features, (as_t[0], as_t[1]), (as_t[2], as_t[3]))


def train_forecast(cfg: ForecastRunConfig, run_dir: str | Path, *, resume: bool | str | Path = False,
                   callbacks=()) -> dict:
    """Train, then backtest the network and the baselines on the test part; returns result.json's content.

    With ``refit`` the network is trained again on train + validation for as many updates as the
    early-stopped run needed (in ``RUN/refit/``), and that network is the one backtested and used later.
    """
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    cfg, choice = resolve_auto(cfg)
    resumed = None
    if resume:   # the checkpoint the run continues from: the one named, or (True) the last one
        resumed = run_dir / "checkpoints" / "last.safetensors" if resume is True else Path(resume)
    prep = prepare(cfg, resumed)
    sp, H = prep.sp, cfg.data.horizon
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    train_arrays = prep.arrays(cfg, 0, sp.n_train)
    val_arrays = prep.arrays(cfg, sp.n_train, sp.n_val_end) if sp.has_validation else None
    if val_arrays is None:
        print(f"notice: {len(prep.series)} steps leave no validation part beside a test part of {sp.n - sp.n_val_end} "
              f"and training windows of {cfg.model.lookback} + {H}: no early stopping, the network trains "
              f"{cfg.train.epochs} epochs on all {sp.n_train} steps before the test part", file=sys.stderr)
    ridge = highway_ridge(cfg, prep, train_arrays, val_arrays)
    model, fit = _fit(cfg, prep, run_dir, train_arrays, val_arrays, resume, ridge, callbacks=callbacks)
    refitted = cfg.data.refit and sp.has_validation  # without validation the first fit saw the same data
    refit_s = refit(cfg, prep, run_dir, fit.best_step or fit.steps, ridge)[1].elapsed_s if refitted else 0.0
    loaded = load_forecaster(run_dir)
    test_origins = origins(sp.n_val_end, sp.n, cfg.model.lookback, H, cfg.data.stride)
    n_fit = sp.n_val_end if cfg.data.baseline_fit == "train+val" else sp.n_train
    models = backtest(loaded, prep.series, n_fit, test_origins, prep.season, parse_columns(cfg.data.baselines))
    metrics = score_models(models, prep.series, test_origins, H, prep.meta["mase_scale"], cfg.data.interval)
    backtest_table(run_dir / "backtest.csv", models, prep.series, test_origins, H)
    plot_forecast(run_dir / "forecast.png", prep.series, models, test_origins, H, sp, title=prep.series.source)
    result = {"model": cfg.model.model, "lookback": cfg.model.lookback,
              "auto": None if choice is None else dataclasses.asdict(choice),
              "stopped": fit.stopped, "steps": fit.steps, "best_step": fit.best_step, "refit": refitted,
              "highway_ridge": ridge, "transform": prep.chain.spec,
              "elapsed_s": fit.elapsed_s + refit_s,  # every fit: compare's train_s
              "fit_s": fit.elapsed_s, "refit_s": refit_s,
              "parameters": sum(p.numel() for p in model.parameters()),
              "season": prep.season, "origins": len(test_origins), "horizon": H, "split": to_dict(sp),
              "baselines_chose": {k: fc.chosen for k, fc in models.items() if fc.chosen},
              "test": metrics}
    write_json(run_dir / "result.json", result)
    return result


def backtest(loaded: "LoadedForecaster", series: Series, n_fit: int, test_origins: list[int], season: int,
             baselines: list[str]) -> dict[str, Forecast]:
    """Forecasts (original units) of the network and each baseline from every origin."""
    H, y = loaded.config.data.horizon, series.targets
    models = {loaded.name: network_forecast(loaded, series, test_origins)}
    if loaded.config.model.output == "direction":
        return models
    makers = {
        "naive": lambda: Forecast(fb.naive(y, test_origins, H)),
        "seasonal": lambda: Forecast(fb.seasonal_naive(y, test_origins, H, season)),
        "ar": lambda: _linear_ar(y, n_fit, test_origins, H, season),
        "ets": lambda: Forecast(_classical("ets", y, n_fit, test_origins, H, season)),
        "sarima": lambda: Forecast(_classical("sarima", y, n_fit, test_origins, H, season)),
    }
    for name in baselines:
        models[name] = makers[name]()
    return models


def _linear_ar(y, n_fit, test_origins, H, season) -> Forecast:
    """The linear AR baseline with its own order per target (AIC on ``y[:n_fit]``), not the network's lookback."""
    ar = fb.LinearAR(None, H, season=season, longest=longest_period(season)).fit(y, n_fit)
    return Forecast(ar.forecast(y, test_origins), chosen={"lags": ar.orders})


def _classical(name: str, y, n_fit, test_origins, H, season):
    return getattr(statsmodels_ts, name)(y, n_fit, test_origins, H, season)


# ------------------------------------------------------------------ saved runs

@dataclass
class LoadedForecaster:
    model: torch.nn.Module
    scaler: Scaler
    config: ForecastRunConfig
    meta: dict
    run_dir: Path
    transform: TransformChain

    @property
    def name(self) -> str:
        m = self.config.model
        base = {"rnn": m.cell, "rnn+esrnn": f"{m.cell}+esrnn"}.get(m.model, m.model)
        return f"{base} x{m.ensemble}" if m.ensemble > 1 else base


def load_forecaster(run: str | Path) -> LoadedForecaster:
    """A trained run's network: the refit one (``RUN/refit/``) when the run made one."""
    refit_dir = Path(run) / REFIT
    ck, cfg, meta = load_task_checkpoint(refit_dir if refit_dir.is_dir() else run, TASK, ForecastRunConfig,
                                         upgrade_config)
    model = build_model(cfg, len(meta["names"]), meta["n_targets"], meta.get("n_future", 0), meta["season"])
    model.load_state_dict(ck.group("model"))
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent.parent
    names = meta["names"][: meta["n_targets"]]
    chain = TransformChain.from_dict(meta.get("transform", NO_TRANSFORM), meta["season"], names)
    return LoadedForecaster(model.eval(), Scaler.from_dict(meta["scaler"]), cfg, meta, run_dir, chain)


def _read_like_run(loaded: LoadedForecaster, path: str) -> Series:
    d, names, T = loaded.config.data, loaded.meta["names"], loaded.meta["n_targets"]
    F = loaded.meta.get("n_future", 0)
    return read_series(path, names[:T], names[T:len(names) - F], d.time_column, d.missing, names[len(names) - F:])


def evaluate_forecast(run: str | Path, data: str | Path) -> dict:
    """Rolling-origin metrics over a whole labelled file: the network vs naive and seasonal naive."""
    loaded = load_forecaster(run)
    series = _read_like_run(loaded, str(data))
    L, H = loaded.config.model.lookback, loaded.config.data.horizon
    season = loaded.meta["season"]
    test_origins = origins(max(L + loaded.transform.warmup, season), len(series), L, H, loaded.config.data.stride)
    if not test_origins:
        raise DataError(f"{data}: {len(series)} steps are too few for lookback {L} + horizon {H}")
    baselines = [] if loaded.config.model.output == "direction" else ["naive", "seasonal"]
    models = backtest(loaded, series, 0, test_origins, season, baselines)
    metrics = score_models(models, series, test_origins, H, loaded.meta["mase_scale"], loaded.config.data.interval)
    stem = Path(data).stem
    backtest_table(loaded.run_dir / f"backtest-{stem}.csv", models, series, test_origins, H)
    return metrics


def _read_for_predict(loaded: LoadedForecaster, table: Table) -> tuple[Series, np.ndarray | None]:
    """The observed series and, for a model with known-future covariates, their scaled (1, H, F) values."""
    d, names, T = loaded.config.data, loaded.meta["names"], loaded.meta["n_targets"]
    F = loaded.meta.get("n_future", 0)
    if not F or loaded.config.model.strategy != "direct":
        return series_from_table(table, names[:T], names[T:len(names) - F], d.time_column, d.missing,
                                 names[len(names) - F:]), None
    table = in_time_order(table, d.time_column or table.columns[0])  # before the split at the last target
    observed, fut = split_future_rows(table, names[:T], names[-F:], d.horizon)
    series = series_from_table(observed, names[:T], names[T:-F], d.time_column, d.missing, names[-F:])
    scaled = (fut - loaded.scaler.mean[-F:]) / loaded.scaler.std[-F:]
    return series, scaled[None].astype(np.float32)


def predict_forecast(run: str | Path, data: str | Path) -> list[dict]:
    """The next H steps after the last row with target values (rows per step and target: time, mean, interval),
    also written to ``RUN/forecast-<data name>.csv``.

    With known-future covariates, the H rows after that one must hold their values (targets left empty).
    """
    loaded = load_forecaster(run)
    rows = forecast_table(loaded, read_table(data))
    columns = list(rows[0])
    atomic_write_csv(loaded.run_dir / f"forecast-{Path(data).stem}.csv",
                     [columns] + [[row.get(c, "") for c in columns] for row in rows])
    return rows


def forecast_table(loaded: LoadedForecaster, table: Table) -> list[dict]:
    """:func:`predict_forecast` on a table of the run's columns, read already (nothing is written)."""
    data = table.path
    series, future = _read_for_predict(loaded, table)
    L, H = loaded.config.model.lookback, loaded.config.data.horizon
    if len(series) < L:
        raise DataError(f"{data}: {len(series)} steps, the network reads the last {L}")
    if loaded.config.model.strategy == "recursive" and series.covariate_names:
        raise DataError(f"{data}: a recursive forecast with covariates needs their future values; "
                        "this run cannot forecast past the end of the file")
    fc = network_forecast(loaded, series, [len(series)], future=future)
    label = infer_step(series.times)
    rows = []
    for h in range(H):
        for j, name in enumerate(series.target_names):
            row = {"time": label(h + 1), "target": name}
            if fc.p_up is not None:
                row["p_up"] = float(fc.p_up[0, h, j])
            else:
                row["forecast"] = float(fc.mean[0, h, j])
                if fc.lower is not None:
                    row["lower"], row["upper"] = float(fc.lower[0, h, j]), float(fc.upper[0, h, j])
            rows.append(row)
    return rows
