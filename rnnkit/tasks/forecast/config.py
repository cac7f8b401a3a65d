"""The forecast task's run config: ``model``, ``data`` and the generic ``train`` section, and the
upgrade that loads runs saved before later model settings existed."""
from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import ConfigError, TrainConfig, cell_names, opt
from rnnkit.data.embedded_tasks import SERIES_SETS
from rnnkit.modules.encoders import ENCODERS
from rnnkit.tasks.forecast.data import parse_columns
from rnnkit.tasks.forecast.model import OUTPUTS, QUANTILE_TOL, interval_bounds
from rnnkit.tasks.forecast.transforms import STEPS as TRANSFORM_STEPS

REFIT = "refit"
BASELINES = ("naive", "seasonal", "ar", "ets", "sarima")
MODELS = (*ENCODERS, "esrnn", "rnn+esrnn", "auto")
ES_MODELS = ("esrnn", "rnn+esrnn")  # models with exponential smoothing: direct point or quantile forecasts only


@dataclass
class ForecastModelConfig:
    model: str = opt("auto", "network: recurrent (rnn), time-delay (tdnn), MLP on the flat window (mlp), "
                     "exponential smoothing with a recurrent network (esrnn, Smyl 2020), the mean of an rnn and an "
                     "esrnn trained side by side (rnn+esrnn); auto = rnn+esrnn when the series has a season and "
                     "its training part holds 3 seasons (direct point or quantile forecasts), else rnn "
                     "(docs/forecast.md)", MODELS)
    cell: str = opt("lstm", "recurrent cell (model=rnn)", cell_names)
    hidden: int = opt(64, "hidden units per layer")
    layers: int = opt(1, "stacked recurrent layers")
    dropout: float = opt(0.1, "dropout between layers and before the output")
    window: int = opt(3, "TDNN: steps each filter sees (odd)")
    output: str = opt("point", "what the network predicts", OUTPUTS)
    quantiles: str = opt("auto", "quantile levels for output=quantile, comma-separated, with 0.5 and the bounds of "
                         "--interval; auto = the interval's bounds and 0.5 (interval 0.8: 0.1,0.5,0.9)")
    strategy: str = opt("direct", "multi-step: all horizons at once, or one step fed back", ("direct", "recursive"))
    normalize: str = opt("last", "forecast offsets from each window's last value, or absolute levels",
                         ("last", "none"))
    instance_scale: bool = opt(False, "divide each window's target offsets by the window's std before the "
                               "network and scale its forecast back (RevIN-style instance normalisation, "
                               "Kim et al. 2022, without the affine part)")
    highway: bool = opt(True, "add a linear autoregressive map of the window to the network's output (LSTNet)")
    highway_level: bool = opt(True, "the highway also reads the window's last level, so it is a full linear AR "
                              "(with normalize=last it otherwise only sees offsets from that level)")
    freeze_highway: bool = opt(False, "keep the highway at its least-squares AR fit and train only the network, "
                               "which then models the AR residual (hybrid AR + network, Zhang 2003)")
    highway_ridge: str = opt("auto", "ridge of the highway's least-squares fit, relative to mean(diag X'X); "
                             "shrinks towards the naive forecast; auto = the best on the validation windows "
                             "of 1e-4 .. 10")
    samples: int = opt(200, "sample paths for recursive Gaussian intervals")
    lookback: int = opt(0, "past steps the network reads (the linear AR baseline chooses its own lags by AIC); "
                        "0 = auto: one season for a strongly seasonal series, else 24 (a week, 168, for hourly "
                        "data), shortened so a short series keeps 8 training windows")
    engine: str = opt("auto", "recurrent engine (auto, reference, or a named engine)")
    es_fit_steps: int = opt(200, "esrnn: full-batch steps fitting the smoothing coefficients and seasonal indices "
                            "to the training windows before the network trains (0 = start at 0.5 / 0.1)")
    es_linear: bool = opt(True, "esrnn: add a linear map of the deseasonalised, level-normalised window to the "
                          "offsets, started at its least-squares fit (the trend exponential smoothing lacks)")
    ensemble: int = opt(1, "networks trained side by side from different initial weights, forecasts averaged")

    def __post_init__(self) -> None:
        if self.es_fit_steps < 0:
            raise ConfigError(f"es_fit_steps must be >= 0, got {self.es_fit_steps}")
        if self.lookback < 0:
            raise ConfigError(f"lookback must be positive (or 0 = auto), got {self.lookback}")
        for name in ("hidden", "layers", "window", "samples", "ensemble"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.window % 2 == 0:
            raise ConfigError(f"window must be odd, got {self.window}")
        if self.output == "direction" and self.strategy == "recursive":
            raise ConfigError("output=direction needs strategy=direct")
        if self.model in ES_MODELS and (self.strategy != "direct" or self.output not in ("point", "quantile")):
            raise ConfigError(f"model={self.model} needs strategy=direct and output point or quantile, got strategy="
                              f"{self.strategy} output={self.output}")
        for name, choices in (("model", MODELS), ("output", OUTPUTS), ("cell", cell_names())):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {', '.join(choices)}")
        if self.quantiles != "auto":
            self._explicit_quantiles()
        if self.highway_ridge != "auto":
            self.fixed_ridge()

    def fixed_ridge(self) -> float | None:
        """The configured highway ridge, or None for ``auto`` (chosen on the validation windows)."""
        if self.highway_ridge == "auto":
            return None
        try:
            ridge = float(self.highway_ridge)
        except ValueError:
            raise ConfigError(f"highway_ridge must be auto or a number > 0, got {self.highway_ridge!r}") from None
        if not ridge > 0:  # the last lag is always 0 after normalize=last: X'X needs the ridge to be invertible
            raise ConfigError(f"highway_ridge must be auto or a number > 0, got {self.highway_ridge!r}")
        return ridge

    def quantile_list(self, interval: float) -> list[float]:
        """The sorted quantile levels to train; they must hold the bounds of the central ``interval``."""
        lo, hi = interval_bounds(interval)
        if self.quantiles == "auto":
            return [lo, 0.5, hi]
        qs = self._explicit_quantiles()
        missing = [q for q in (lo, hi) if not any(abs(q - x) < QUANTILE_TOL for x in qs)]
        if missing:
            raise ConfigError(f"interval={interval} needs the quantiles {lo:g} and {hi:g} but quantiles="
                              f"{self.quantiles!r} lacks {', '.join(f'{q:g}' for q in missing)}; add them, "
                              "or set quantiles=auto")
        return qs

    def _explicit_quantiles(self) -> list[float]:
        try:
            qs = sorted(float(q) for q in self.quantiles.split(","))
        except ValueError:
            raise ConfigError(f"quantiles must be numbers separated by commas, got {self.quantiles!r}") from None
        if not qs or any(not 0 < q < 1 for q in qs) or 0.5 not in qs:
            raise ConfigError(f"quantiles must lie in (0, 1) and include 0.5, got {self.quantiles!r}")
        return qs


@dataclass
class ForecastDataConfig:
    data: str = opt("", "CSV / TSV / JSONL with a time column and value columns (empty = embedded --dataset)")
    dataset: str = opt("co2", "embedded series used without --data", SERIES_SETS)
    target: str = opt("", "column(s) to forecast, comma-separated (embedded sets have a default)")
    covariates: str = opt("", "other columns fed to the network, comma-separated (past values only)")
    future_covariates: str = opt("", "columns known in advance for the forecast steps (calendar, planned events), "
                                 "comma-separated; predict needs their values in rows after the last target")
    time_column: str = opt("", "time column (empty = the first column)")
    missing: str = opt("error", "empty / NA cells: stop with an error, or interpolate linearly",
                       ("error", "interpolate"))
    horizon: int = opt(12, "steps to forecast")
    season: int = opt(0, "seasonal period for seasonal naive, MASE, ETS, SARIMA (0 = from the data's time step)")
    val_fraction: float = opt(0.15, "share of the series (after the training part) used for validation")
    test_fraction: float = opt(0.15, "share of the series (at its end) used for the backtest")
    stride: int = opt(1, "steps between backtest origins")
    interval: float = opt(0.8, "coverage of the prediction intervals (output=quantile trains their bounds, "
                          "(1 - interval) / 2 and (1 + interval) / 2)")
    transform: str = opt("auto", "target transforms fitted on the training part, applied in order, comma-"
                         "separated: log, boxcox, deseason, diff, sdiff; none; or auto = log for the models with "
                         "exponential smoothing (esrnn, rnn+esrnn: Smyl's multiplicative form) when every training "
                         "value is positive; for the others none, or log,diff (diff when not positive) on a series "
                         "too short for a validation part")
    baselines: str = opt("naive,seasonal,ar,ets,sarima", "baselines to run beside the network (comma-separated)")
    refit: bool = opt(True, "after early stopping, train again on train + validation for the selected number "
                      "of updates (the network then fits on the same data as --baseline-fit train+val)")
    baseline_fit: str = opt("train+val", "data the AR / ETS / SARIMA parameters are fitted on (the network fits "
                            "on train and stops early on val)", ("train+val", "train"))

    def __post_init__(self) -> None:
        for name in ("horizon", "stride"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.season < 0:
            raise ConfigError(f"season must be >= 0, got {self.season}")
        if not 0.0 < self.val_fraction < 0.5 or not 0.0 < self.test_fraction < 0.5:
            raise ConfigError("val_fraction and test_fraction must be in (0, 0.5)")
        if not 0.0 < self.interval < 1.0:
            raise ConfigError(f"interval must be in (0, 1), got {self.interval}")
        unknown = set(parse_columns(self.baselines)) - set(BASELINES)
        if unknown:
            raise ConfigError(f"unknown baseline(s) {', '.join(sorted(unknown))}; choose from {', '.join(BASELINES)}")
        if self.dataset not in SERIES_SETS:
            raise ConfigError(f"dataset={self.dataset!r} is not one of {', '.join(SERIES_SETS)}")
        if self.transform not in ("auto", "none"):
            unknown = [t for t in parse_columns(self.transform) if t not in TRANSFORM_STEPS]
            if unknown or not parse_columns(self.transform):
                raise ConfigError(f"transform={self.transform!r}: use auto, none, or steps from "
                                  f"{', '.join(TRANSFORM_STEPS)} separated by commas")
        if self.baseline_fit not in ("train+val", "train"):
            raise ConfigError(f"baseline_fit must be train+val or train, got {self.baseline_fit!r}")


@dataclass
class ForecastRunConfig:
    model: ForecastModelConfig = field(default_factory=ForecastModelConfig)
    data: ForecastDataConfig = field(default_factory=ForecastDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.model.output == "quantile":
            self.model.quantile_list(self.data.interval)  # the trained quantiles must serve the interval
        if self.model.output == "direction" and self.data.transform not in ("auto", "none"):
            raise ConfigError(f"output=direction predicts moves of the series itself; it takes no --transform "
                              f"(got {self.data.transform!r})")


# Model settings added after runs were saved, with the value that reproduces those runs: a checkpoint whose
# config lacks one is loaded (and resumed) with it, so an old run forecasts exactly as it did.
LEGACY_MODEL = {"instance_scale": False, "highway_level": False, "freeze_highway": False, "highway_ridge": "0.0001",
                "ensemble": 1, "es_fit_steps": 0, "es_linear": False}
LEGACY_DATA = {"transform": "none"}


def upgrade_config(saved: dict) -> dict:
    """A saved run config with the settings it predates filled in as :data:`LEGACY_MODEL` and
    :data:`LEGACY_DATA` (old behaviour)."""
    model, data = saved.get("model", {}), saved.get("data", {})
    return {**saved, "model": {**{k: v for k, v in LEGACY_MODEL.items() if k not in model}, **model},
            "data": {**{k: v for k, v in LEGACY_DATA.items() if k not in data}, **data}}


TRAIN_DEFAULTS = {"train": {"epochs": 60, "batch_size": 32, "lr": 3e-3, "warmup_steps": 0, "patience": 8,
                            "weight_decay": 1e-4, "log_every": 50}}
