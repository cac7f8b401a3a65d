"""Forecasting defaults: the split for short series, the automatic lookback and model, decided on training data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from rnnkit.cli import main
from rnnkit.data.readers import DataError
from rnnkit.tasks.forecast.config import ForecastDataConfig, ForecastModelConfig, ForecastRunConfig
from rnnkit.tasks.forecast.data import Series, auto_lookback, read_series, split_points
from rnnkit.tasks.forecast.pipeline import STRONG_SEASON, auto_choice, longest_period
from rnnkit.tasks.forecast.transforms import seasonal_strength

TINY = ["--epochs", "2", "--hidden", "8", "--batch-size", "16", "--progress", "none", "--tensorboard", "off",
        "--baselines", "naive,seasonal,ar"]


def _monthly_csv(path, y):
    lines = ["month,value"] + [f"{2000 + i // 12}-{i % 12 + 1:02d},{v:.6f}" for i, v in enumerate(y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _strong(n, seed=0):
    t = np.arange(n)
    return 50 + 0.2 * t + 10 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(seed).normal(0, 1, n)


def _weak(n, seed=0):
    t = np.arange(n)
    return 50 + 0.2 * t + 0.3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(seed).normal(0, 2, n)


def test_seasonal_strength_separates_strong_weak_and_too_short():
    assert seasonal_strength(_strong(96)[:, None], 12) > 0.9
    assert seasonal_strength(_weak(96)[:, None], 12) < 0.4
    assert seasonal_strength(_strong(20)[:, None], 12) == 0.0            # under 2 seasons
    assert seasonal_strength(_strong(96)[:, None], 1) == 0.0             # no season


def test_split_keeps_a_horizon_in_validation_and_test_and_drops_validation_when_it_must():
    sp = split_points(100, 0.15, 0.15, lookback=5, horizon=20)           # 15 steps each would be < horizon
    assert (sp.n_train, sp.n_val_end, sp.n, sp.has_validation) == (60, 80, 100, True)
    sp = split_points(36, 0.15, 0.15, lookback=5, horizon=12)            # 12 / 12 / 12 leaves no training window
    assert (sp.n_train, sp.n_val_end, sp.has_validation) == (24, 24, False)
    with pytest.raises(DataError, match="36 steps is too short for lookback=12, horizon=12"):
        split_points(36, 0.15, 0.15, lookback=12, horizon=12)


def test_auto_lookback_is_the_preferred_length_unless_the_series_is_short():
    assert auto_lookback(108, 12, 12, 0.15, 0.15) == 12
    assert auto_lookback(2000, 24, 96, 0.15, 0.15) == 24
    # 36 monthly steps, horizon 12: no room beside validation, so 24 training steps keep 8 windows of 5 + 12
    assert auto_lookback(36, 12, 12, 0.15, 0.15) == 5
    assert split_points(36, 0.15, 0.15, 5, 12).n_train - 12 + 1 - 5 == 8


def _choice(tmp_path, y, **model):
    path = _monthly_csv(tmp_path / "s.csv", y)
    cfg = ForecastRunConfig(ForecastModelConfig(**model), ForecastDataConfig(data=str(path), target="value"))
    return auto_choice(cfg, read_series(path, ["value"], [], "", "error"), 12)


def test_auto_model_and_lookback_follow_the_documented_rule(tmp_path):
    strong = _choice(tmp_path, _strong(108))
    assert (strong.model, strong.lookback) == ("rnn+esrnn", 12) and strong.seasonal_strength >= STRONG_SEASON
    weak = _choice(tmp_path, _weak(108))
    assert (weak.model, weak.lookback) == ("rnn", 24) and weak.seasonal_strength < STRONG_SEASON
    assert _choice(tmp_path, _strong(108), output="gaussian").model == "rnn"       # no smoothing model for it
    assert _choice(tmp_path, _strong(108), strategy="recursive").model == "rnn"
    assert _choice(tmp_path, _strong(50)).model == "rnn"                           # training part < 3 seasons
    given = _choice(tmp_path, _strong(108), model="tdnn", lookback=7)
    assert (given.model, given.lookback) == ("tdnn", 7)                             # what the user set stays


def test_a_weakly_seasonal_hourly_series_reads_a_week(tmp_path):
    """Hourly data (season 24) without a strong daily season: the lookback is its week, 168 steps (the AR baseline
    may use as many lags); a short hourly series keeps its 8 training windows."""
    assert longest_period(24) == 168 and longest_period(12) == 12 and longest_period(7) == 7
    rng = np.random.default_rng(0)
    y = 20 + np.cumsum(rng.normal(0, 1, 1200)) + 0.3 * np.sin(2 * np.pi * np.arange(1200) / 24)
    path = tmp_path / "h.csv"
    path.write_text("time,value\n" + "".join(f"{np.datetime64('2020-01-01T00:00') + np.timedelta64(i, 'h')},{v:.5f}\n"
                                            for i, v in enumerate(y)))
    cfg = ForecastRunConfig(ForecastModelConfig(), ForecastDataConfig(data=str(path), target="value", horizon=24))
    series = read_series(path, ["value"], [], "", "error")
    hourly = auto_choice(cfg, series, 24)
    assert (hourly.model, hourly.lookback) == ("rnn", 168) and hourly.seasonal_strength < STRONG_SEASON
    cut = Series(series.times[:250], series.values[:250], series.names, 1, series.source)
    assert auto_choice(cfg, cut, 24).lookback == auto_lookback(250, 168, 24, 0.15, 0.15) < 168


def test_auto_choice_reads_the_training_part_only(tmp_path):
    """Changing every value after the training part (the first 108 - 2 * 16 steps) changes nothing."""
    y = _strong(108)
    a = _choice(tmp_path, y)
    changed = y.copy()
    changed[108 - 32:] = np.random.default_rng(1).normal(500, 50, 32)           # validation and test parts
    b = _choice(tmp_path, changed)
    assert a == b
    changed[108 - 33] += 40.0                                                   # the last training step does count
    assert _choice(tmp_path, changed).seasonal_strength != a.seasonal_strength


def test_a_short_series_trains_with_defaults_and_the_run_keeps_the_resolved_settings(tmp_path, capsys):
    """36 monthly steps, horizon 12 (the shampoo case): lookback 5, no validation part, no refit."""
    data = _monthly_csv(tmp_path / "short.csv", _strong(36))
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(run), *TINY]) == 0
    assert "no validation part" in capsys.readouterr().err
    result = json.loads((run / "result.json").read_text())
    assert (result["model"], result["lookback"], result["refit"], result["origins"]) == ("rnn", 5, False, 1)
    assert result["transform"] == ["log", "diff"]              # nothing to validate on: growth rates
    assert result["auto"]["season"] == 12 and np.isfinite(result["test"]["lstm"]["mase"])
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["model"]["model"], saved["model"]["lookback"]) == ("rnn", 5)     # loads without the rule
    assert main(["predict", str(run), "--data", str(data), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 12


def test_a_seasonal_series_trains_rnn_plus_esrnn_by_default(tmp_path, capsys):
    data = _monthly_csv(tmp_path / "s.csv", _strong(108))
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(run), *TINY,
                 "--es-fit-steps", "10"]) == 0
    result = json.loads((run / "result.json").read_text())
    assert (result["model"], result["lookback"], result["transform"]) == ("rnn+esrnn", 12, ["log"])
    assert "lstm+esrnn" in result["test"]
    assert main(["evaluate", str(run), "--data", str(data)]) == 0


def test_a_run_started_before_the_short_series_rule_resumes_with_its_own_transform(tmp_path, capsys):
    """A run saved with --transform auto when auto left a short series as it is (no transform) resumes with no
    transform, though auto now gives log,diff there; naming another transform on resume is an error."""
    from rnnkit.tasks.forecast.pipeline import load_forecaster
    from rnnkit.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    data = _monthly_csv(tmp_path / "short.csv", _strong(36))
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(run), *TINY,
                 "--transform", "none"]) == 0
    steps = json.loads((run / "result.json").read_text())["steps"]
    for path in (run / "checkpoints").glob("*.safetensors"):              # as the earlier rnnkit saved it
        ck = load_checkpoint(path)
        ck.meta["config"]["data"]["transform"] = "auto"
        save_checkpoint(path, Checkpoint(ck.tensors, ck.meta))
    capsys.readouterr()
    assert main(["train", "forecast", "--out", str(run), "--resume", "--transform", "log", "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert "the run was trained with transform none, not log; resume with --transform none" in err
    assert main(["train", "forecast", "--out", str(run), "--resume", "--epochs", "3"]) == 0
    err = capsys.readouterr().err
    assert "trained with transform none (what --transform auto gave when the run started; it gives log,diff now)" \
        in err
    result = json.loads((run / "result.json").read_text())
    assert result["transform"] == [] and result["steps"] > steps                # trained on from where it was
    assert load_forecaster(run).transform.spec == []
