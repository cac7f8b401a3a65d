"""Forecasting: target transforms (exact inverse, fitted on the training part only), ES-RNN, ensembles."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.config import ConfigError
from rnnkit.data.readers import DataError
from rnnkit.tasks.forecast import transforms as tr
from rnnkit.tasks.forecast.config import ForecastDataConfig, ForecastModelConfig, ForecastRunConfig
from rnnkit.tasks.forecast.ensemble import Ensemble
from rnnkit.tasks.forecast.esrnn import ESRNN
from rnnkit.tasks.forecast.model import Forecaster
from rnnkit.tasks.forecast.transforms import TransformChain, seasonal_indices

TINY = ["--epochs", "2", "--hidden", "8", "--batch-size", "16", "--progress", "none", "--tensorboard", "off",
        "--baselines", "naive,seasonal"]


def _seasonal(n=60, m=12, seed=0) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    y = 50 + 0.5 * t + 8 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1, n)
    return np.stack([y, 2 * y + 10], axis=1)                                   # (N, 2)


CHAINS = [["log"], ["boxcox"], ["deseason"], ["diff"], ["sdiff"], ["log", "deseason"], ["log", "deseason", "diff"],
          ["boxcox", "sdiff", "diff"]]


@pytest.mark.parametrize("steps", CHAINS)
def test_transforms_invert_exactly(steps):
    """The true future in transformed units, inverted from every origin, gives back the series."""
    y = _seasonal()
    chain = TransformChain(steps, 12, ["a", "b"]).fit(y[:40])
    z = chain.apply(y)
    H = 6
    origins = list(range(max(chain.warmup, 1), len(y) - H + 1, 5))
    zf = np.stack([z[o:o + H] for o in origins])                               # (W, H, T)
    back = chain.invert(zf, y, origins)
    np.testing.assert_allclose(back, np.stack([y[o:o + H] for o in origins]), rtol=1e-12, atol=1e-9)
    saved = TransformChain.from_dict(json.loads(json.dumps(chain.to_dict())), 12, ["a", "b"])
    np.testing.assert_array_equal(saved.apply(y), z)


def test_inverting_a_forecast_reads_only_the_past():
    """The forecast from origin o does not change when values from o on change (causal inverse)."""
    y = _seasonal()
    chain = TransformChain(["log", "deseason", "diff"], 12, ["a", "b"]).fit(y[:40])
    zf = np.ones((1, 5, 2)) * 0.01
    a = chain.invert(zf, y, [45])
    changed = y.copy()
    changed[45:] *= 3.0
    np.testing.assert_array_equal(chain.invert(zf, changed, [45]), a)


def test_deseason_recovers_additive_seasonal_indices():
    t = np.arange(48)
    pattern = np.array([3.0, -1.0, -2.0, 0.0])
    y = (10 + 0.2 * t + pattern[t % 4])[:, None]
    idx = seasonal_indices(y, 4)
    np.testing.assert_allclose(idx[:, 0], pattern - pattern.mean(), atol=1e-9)


class _Spy:
    """Records the data every transform step and the scaler are fitted on."""

    def __init__(self, monkeypatch):
        self.seen: list[tuple[str, np.ndarray]] = []
        for cls in (tr.Deseason, tr.BoxCox):
            original = cls.fit
            monkeypatch.setattr(cls, "fit", self._wrap(cls.__name__, original))
        from rnnkit.tasks.forecast import pipeline
        original_scaler = pipeline.Scaler.fit.__func__
        monkeypatch.setattr(pipeline.Scaler, "fit", classmethod(self._wrap("Scaler", original_scaler)))

    def _wrap(self, name, original):
        def fit(obj, train):
            self.seen.append((name, np.array(train)))
            return original(obj, train)
        return fit


def _series_csv(path, n=80):
    y = _seasonal(n)[:, 0]
    lines = ["month,value"] + [f"{2000 + i // 12}-{i % 12 + 1:02d},{y[i]:.6f}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path, y


def test_transforms_and_scaler_never_see_validation_or_test_values(tmp_path, monkeypatch):
    """A spy on every fit: each sees exactly the training part (after the earlier steps), nothing later."""
    data, y = _series_csv(tmp_path / "s.csv")
    spy = _Spy(monkeypatch)
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(run), "--horizon", "3",
                 "--lookback", "6", "--transform", "boxcox,deseason,diff", *TINY, "--no-refit"]) == 0
    n_train = json.loads((run / "result.json").read_text())["split"]["n_train"]
    assert [name for name, _ in spy.seen] == ["BoxCox", "Deseason", "Scaler"]
    assert all(len(seen) <= n_train for _, seen in spy.seen)
    np.testing.assert_allclose(spy.seen[0][1][:, 0], y[:n_train], atol=1e-6)     # the raw training part
    assert len(spy.seen[2][1]) == n_train - 1                                  # diff leaves step 0 undefined


def test_fitted_transform_ignores_values_after_the_training_part(tmp_path):
    from rnnkit.tasks.forecast.pipeline import prepare
    data, y = _series_csv(tmp_path / "s.csv")
    cfg = lambda path: ForecastRunConfig(ForecastModelConfig(lookback=6),  # noqa: E731
                                         ForecastDataConfig(data=str(path), target="value", horizon=3,
                                                            transform="boxcox,deseason"))
    a = prepare(cfg(data))
    lines = data.read_text().splitlines()
    n_train = a.sp.n_train
    changed = lines[:1 + n_train] + [f"{ln.split(',')[0]},{float(ln.split(',')[1]) * 5:.6f}"
                                     for ln in lines[1 + n_train:]]
    other = tmp_path / "o.csv"
    other.write_text("\n".join(changed) + "\n")
    b = prepare(cfg(other))
    assert a.meta["transform"] == b.meta["transform"] and a.meta["scaler"] == b.meta["scaler"]


def test_auto_transform_is_decided_on_the_training_part():
    from rnnkit.tasks.forecast.pipeline import resolve_transform
    y = _seasonal(48)[:, :1]
    assert resolve_transform("auto", y, "rnn+esrnn") == ["log"]                 # the smoothing models: log
    assert resolve_transform("auto", y, "esrnn") == ["log"]
    assert resolve_transform("auto", y - 60, "esrnn") == []                     # not all positive: no log
    assert resolve_transform("auto", y, "rnn") == []                            # the others: none
    assert resolve_transform("auto", y, "rnn", validated=False) == ["log", "diff"]  # too short to validate
    assert resolve_transform("auto", y - 60, "rnn", validated=False) == ["diff"]
    assert resolve_transform("auto", y, "esrnn", validated=False) == ["log"]
    assert resolve_transform("none", y, "esrnn") == []
    assert resolve_transform("diff,log", y, "rnn") == ["diff", "log"]


def test_log_of_non_positive_values_is_a_clear_error(tmp_path, capsys):
    chain = TransformChain(["log"], 1, ["sales"])
    with pytest.raises(DataError, match="transform 'log' needs positive values, but column 'sales' has -1"):
        chain.apply(np.array([[2.0], [-1.0]]))
    with pytest.raises(ConfigError, match="transform='cube'"):
        ForecastDataConfig(transform="cube")
    with pytest.raises(ConfigError, match="output=direction"):
        ForecastRunConfig(ForecastModelConfig(output="direction"), ForecastDataConfig(transform="log"))


def _esrnn(season=4, output="point", steps=3):
    cfg = ForecastModelConfig(model="esrnn", hidden=6, lookback=8, dropout=0.0, output=output)
    return ESRNN(cfg, 1, 1, steps, cfg.quantile_list(0.8), season).eval()


def test_esrnn_starts_at_seasonal_exponential_smoothing():
    """Zero head: the forecast is the last level plus the seasonal indices, computed here by hand."""
    m = _esrnn()
    torch.manual_seed(0)
    with torch.no_grad():
        m.init_season.copy_(torch.randn(4, 1))
    x = torch.randn(2, 8, 1)
    pos = torch.tensor([0, 3])
    with torch.no_grad():
        got = m.distribution(x, position=pos)["mean"]                         # (2, 3, 1)
    a, g, init = 0.5, 0.1, m.init_season.detach()
    for b in range(2):
        s = [float(init[(int(pos[b]) + j) % 4, 0]) for j in range(4)]
        lvl = float(x[b, 0, 0]) - s[0]
        for t in range(8):
            if t:
                lvl = a * (float(x[b, t, 0]) - s[t]) + (1 - a) * lvl
            s.append(g * (float(x[b, t, 0]) - lvl) + (1 - g) * s[t])
        want = [lvl + s[8 + h % 4] for h in range(3)]
        np.testing.assert_allclose(got[b, :, 0].numpy(), want, rtol=1e-5, atol=1e-5)


def test_esrnn_learns_its_smoothing_and_seasonality():
    m = _esrnn(output="quantile").train()
    x, y, pos = torch.randn(5, 8, 1), torch.randn(5, 3, 1), torch.arange(5)
    out = m({"inputs": x, "targets": y, "position": pos})
    assert out.logits.shape == (5, 3, 1, 3) and out.loss.ndim == 0
    out.loss.backward()
    for p in (m.alpha_logit, m.gamma_logit, m.init_season, m.head.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="position"):
        m({"inputs": x})
    with pytest.raises(ConfigError, match="esrnn needs strategy=direct"):
        ForecastModelConfig(model="esrnn", output="gaussian")


def test_esrnn_seasonal_start_comes_from_the_training_windows():
    m = _esrnn(season=4)
    t = torch.arange(40, dtype=torch.float32)
    pattern = torch.tensor([2.0, -1.0, 0.5, -1.5])
    series = 0.1 * t + pattern[t.long() % 4]
    pos = torch.arange(3, 30)                                                  # absolute starts, not phase-aligned
    x = torch.stack([series[p:p + 8] for p in pos])[..., None]
    m.init_seasonal_indices(x, pos)
    torch.testing.assert_close(m.init_season[:, 0], pattern - pattern.mean(), atol=1e-4, rtol=0)


def test_esrnn_start_fits_its_smoothing_then_the_linear_map_to_the_training_windows():
    """init_from_windows: the smoothed forecast's error falls with the fit, and the linear map is the least-squares
    fit of what the smoothing misses (with a zero head the forecast is smoothing + linear map)."""
    torch.manual_seed(0)
    t = torch.arange(80, dtype=torch.float32)
    series = 0.05 * t + torch.tensor([2.0, -1.0, 0.5, -1.5])[t.long() % 4] + 0.1 * torch.randn(80)
    pos = torch.arange(0, 69)
    x = torch.stack([series[p:p + 8] for p in pos])[..., None]                 # (N, 8, 1)
    y = torch.stack([series[p + 8:p + 11] for p in pos])[..., None]            # (N, 3, 1)
    m = _esrnn(season=4)
    m.init_seasonal_indices(x, pos)
    with torch.no_grad():
        before = float(((m.base(x, pos)[1] - y) ** 2).mean())
    m.fit_smoothing(x, y, pos, 100)
    with torch.no_grad():
        inputs, ahead = m.base(x, pos)
        after = float(((ahead - y) ** 2).mean())
    assert after < 0.95 * before and float(m.alpha.detach()) != pytest.approx(0.5)
    assert m.linear is not None and not m.linear.weight.any()                 # zero until fitted
    m.init_linear(x, y, pos, 0.01)
    X = np.concatenate([inputs[..., 0].numpy(), np.ones((len(pos), 1))], axis=1)   # (N, L + 1)
    A = X.T @ X
    want = np.linalg.solve(A + 0.01 * np.trace(A) / len(A) * np.eye(len(A)), X.T @ (y - ahead)[..., 0].numpy())
    np.testing.assert_allclose(m.linear.weight.detach().numpy().T, want[:-1], atol=1e-3, rtol=1e-3)
    with torch.no_grad():
        got = m.distribution(x, position=pos)["mean"]                            # zero head: smoothing + linear
    np.testing.assert_allclose(got[..., 0].numpy(), ahead[..., 0].numpy() + X @ want, atol=1e-4, rtol=1e-4)
    assert ForecastModelConfig(model="esrnn", es_fit_steps=0, es_linear=False).es_linear is False
    with pytest.raises(ConfigError, match="es_fit_steps"):
        ForecastModelConfig(es_fit_steps=-1)


def test_ensemble_averages_members_that_differ():
    cfg = ForecastModelConfig(model="rnn", hidden=6, lookback=5, dropout=0.0, output="gaussian", highway=False)
    torch.manual_seed(0)
    ens = Ensemble([lambda: Forecaster(cfg, 1, 1, 2, [0.1, 0.5, 0.9])] * 3).eval()
    x = torch.randn(4, 5, 1)
    each = [mem.distribution(x) for mem in ens.members]
    assert not torch.allclose(each[0]["mean"], each[1]["mean"])                 # different initial weights
    d = ens.distribution(x)
    torch.testing.assert_close(d["mean"], torch.stack([e["mean"] for e in each]).mean(0))
    var = torch.stack([e["std"] ** 2 + e["mean"] ** 2 for e in each]).mean(0) - d["mean"] ** 2
    torch.testing.assert_close(d["std"] ** 2, var, atol=1e-5, rtol=1e-4)
    batch = {"inputs": x, "targets": torch.randn(4, 2, 1)}
    losses = torch.stack([mem(batch).loss for mem in ens.members])
    torch.testing.assert_close(ens(batch).loss, losses.mean())
    with pytest.raises(ValueError, match="at least 2"):
        Ensemble([lambda: Forecaster(cfg, 1, 1, 2, [0.5])])


@pytest.mark.parametrize("opts", [["--model", "esrnn", "--transform", "log"],
                                  ["--model", "rnn+esrnn", "--output", "quantile"],
                                  ["--model", "esrnn", "--output", "quantile", "--ensemble", "2", "--cell", "gru"],
                                  ["--ensemble", "2", "--transform", "log,deseason,diff", "--output", "gaussian"],
                                  ["--transform", "boxcox,sdiff"]])
def test_new_options_end_to_end(tmp_path, capsys, opts):
    """Train (with refit), evaluate and predict: forecasts come back in the series' units."""
    data, y = _series_csv(tmp_path / "s.csv")
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(run), "--horizon", "3",
                 "--lookback", "12", *TINY, *opts]) == 0
    result = json.loads((run / "result.json").read_text())
    net = next(k for k in result["test"] if k not in ("naive", "seasonal"))
    assert np.isfinite(result["test"][net]["mase"])
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data), "--json"]) == 0
    fc = [r["forecast"] for r in json.loads(capsys.readouterr().out)]
    assert len(fc) == 3 and all(0.5 * y.min() < v < 2 * y.max() for v in fc)   # original units, not scaled
    from rnnkit.tasks import TASKS
    from rnnkit.tasks.forecast.pipeline import load_forecaster
    loaded = load_forecaster(run)
    assert loaded.transform.spec == result["transform"]
    out = loaded.model(*TASKS["forecast"].example_inputs(loaded))              # what export traces
    assert out.logits.shape[:3] == (1, 3, 1)
