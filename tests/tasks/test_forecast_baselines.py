"""The classical forecasting baselines choose their own orders on the data they are fitted on: the AR order by
AIC (as statsmodels does), independent of the network's lookback, and nothing after the fit part is read."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.tasks.baselines import forecasting as fb

TINY = ["--epochs", "1", "--hidden", "4", "--batch-size", "16", "--progress", "none", "--tensorboard", "off",
        "--baselines", "naive,ar", "--no-refit", "--model", "rnn"]


def _ar3(n: int, seed: int = 0) -> np.ndarray:
    """An AR(3) series around 5: its AIC order is 3."""
    rng = np.random.default_rng(seed)
    y = np.full(n, 5.0)
    for t in range(3, n):
        y[t] = 5.0 + 0.5 * (y[t - 1] - 5) - 0.3 * (y[t - 2] - 5) + 0.4 * (y[t - 3] - 5) + rng.standard_normal()
    return y


def test_ar_order_by_aic_finds_the_order_and_matches_statsmodels():
    ar_model = pytest.importorskip("statsmodels.tsa.ar_model")
    for seed in range(3):
        y = _ar3(400, seed)
        ours = fb.ar_order_by_aic(y, 12)
        theirs = ar_model.ar_select_order(y, 12, ic="aic", trend="c").ar_lags
        assert ours == max(theirs)
    assert fb.ar_order_by_aic(_ar3(2000), 12) == 3


def test_max_ar_lags_is_two_seasons_or_10_log10_n_within_what_the_fit_allows():
    assert fb.max_ar_lags(100, 12, 12) == 24
    assert fb.max_ar_lags(14_000, 24, 24) == 48
    assert fb.max_ar_lags(14_000, 24, 1) == 41
    assert fb.max_ar_lags(14_000, 24, 24, longest=168) == 168                  # hourly data: up to a week
    assert fb.max_ar_lags(24, 12, 12) == 5          # 24 - 12 - 5 + 1 = 8 windows >= 5 + 2 coefficients
    with pytest.raises(ValueError, match="needs more than 12 values"):
        fb.max_ar_lags(12, 12, 12)


def test_the_ar_baseline_reads_nothing_after_its_fit_part():
    """Order, coefficients and the forecast from the end of the fit part stay when every later value changes."""
    y = _ar3(300)[:, None]
    n_fit = 200
    other = y.copy()
    other[n_fit:] = other[n_fit:] * 3 - 7
    a = fb.LinearAR(None, 6, season=12).fit(y, n_fit)
    b = fb.LinearAR(None, 6, season=12).fit(other, n_fit)
    assert a.orders == b.orders == [3]
    np.testing.assert_array_equal(a.coef[0], b.coef[0])
    np.testing.assert_array_equal(a.forecast(y, [n_fit]), b.forecast(other, [n_fit]))


@pytest.mark.parametrize("name", ["ets", "sarima"])
def test_the_statsmodels_baselines_read_nothing_after_their_fit_part(name):
    from rnnkit.tasks.baselines import statsmodels_ts
    pytest.importorskip("statsmodels")
    t = np.arange(40)
    y = (10 + 0.1 * t + 2 * np.sin(2 * np.pi * t / 4) + np.random.default_rng(0).normal(0, 0.3, 40))[:, None]
    other = y.copy()
    other[28:] += 50.0
    fit = getattr(statsmodels_ts, name)
    a, b = fit(y, 28, [28, 30], 3, 4), fit(other, 28, [28, 30], 3, 4)
    np.testing.assert_allclose(a[0], b[0])
    assert not np.allclose(a[1], b[1])        # the forecast from origin 30 reads the changed values 28 and 29


def _csv(path, y):
    path.write_text("month,value\n" + "".join(f"{2000 + i // 12}-{i % 12 + 1:02d},{v:.6f}\n" for i, v in enumerate(y)))
    return path


def _ar_row(tmp_path, data, name, *opts):
    run = tmp_path / name
    assert main(["train", "forecast", "--data", str(data), "--target", "value", "--out", str(run), "--horizon", "3",
                 *TINY, *opts]) == 0
    return json.loads((run / "result.json").read_text())["test"]["ar"]


def test_the_ar_baseline_does_not_follow_the_network_lookback(tmp_path):
    data = _csv(tmp_path / "s.csv", _ar3(160))
    rows = [_ar_row(tmp_path, data, f"l{lookback}", "--lookback", str(lookback)) for lookback in (4, 9, 20)]
    assert rows[0] == rows[1] == rows[2]


def _first_origin_forecasts(run, model):
    import csv
    with open(run / "backtest.csv", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["model"] == model]
    return [float(r["forecast"]) for r in rows if r["origin"] == rows[0]["origin"]]


def test_the_backtest_baselines_never_see_the_test_part(tmp_path):
    """Every value from the test part on scaled: the baselines' forecasts from its first origin stay (they fail
    to when an order or coefficient is fitted on a test value)."""
    y = _ar3(160)
    _ar_row(tmp_path, _csv(tmp_path / "a.csv", y), "a", "--lookback", "6")
    n_test_start = json.loads((tmp_path / "a" / "result.json").read_text())["split"]["n_val_end"]
    changed = y.copy()
    changed[n_test_start:] = changed[n_test_start:] * 4 - 15
    _ar_row(tmp_path, _csv(tmp_path / "b.csv", changed), "b", "--lookback", "6")
    for model in ("ar", "naive"):
        a, b = _first_origin_forecasts(tmp_path / "a", model), _first_origin_forecasts(tmp_path / "b", model)
        assert len(a) == 3
        np.testing.assert_allclose(a, b, rtol=1e-5)


@pytest.mark.parametrize("fit_on", ["train", "train+val"])
def test_the_baselines_are_fitted_on_the_part_baseline_fit_names(tmp_path, monkeypatch, fit_on):
    """A spy on the AR, ETS and SARIMA fits: each is given the training part (+ validation with train+val) as its
    fit part, which the tests above show is all they read."""
    from rnnkit.tasks.baselines import statsmodels_ts
    pytest.importorskip("statsmodels")
    seen = []
    ar_fit, sm_fit = fb.LinearAR.fit, statsmodels_ts._fit
    monkeypatch.setattr(fb.LinearAR, "fit", lambda self, y, n_fit: seen.append(("ar", n_fit)) or ar_fit(self, y, n_fit))
    monkeypatch.setattr(statsmodels_ts, "_fit", lambda fn, y, n_fit, o, h: seen.append(("sm", n_fit)) or
                        sm_fit(fn, y, n_fit, o, h))
    run = tmp_path / "r"
    opts = [o if o != "naive,ar" else "ar,ets,sarima" for o in TINY]
    assert main(["train", "forecast", "--data", str(_csv(tmp_path / "s.csv", _ar3(160))), "--target", "value",
                 "--out", str(run), "--horizon", "3", "--lookback", "6", "--baseline-fit", fit_on, "--season", "1",
                 *opts]) == 0
    split = json.loads((run / "result.json").read_text())["split"]
    expected = split["n_val_end"] if fit_on == "train+val" else split["n_train"]
    assert seen == [("ar", expected), ("sm", expected), ("sm", expected)]
