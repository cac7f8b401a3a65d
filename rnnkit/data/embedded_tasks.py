"""Default datasets for classify / tag / forecast: no download, no file needed.

Real data shipped inside PyPI packages (``pip install 'rnnkit[tasks]'``):

* ``digits``  - scikit-learn's 1,797 handwritten digits (UCI optdigits test
  set), each 8x8 image read row by row as a sequence of 8 steps x 8 features.
* ``co2``     - statsmodels' Mauna Loa weekly CO2 (1958-2001), averaged per
  month (526 values, gaps interpolated); season 12.
* ``sunspots`` - statsmodels' yearly sunspot numbers 1700-2008 (309 values);
  the ~11-year cycle is used as the seasonal-naive period.
* ``stocks``  - vega_datasets' monthly closing prices 2000-2010 (AAPL, AMZN,
  GOOG, IBM, MSFT as columns; 123 months, GOOG from 2004 only so it is left out).
* ``seattle-weather`` - vega_datasets' daily Seattle weather 2012-2015
  (1,461 days; ``temp_max`` target, precipitation / wind covariates).

Small sets written for rnnkit (generated deterministically from word lists in
:mod:`rnnkit.data.sets.generated`):

* ``reviews`` - 1,600 one-sentence reviews from four domains (restaurants,
  films, hotels, phones), labelled pos / neg, with negation ("not good") and
  contrast ("... but ...") so that word order matters.
* ``ner``     - 1,500 news-style sentences tagged with PER / LOC / ORG / MISC
  entities in BIO; the test part uses names never seen in training.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnkit.data.readers import DataError

CLASSIFY_SETS = ("digits", "reviews")
TAG_SETS = ("ner",)
SERIES_SETS = ("co2", "sunspots", "stocks", "seattle-weather")


def _need(module: str, dataset: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"the embedded {dataset!r} dataset comes from {module.split('.')[0]}: "
                          "pip install 'rnnkit[tasks]'") from err


# ----------------------------------------------------------------- classification

def digits_sequences() -> tuple[list[np.ndarray], list[str], str]:
    """``(sequences (8, 8) each, labels, source)`` from scikit-learn's digits, rows as time steps."""
    datasets = _need("sklearn.datasets", "digits")
    d = datasets.load_digits()
    seqs = [img.astype(np.float32) for img in d.images]  # pixel values 0-16, as the file has them
    return seqs, [str(int(t)) for t in d.target], "scikit-learn load_digits (UCI optdigits), rows as steps"


def classify_set(name: str):
    """``(inputs, labels, kind, source)`` of an embedded classification set."""
    if name == "digits":
        seqs, labels, source = digits_sequences()
        return seqs, labels, "numeric", source
    if name == "reviews":
        from rnnkit.data.sets.generated import reviews
        texts, labels = reviews()
        return texts, labels, "text", "rnnkit generated reviews (4 domains, negation and contrast)"
    raise DataError(f"unknown embedded classification set {name!r}; choose from {', '.join(CLASSIFY_SETS)}")


def tag_set(name: str):
    """``(train, test)`` lists of ``(tokens, tags)``; the test part uses unseen names."""
    if name == "ner":
        from rnnkit.data.sets.generated import ner_sentences
        return ner_sentences()
    raise DataError(f"unknown embedded tagging set {name!r}; choose from {', '.join(TAG_SETS)}")


# -------------------------------------------------------------------- forecasting

@dataclass
class EmbeddedSeries:
    name: str
    times: list[str]
    columns: dict[str, np.ndarray]
    target: str
    season: int
    source: str
    covariates: list[str] = field(default_factory=list)


def _co2() -> EmbeddedSeries:
    sm = _need("statsmodels.datasets.co2", "co2")
    df = sm.load_pandas().data
    monthly = df["co2"].resample("MS").mean().interpolate()
    return EmbeddedSeries("co2", [t.strftime("%Y-%m") for t in monthly.index], {"co2": monthly.to_numpy(float)},
                          "co2", 12, "statsmodels.datasets.co2 (Mauna Loa, weekly, averaged per month)")


def _sunspots() -> EmbeddedSeries:
    sm = _need("statsmodels.datasets.sunspots", "sunspots")
    df = sm.load_pandas().data
    return EmbeddedSeries("sunspots", [str(int(y)) for y in df["YEAR"]],
                          {"sunactivity": df["SUNACTIVITY"].to_numpy(float)}, "sunactivity", 11,
                          "statsmodels.datasets.sunspots (yearly, 1700-2008)")


def _stocks() -> EmbeddedSeries:
    vd = _need("vega_datasets", "stocks")
    df = vd.data.stocks()
    wide = df.pivot(index="date", columns="symbol", values="price").drop(columns=["GOOG"]).dropna()
    cols = {c: wide[c].to_numpy(float) for c in wide.columns}
    return EmbeddedSeries("stocks", [t.strftime("%Y-%m") for t in wide.index], cols, "AAPL", 12,
                          "vega_datasets stocks (monthly closing prices 2000-2010)")


def _seattle() -> EmbeddedSeries:
    vd = _need("vega_datasets", "seattle-weather")
    df = vd.data.seattle_weather()
    cols = {c: df[c].to_numpy(float) for c in ("temp_max", "temp_min", "precipitation", "wind")}
    return EmbeddedSeries("seattle-weather", [t.strftime("%Y-%m-%d") for t in df["date"]], cols, "temp_max", 7,
                          "vega_datasets seattle_weather (daily 2012-2015)", covariates=["precipitation", "wind"])


def series_set(name: str) -> EmbeddedSeries:
    makers = {"co2": _co2, "sunspots": _sunspots, "stocks": _stocks, "seattle-weather": _seattle}
    if name not in makers:
        raise DataError(f"unknown embedded series {name!r}; choose from {', '.join(SERIES_SETS)}")
    return makers[name]()
