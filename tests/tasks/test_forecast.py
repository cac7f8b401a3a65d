"""Forecasting: metrics by hand, train-only scaling, window and forecast shapes, baselines, the CLI end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.readers import DataError
from rnnkit.tasks.forecast.config import ForecastModelConfig
from rnnkit.tasks.forecast.pipeline import season_from_times
from rnnkit.tasks.forecast.data import Scaler, interpolate, origins, read_series, split_points, windows
from rnnkit.tasks.forecast.model import Forecaster, recursive_forecast
from rnnkit.metrics import mae, mase, mase_scale, rmse, smape

TINY = ["--epochs", "2", "--hidden", "8", "--batch-size", "16", "--progress", "none", "--tensorboard", "off",
        "--baselines", "naive,seasonal,ar"]


def test_forecast_metrics_by_hand():
    y, f = [1.0, 2.0, 4.0], [2.0, 2.0, 1.0]
    assert mae(y, f) == pytest.approx(4 / 3)
    assert rmse(y, f) == pytest.approx(np.sqrt(10 / 3))
    assert smape(y, f) == pytest.approx((200 * 1 / 3 + 0 + 200 * 3 / 5) / 3)
    assert smape([0.0], [0.0]) == 0.0
    scale = mase_scale(np.array([1.0, 3.0, 2.0, 6.0]), season=1)    # |2| |1| |4| -> 7/3
    assert scale == pytest.approx(7 / 3)
    assert mase(y, f, scale) == pytest.approx((4 / 3) / (7 / 3))
    assert mase_scale(np.array([1.0, 2.0, 5.0, 3.0]), season=2) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        mase_scale(np.ones(5))


def test_scaling_never_sees_validation_or_test(tmp_path):
    values = np.arange(100, dtype=np.float64)[:, None]
    sp = split_points(100, 0.15, 0.15, lookback=5, horizon=3)
    assert (sp.n_train, sp.n_val_end, sp.n) == (70, 85, 100)
    a = Scaler.fit(values[: sp.n_train])
    changed = values.copy()
    changed[sp.n_train:] *= 1000.0                            # anything after the training part
    b = Scaler.fit(changed[: sp.n_train])
    assert a.mean.tolist() == b.mean.tolist() == [34.5] and a.std.tolist() == b.std.tolist()


def test_training_run_scaler_is_fitted_on_the_training_part_only(tmp_path):
    run = tmp_path / "run"
    data = _series_csv(tmp_path / "s.csv", n=80)
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(run), "--horizon", "3",
                 "--lookback", "6", "--transform", "none", *TINY]) == 0
    from rnnkit.tasks.forecast.pipeline import load_forecaster
    meta = load_forecaster(run).meta
    n_train = meta["split"]["n_train"]
    values = np.loadtxt(data, delimiter=",", skiprows=1, usecols=1)
    assert meta["scaler"]["mean"][0] == pytest.approx(values[:n_train].mean())
    assert meta["scaler"]["mean"][0] != pytest.approx(values.mean())


def test_windows_and_origins():
    scaled = np.arange(20, dtype=np.float64).reshape(10, 2)   # targets column 0, covariate column 1
    o = origins(4, 10, lookback=3, horizon=2)
    assert o == [4, 5, 6, 7, 8]
    x, y = windows(scaled, o, 3, 2, 1)
    assert x.shape == (5, 3, 2) and y.shape == (5, 2, 1)
    assert x[0, :, 0].tolist() == [2.0, 4.0, 6.0] and y[0, :, 0].tolist() == [8.0, 10.0]


def _model(output="point", strategy="direct", n_features=2, horizon=4, **kw):
    cfg = ForecastModelConfig(model="rnn", hidden=6, lookback=5, output=output, strategy=strategy, dropout=0.0, **kw)
    steps = 1 if strategy == "recursive" else horizon
    return Forecaster(cfg, n_features, 1, steps, cfg.quantile_list(0.8)).eval()


@pytest.mark.parametrize("output,extra", [("point", ()), ("gaussian", ("std",)), ("quantile", ("quantiles",))])
def test_direct_forecast_shapes(output, extra):
    m = _model(output)
    x = torch.randn(7, 5, 2)
    d = m.distribution(x)
    assert d["mean"].shape == (7, 4, 1)
    for key in extra:
        assert d[key].shape[:3] == (7, 4, 1)
    out = m({"inputs": x, "targets": torch.randn(7, 4, 1)})
    assert out.loss.ndim == 0 and out.n == 7 * 4


def test_recursive_forecast_feeds_predictions_back():
    m = _model("point", "recursive", n_features=1)
    x = torch.randn(3, 5, 1)
    d = recursive_forecast(m, x, 6, None)
    assert d["mean"].shape == (3, 6, 1)
    first = m.distribution(x)["mean"][:, 0]
    torch.testing.assert_close(d["mean"][:, 0], first)
    x2 = torch.cat([x[:, 1:], first[:, None, :]], dim=1)    # the window shifted by its own forecast
    torch.testing.assert_close(d["mean"][:, 1], m.distribution(x2)["mean"][:, 0])


def test_recursive_gaussian_samples_paths_with_covariates():
    m = _model("gaussian", "recursive", n_features=2)
    d = recursive_forecast(m, torch.randn(2, 5, 2), 3, torch.randn(2, 3, 1), samples=16,
                           generator=torch.Generator().manual_seed(0))
    assert d["samples"].shape == (2, 16, 3, 1) and d["mean"].shape == (2, 3, 1) and (d["std"] > 0).all()


def test_direction_output():
    m = _model("direction")
    d = m.distribution(torch.randn(4, 5, 2))
    assert d["p_up"].shape == (4, 4, 1) and ((d["p_up"] >= 0) & (d["p_up"] <= 1)).all()
    with pytest.raises(ValueError):
        ForecastModelConfig(output="direction", strategy="recursive")


def test_baselines_by_hand():
    from rnnkit.tasks.baselines.forecasting import LinearAR, naive, seasonal_naive
    y = np.arange(10, dtype=np.float64)[:, None]
    assert naive(y, [5], 3)[0, :, 0].tolist() == [4, 4, 4]
    assert seasonal_naive(y, [6], 5, season=3)[0, :, 0].tolist() == [3, 4, 5, 3, 4]
    ar = LinearAR(lags=2, horizon=2).fit(y, 8)
    np.testing.assert_allclose(ar.forecast(y, [8])[0, :, 0], [8.0, 9.0], atol=1e-3)   # a line is exactly AR


def test_interpolate_and_season():
    v = np.array([[1.0], [np.nan], [3.0], [np.nan]])
    assert interpolate(v, ["x"], "f").ravel().tolist() == [1.0, 2.0, 3.0, 3.0]
    assert season_from_times(["2020-01", "2020-02", "2020-03"]) == 12
    assert season_from_times(["2020-01-01", "2020-01-02", "2020-01-03"]) == 7
    assert season_from_times(["1700", "1701"]) == 1


def _series_csv(path, n=96, covariate=False, gap=False):
    t = np.arange(n)
    y = 10 + 0.05 * t + np.sin(2 * np.pi * t / 12) + 0.1 * np.cos(t)
    lines = ["month,value" + (",temp" if covariate else "")]
    for i in range(n):
        year, month = 2000 + i // 12, i % 12 + 1
        val = "" if gap and i == 10 else f"{y[i]:.4f}"
        lines.append(f"{year}-{month:02d},{val}" + (f",{np.cos(i):.3f}" if covariate else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_train_evaluate_predict(tmp_path, capsys):
    data = _series_csv(tmp_path / "s.csv")
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(run), "--horizon", "4",
                 "--lookback", "12", "--output", "gaussian", *TINY]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["season"] == 12 and set(result["test"]) == {"lstm", "naive", "seasonal", "ar"}
    assert {"mae", "rmse", "smape", "mase", "coverage"} <= set(result["test"]["lstm"])
    assert (run / "forecast.png").stat().st_size > 1000 and (run / "backtest.csv").is_file()
    assert result["refit"] and (run / "refit" / "checkpoints" / "last.safetensors").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    assert "mase" in capsys.readouterr().out
    assert main(["predict", str(run), "--data", str(data), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["time"] for r in rows] == ["2008-01", "2008-02", "2008-03", "2008-04"]
    assert all(r["lower"] <= r["forecast"] <= r["upper"] for r in rows)


@pytest.mark.parametrize("opts", [["--strategy", "recursive", "--output", "quantile", "--covariates", "temp"],
                                  ["--model", "mlp", "--output", "direction"],
                                  ["--model", "tdnn", "--cell", "gru", "--baseline-fit", "train"]])
def test_cli_variants(tmp_path, opts):
    data = _series_csv(tmp_path / "s.csv", covariate=True)
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(tmp_path / "r"),
                 "--horizon", "3", "--lookback", "8", *TINY, *opts, "--no-refit"]) == 0
    assert not (tmp_path / "r" / "refit").exists()


def test_missing_values_error_or_interpolate(tmp_path, capsys):
    data = _series_csv(tmp_path / "g.csv", gap=True)
    args = ["train", "forecast", "--data", str(data), "--target", "value", "--horizon", "3", "--lookback", "6", *TINY]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert f"{data}:12: column 'value' (column 2): missing value" in err
    assert main([*args, "--out", str(tmp_path / "b"), "--missing", "interpolate"]) == 0


def test_bad_series_files(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("month,value\n2000-01,1\n2000-02,x\n")
    assert main(["train", "forecast", "--data", str(p), "--target", "value", "--out", str(tmp_path / "r")]) == 2
    assert f"{p}:3: column 'value' (column 2): 'x' is not a number" in capsys.readouterr().err
    assert main(["train", "forecast", "--data", str(p), "--target", "price", "--out", str(tmp_path / "r")]) == 2
    assert "no column 'price'" in capsys.readouterr().err
    p.write_text("month,value\n2000-01,1\n2000-02\n")
    assert main(["train", "forecast", "--data", str(p), "--target", "value", "--out", str(tmp_path / "r")]) == 2
    assert f"{p}:3: ragged row" in capsys.readouterr().err


def test_embedded_series_load():
    pytest.importorskip("statsmodels")
    from rnnkit.data.embedded_tasks import series_set
    co2 = series_set("co2")
    assert len(co2.times) == 526 and co2.season == 12 and np.isfinite(co2.columns["co2"]).all()
    assert len(series_set("sunspots").times) == 309


def test_highway_starts_at_the_least_squares_ar_fit():
    torch.manual_seed(0)
    m = _model("point", n_features=1, horizon=3)
    t = torch.arange(60, dtype=torch.float32)
    series = 0.5 * t + torch.sin(t)                      # linear trend + a period-2pi wave: exactly AR(3) after differencing
    series = (series - series.mean()) / series.std()      # standardised, as the Scaler hands windows to the model
    x = torch.stack([series[i:i + 5] for i in range(50)])[..., None]
    y = torch.stack([series[i + 5:i + 8] for i in range(50)])[..., None]
    before = (m.distribution(x)["mean"] - y).abs().mean()
    m.init_highway(x, y)
    after = (m.distribution(x)["mean"] - y).abs().mean()
    assert after < 1e-2 < before


def _promo_csv(path, n=90, future_rows=0):
    rng = np.random.default_rng(0)
    promo = (rng.random(n + future_rows) < 0.3).astype(int)
    lines = ["day,sales,promo"]
    for i in range(n + future_rows):
        sales = "" if i >= n else f"{10 + 5 * promo[i] + 0.1 * np.sin(i):.3f}"
        lines.append(f"2020-01-{1 + i // 24:02d}T{i % 24:02d}:00,{sales},{promo[i]}")  # hourly, in time order
    path.write_text("\n".join(lines) + "\n")
    return path


def test_known_future_covariates_direct(tmp_path, capsys):
    data = _promo_csv(tmp_path / "p.csv")
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(data), "--target", "sales", "--future-covariates", "promo",
                 "--horizon", "3", "--lookback", "6", "--season", "1", "--out", str(run), *TINY]) == 0
    from rnnkit.tasks.forecast.pipeline import load_forecaster
    loaded = load_forecaster(run)
    assert loaded.meta["n_future"] == 1 and loaded.model.n_future == 1
    with pytest.raises(ValueError, match="known-future"):
        loaded.model.distribution(torch.zeros(1, 6, 2))
    x = torch.zeros(1, 6, 2)
    off, on = (loaded.model.distribution(x, torch.full((1, 3, 1), v))["mean"] for v in (0.0, 1.0))
    assert not torch.allclose(off, on)                                       # the future values are used
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data)]) == 2            # no rows after the last target
    assert "known-future covariates (promo) of the 3 rows" in capsys.readouterr().err
    ahead = _promo_csv(tmp_path / "ahead.csv", future_rows=3)
    assert main(["predict", str(run), "--data", str(ahead), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_quantile_output_follows_the_requested_interval(tmp_path, capsys):
    from rnnkit.tasks.forecast.pipeline import _read_like_run, load_forecaster
    data = _series_csv(tmp_path / "s.csv")
    args = ["train", "forecast", "--data", str(data), "--target", "value", "--horizon", "3", "--lookback", "8",
            "--model", "rnn", "--output", "quantile", "--transform", "none", *TINY, "--no-refit"]
    assert main([*args, "--out", str(tmp_path / "half"), "--interval", "0.5"]) == 0
    assert load_forecaster(tmp_path / "half").model.quantiles.tolist() == [0.25, 0.5, 0.75]

    # five trained quantiles, interval 0.8: the interval is the 0.1 and 0.9 quantiles, not the outermost ones
    run = tmp_path / "five"
    assert main([*args, "--out", str(run), "--interval", "0.8", "--quantiles", "0.05,0.1,0.5,0.9,0.95"]) == 0
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    loaded = load_forecaster(run)
    series = _read_like_run(loaded, str(data))
    scaled = loaded.scaler.transform(series.values)
    with torch.no_grad():
        q = loaded.model.distribution(torch.from_numpy(scaled[None, -8:].astype(np.float32)))["quantiles"]
    q = q[0, :, 0].double().numpy() * loaded.scaler.std[0] + loaded.scaler.mean[0]     # (H, Q)
    np.testing.assert_allclose([r["lower"] for r in rows], q[:, 1], rtol=1e-6)
    np.testing.assert_allclose([r["upper"] for r in rows], q[:, 3], rtol=1e-6)
    np.testing.assert_allclose([r["forecast"] for r in rows], q[:, 2], rtol=1e-6)


def test_an_interval_the_quantiles_cannot_serve_is_an_error(tmp_path, capsys):
    from rnnkit.config import ConfigError
    from rnnkit.tasks.forecast.backtest import interval_columns
    data = _series_csv(tmp_path / "s.csv")
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(tmp_path / "r"),
                 "--output", "quantile", "--quantiles", "0.1,0.5,0.9", "--interval", "0.9", *TINY]) == 2
    err = capsys.readouterr().err
    assert "interval=0.9 needs the quantiles 0.05 and 0.95 but quantiles='0.1,0.5,0.9' lacks 0.05, 0.95" in err
    assert not (tmp_path / "r").exists()
    assert interval_columns([0.05, 0.1, 0.5, 0.9, 0.95], 0.8) == (1, 3)
    with pytest.raises(ConfigError, match="needs the quantile 0.25, but this run was trained for 0.1, 0.5, 0.9"):
        interval_columns([0.1, 0.5, 0.9], 0.5)


def _ar_windows(series: torch.Tensor, L: int, H: int):
    n = len(series) - L - H + 1
    x = torch.stack([series[i:i + L] for i in range(n)])[..., None].float()         # (N, L, 1)
    y = torch.stack([series[i + L:i + L + H] for i in range(n)])[..., None].float()  # (N, H, 1)
    return x, y


@pytest.mark.parametrize("level", [True, False])
def test_highway_with_the_level_is_the_linear_ar_baseline(level):
    """highway_level: the highway spans every linear AR (LSTNet), so its least-squares fit is the linear AR
    baseline; on offsets alone it only spans ARs whose coefficients sum to 1 and misses a mean-reverting one."""
    from rnnkit.tasks.baselines.forecasting import LinearAR
    rng = np.random.default_rng(0)
    y = np.zeros(300)
    for t in range(1, 300):                               # AR(1) around 2: coefficients sum to 0.6, not 1
        y[t] = 0.8 + 0.6 * y[t - 1] + 0.3 * rng.standard_normal()
    m = _model("point", n_features=1, horizon=2, highway_level=level)
    x, yy = _ar_windows(torch.from_numpy(y), 5, 2)
    m.init_highway(x, yy, ridge=1e-9)
    origins = list(range(250, 298))
    ar = LinearAR(5, 2).fit(y[:, None], 300).forecast(y[:, None], origins)       # (W, 2, 1)
    got = m.distribution(torch.stack([torch.from_numpy(y[o - 5:o]) for o in origins])[..., None].float())["mean"]
    if level:
        np.testing.assert_allclose(got.detach().numpy(), ar, atol=2e-3)
    else:
        assert np.abs(got.detach().numpy() - ar).max() > 0.05


def test_highway_ridge_is_chosen_on_the_validation_windows():
    """auto ridge: a drift that holds in training but not in validation is shrunk away (largest ridge, the naive
    forecast); one that holds in both is kept (smallest ridge)."""
    from rnnkit.tasks.forecast.highway import RIDGE_GRID, HighwayFeatures, select_ridge
    rng = np.random.default_rng(0)
    walk = lambda n, drift: torch.from_numpy(np.cumsum(drift + 0.1 * rng.standard_normal(n)))  # noqa: E731
    features = HighwayFeatures(n_targets=1)
    train = _ar_windows(walk(200, 1.0), 5, 3)
    assert select_ridge(features, train, _ar_windows(walk(80, 0.0), 5, 3)) == RIDGE_GRID[-1]
    assert select_ridge(features, train, _ar_windows(walk(80, 1.0), 5, 3)) == RIDGE_GRID[0]


@pytest.mark.parametrize("freeze", [True, False])
def test_a_frozen_highway_keeps_its_least_squares_fit(freeze):
    torch.manual_seed(0)
    m = _model("point", n_features=1, horizon=3, freeze_highway=freeze).train()
    x, y = _ar_windows(torch.cumsum(torch.randn(80), 0), 5, 3)
    m.init_highway(x, y)
    before = m.highway.weight.clone()
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        m({"inputs": x, "targets": y}).loss.backward()
        opt.step()
    assert torch.equal(m.highway.weight, before) == freeze
    assert m.head.weight.abs().sum() > 0                       # the network trains either way
    assert _model("direction", freeze_highway=True).highway.weight.requires_grad   # nothing to freeze at


@pytest.mark.parametrize("output", ["point", "quantile", "gaussian"])
def test_instance_scale_makes_the_network_scale_equivariant(output):
    """RevIN-style: a window stretched about its last value by a gets an a-times offset forecast (the mean);
    without instance_scale the network sees different inputs."""
    torch.manual_seed(0)
    x = torch.randn(4, 5, 1)
    last = x[:, -1:, :]
    stretched = last + 3.0 * (x - last)
    for scale, equivariant in ((True, True), (False, False)):
        m = _model(output, n_features=1, highway=False, instance_scale=scale)
        base, big = m.distribution(x)["mean"] - last, m.distribution(stretched)["mean"] - last
        assert torch.allclose(big, 3.0 * base, atol=1e-4, rtol=1e-4) == equivariant


def test_new_model_settings_validate_and_show_in_help(capsys):
    from rnnkit.config import ConfigError
    for bad in ("-1", "0", "many"):
        with pytest.raises(ConfigError, match="highway_ridge"):
            ForecastModelConfig(highway_ridge=bad)
    assert ForecastModelConfig(highway_ridge="0.5").fixed_ridge() == 0.5
    with pytest.raises(SystemExit):
        main(["train", "forecast", "--help"])
    out = capsys.readouterr().out
    for flag in ("--highway-level", "--freeze-highway", "--highway-ridge", "--instance-scale"):
        assert flag in out


def test_a_run_saved_before_the_new_settings_loads_with_the_old_behaviour(tmp_path, capsys):
    from rnnkit.tasks.forecast.config import LEGACY_DATA, LEGACY_MODEL
    from rnnkit.tasks.forecast.pipeline import load_forecaster
    from rnnkit.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    data = _series_csv(tmp_path / "s.csv", n=80)
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(run), "--horizon", "3",
                 "--lookback", "6", "--model", "rnn", "--transform", "none", *TINY, "--no-refit"]) == 0
    assert load_forecaster(run).config.model.highway_level                       # the new default
    for name in ("best", "last"):                                                # as an older rnnkit saved it
        path = run / "checkpoints" / f"{name}.safetensors"
        ck = load_checkpoint(path)
        for key in LEGACY_MODEL:
            del ck.meta["config"]["model"][key]
        for key in LEGACY_DATA:
            del ck.meta["config"]["data"][key]
        del ck.meta["metadata"]["transform"]
        save_checkpoint(path, Checkpoint(ck.tensors, ck.meta))
    loaded = load_forecaster(run)
    m = loaded.config.model
    assert (m.instance_scale, m.highway_level, m.freeze_highway, m.highway_ridge) == (False, False, False, "0.0001")
    assert (m.ensemble, loaded.config.data.transform, loaded.transform.spec) == (1, "none", [])
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    assert main(["train", "forecast", "--out", str(run), "--resume", "--epochs", "3", "--progress", "none",
                 "--tensorboard", "off"]) == 0
    assert load_forecaster(run).config.model.highway_level is False                # resumed as it was trained


def test_unsorted_rows_are_sorted_with_a_notice(tmp_path, capsys):
    rows = [("2020-03", 3.0), ("2020-01", 1.0), ("2020-02", 2.0), ("2020-04", 4.0), ("2020-05", 5.0)]
    path = tmp_path / "u.csv"
    path.write_text("month,value\n" + "".join(f"{t},{v}\n" for t, v in rows))
    s = read_series(path, ["value"], [], "", "error")
    assert s.times == ["2020-01", "2020-02", "2020-03", "2020-04", "2020-05"]
    assert s.values[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert f"notice: {path}: rows are not in time order; sorted by column 'month' (3 of 5 rows moved)" \
        in capsys.readouterr().err
    numbers = tmp_path / "n.csv"
    numbers.write_text("t,value\n10,1\n9.5,2\n11,3\n")  # numeric times sort as numbers, not as text
    assert read_series(numbers, ["value"], [], "t", "error").times == ["9.5", "10", "11"]


def test_duplicated_dates_are_refused_with_their_lines(tmp_path, capsys):
    times = ["2020-01", "2020-02", "2020-02", "2020-03"] + [f"2021-{m:02d}" for m in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)]
    path = tmp_path / "d.csv"
    path.write_text("month,value\n" + "".join(f"{t},{i}\n" for i, t in enumerate(times)))
    with pytest.raises(DataError) as err:
        read_series(path, ["value"], [], "", "error")
    msg = str(err.value)
    assert msg.startswith(f"{path}: 6 duplicated time(s) in column 'month': line 4 repeats line 3 (2020-02); "
                          "line 7 repeats line 6 (2021-01)")
    assert "(and 1 more)" in msg
    assert main(["train", "forecast", "--data", str(path), "--target", "value", "--out", str(tmp_path / "r")]) == 2
    assert "duplicated time(s) in column 'month': line 4 repeats line 3" in capsys.readouterr().err
