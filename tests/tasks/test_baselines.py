"""The literature's baselines: Kneser-Ney Markov model, TF-IDF + logistic regression, ETS / SARIMA."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from rnnkit.tasks.baselines.markov import KneserNey

DATA = [[0, 1, 2, 1, 2, 3, 1, 2, 0, 1], [2, 1, 2, 1, 3]]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_distributions_sum_to_one(order):
    m = KneserNey(order, 6).fit(DATA)
    for ctx in itertools.product(range(6), repeat=min(order - 1, 2)):
        assert sum(m.distribution(list(ctx))) == pytest.approx(1.0, abs=1e-9)


def test_kneser_ney_unigram_by_hand():
    m = KneserNey(1, 4, discount=0.5).fit([[0, 0, 1]])
    # counts 0:2, 1:1; total 3, 2 types: P(w) = max(c - .5, 0)/3 + .5 * 2/3 * 1/4
    assert m.prob([], 0) == pytest.approx(1.5 / 3 + 1 / 12)
    assert m.prob([], 3) == pytest.approx(1 / 12)


def test_kneser_ney_bigram_uses_continuation_counts():
    m = KneserNey(2, 3, discount=0.5).fit([[0, 1, 0, 1, 2, 1]])
    # unigram level = continuation counts: 1 follows {0, 2} -> 2, 0 follows {1} -> 1, 2 follows {1} -> 1
    # plus the document's first token (0) counted raw: 0 -> 2
    assert dict(m.counts[0][()]) == {0: 2, 1: 2, 2: 1}
    assert m.prob([0], 1) > m.prob([0], 2)


def test_higher_order_fits_a_repetitive_stream_better():
    stream = [[0, 1, 2, 3] * 30]
    nll2, _ = KneserNey(2, 5).fit(stream).cross_entropy(stream)
    nll1, n = KneserNey(1, 5).fit(stream).cross_entropy(stream)
    assert n == 120 and nll2 < nll1 < math.log(5)
    assert KneserNey(3, 5).fit(stream).generate([0, 1], 4, temperature=0) == [2, 3, 0, 1]


def test_tfidf_logreg_learns_words():
    pytest.importorskip("sklearn")
    from rnnkit.tasks.baselines.text import flat_logreg, tfidf_logreg
    texts = ["good film", "great fun", "bad film", "awful fun"] * 10
    labels = ["pos", "pos", "neg", "neg"] * 10
    r = tfidf_logreg(texts, labels, ["good fun", "awful film"], ["pos", "neg"])
    assert r["accuracy"] == 1.0 and r["parameters"] > 0
    seqs = [np.full((3, 2), 1.0 if i % 2 else -1.0, dtype=np.float32) for i in range(20)]
    r = flat_logreg(seqs, ["a", "b"] * 10, seqs[:4], ["a", "b"] * 2)
    assert r["accuracy"] == 1.0
    with pytest.raises(ValueError, match="never seen"):
        tfidf_logreg(texts, labels, ["x"], ["meh"])


def test_ets_and_sarima_forecast_a_seasonal_series():
    pytest.importorskip("statsmodels")
    from rnnkit.tasks.baselines.forecasting import naive
    from rnnkit.tasks.baselines.statsmodels_ts import ets, sarima
    t = np.arange(72)
    y = (10 + 0.1 * t + 2 * np.sin(2 * np.pi * t / 12))[:, None]
    origins = [60, 63]
    actual = np.stack([y[o:o + 6] for o in origins])
    base = np.abs(naive(y, origins, 6) - actual).mean()
    for fn in (ets, sarima):
        f = fn(y, 60, origins, 6, 12)
        assert f.shape == (2, 6, 1)
        assert np.abs(f - actual).mean() < base / 3     # seasonal models beat naive by far here


def test_one_filter_pass_gives_the_per_origin_forecasts():
    """The state-space forecasts from one filter pass equal re-filtering the data up to each origin."""
    pytest.importorskip("statsmodels")
    import warnings
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    from rnnkit.tasks.baselines.statsmodels_ts import ets, sarima
    rng = np.random.default_rng(0)
    t = np.arange(60)
    y = (20 + 0.2 * t + 3 * np.sin(2 * np.pi * t / 6) + rng.normal(0, 0.3, 60))[:, None]
    origins = [45, 50, 55]
    models = {ets: lambda e: ExponentialSmoothing(e, trend=True, damped_trend=True, seasonal=6),
              sarima: lambda e: SARIMAX(e, order=(1, 1, 1), seasonal_order=(0, 1, 1, 6), trend="n")}
    for fn, make in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = make(y[:45, 0]).fit(disp=False)
            slow = np.stack([np.asarray(res.apply(y[:o, 0]).forecast(5)) for o in origins])
        np.testing.assert_allclose(fn(y, 45, origins, 5, 6)[..., 0], slow, rtol=1e-7, atol=1e-7)


def test_feature_crf_tagger():
    pytest.importorskip("pycrfsuite")
    from rnnkit.tasks.baselines.crf_features import crf_tagger, token_features
    f = token_features(["Anna", "visited", "Paris"], 0)
    assert f["lower"] == "anna" and f["title"] and f["BOS"] and f["+1:lower"] == "visited" and f["shape"] == "Xxx"
    data = [(["Anna", "visited", "Paris", "."], ["B-PER", "O", "B-LOC", "O"]),
            (["Peter", "visited", "Oslo", "."], ["B-PER", "O", "B-LOC", "O"])] * 10
    r = crf_tagger(data, data[:2])
    assert r["f1"] == 100.0 and r["accuracy"] == 1.0 and r["parameters"] > 0
