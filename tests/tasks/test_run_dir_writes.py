"""Every file a task writes into a run directory goes through rnnkit.atomic: under data-parallel training the
processes other than rank 0 run inside ``written_elsewhere(run_dir)`` and must write nothing there, and a
reader never sees half a file (no temporary file is left beside the output either)."""
from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rnnkit.atomic import written_elsewhere
from rnnkit.data.tabular import TaggedSentence
from rnnkit.tasks.classify.data import Examples
from rnnkit.tasks.classify.pipeline import _write_predictions, plot_confusion
from rnnkit.tasks.forecast import pipeline as forecast_pipeline
from rnnkit.tasks.forecast.backtest import Forecast, backtest_table, plot_forecast
from rnnkit.tasks.forecast.data import Series, SplitPoints
from rnnkit.tasks.tag.pipeline import score_sentences
from rnnkit.tasks.tts.plots import alignment_and_mels
from rnnkit.tasks.voice_translate.report import plot_voices

SERIES = Series([f"t{i}" for i in range(8)], np.arange(1.0, 9.0)[:, None], ["y"], 1, "tiny")
MODELS = {"lstm": Forecast(np.full((2, 2, 1), 5.0), np.full((2, 2, 1), 4.0), np.full((2, 2, 1), 6.0)),
          "naive": Forecast(np.full((2, 2, 1), 4.0))}


def _classify_predictions(run: Path) -> None:
    ex = Examples(["a b", "c, d"], ["pos", "neg"], ["f.csv:2", "f.csv:3"], "text", "f.csv")
    _write_predictions(run / "predictions-test.csv", ex, np.array([[0.9, 0.1], [0.3, 0.7]]), ["pos", "neg"])


def _tag_predictions(run: Path) -> None:
    loaded = SimpleNamespace(encoder=SimpleNamespace(scheme="none", encode_tags=lambda tags, where: None),
                             tag=lambda sentences: [["O"] * len(s) for s in sentences])
    score_sentences(loaded, [TaggedSentence(["Maria", "ran"], ["PER", "O"], "f:1"),
                             TaggedSentence(["Go"], ["O"], "f:4")], run / "predictions-test.conll")


def _forecast_prediction(run: Path, monkeypatch) -> None:
    loaded = SimpleNamespace(run_dir=run)
    monkeypatch.setattr(forecast_pipeline, "load_forecaster", lambda r: loaded)
    monkeypatch.setattr(forecast_pipeline, "read_table", lambda data: None)
    monkeypatch.setattr(forecast_pipeline, "forecast_table", lambda loaded, table: [
        {"time": "t9", "target": "y", "mean": 1.5}, {"time": "t10", "target": "y", "mean": 2.0}])
    forecast_pipeline.predict_forecast(run, "new.csv")


WRITERS = {   # what each writes, relative to the run directory
    "classify predictions": (_classify_predictions, "predictions-test.csv"),
    "classify confusion": (lambda run: plot_confusion(np.array([[3, 1], [0, 2]]), ["pos", "neg"],
                                                      run / "confusion-test.png"), "confusion-test.png"),
    "forecast backtest": (lambda run: backtest_table(run / "backtest.csv", MODELS, SERIES, [4, 5], 2),
                          "backtest.csv"),
    "forecast plot": (lambda run: plot_forecast(run / "forecast.png", SERIES, MODELS, [4, 5], 2,
                                                SplitPoints(3, 4, 8)), "forecast.png"),
    "tag predictions": (_tag_predictions, "predictions-test.conll"),
    "tts alignment": (lambda run: alignment_and_mels(torch.rand(6, 4), torch.rand(6, 3), torch.rand(5, 3),
                                                     run / "plots" / "alignment.png"), "plots/alignment.png"),
    "voice-translate plot": (lambda run: plot_voices(run / "out.png", np.sin(np.arange(2000) / 5.0),
                                                     np.sin(np.arange(1600) / 7.0), 8000,
                                                     {"input": [0.0, 120.0, 125.0], "output": [130.0, 0.0]}),
                             "out.png"),
}


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()) if run.exists() else []


@pytest.mark.parametrize("name", [*WRITERS, "forecast prediction"])
def test_a_task_file_is_written_atomically_and_by_rank_0_alone(tmp_path, monkeypatch, name):
    if name == "forecast prediction":
        write, expected = (lambda run: _forecast_prediction(run, monkeypatch)), "forecast-new.csv"
    else:
        write, expected = WRITERS[name]
    run = tmp_path / "run"
    run.mkdir()
    with written_elsewhere(run):     # a rank > 0 of a data-parallel run
        write(run)
    assert _files(run) == []
    write(run)
    assert _files(run) == [expected]  # and no temporary file beside it
    if expected.endswith(".png"):
        assert (run / expected).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_tables_keep_their_bytes(tmp_path, monkeypatch):
    """CSV through rnnkit.atomic: the csv module's \\r\\n rows and quoting, as on a file opened with newline=''."""
    run = tmp_path
    _classify_predictions(run)
    raw = (run / "predictions-test.csv").read_bytes()
    assert raw.startswith(b"where,label,predicted,probability,p_pos,p_neg\r\n") and raw.count(b"\r\n") == 3
    rows = list(csv.reader((run / "predictions-test.csv").open(newline="", encoding="utf-8")))
    assert rows[2] == ["f.csv:3", "neg", "neg", "0.7000", "0.3000", "0.7000"]
    backtest_table(run / "backtest.csv", MODELS, SERIES, [4, 5], 2)
    rows = list(csv.reader((run / "backtest.csv").open(newline="", encoding="utf-8")))
    assert rows[0][:3] == ["model", "origin", "step"] and len(rows) == 1 + 2 * 2 * 2
    assert rows[1] == ["lstm", "t4", "1", "t4", "y", "5", "5", "4", "6"]
    _forecast_prediction(run, monkeypatch)
    assert (run / "forecast-new.csv").read_bytes() == b"time,target,mean\r\nt9,y,1.5\r\nt10,y,2.0\r\n"
    _tag_predictions(run)
    assert (run / "predictions-test.conll").read_text() == "Maria PER O\nran O O\n\nGo O O\n\n"
