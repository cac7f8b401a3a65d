"""`rnnkit compare TASK`: every variant trains on the same split and lands in one table."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.cli import main


def test_compare_classify_table(tmp_path, capsys):
    pytest.importorskip("sklearn")
    data = tmp_path / "r.csv"
    rows = [("good film", "pos"), ("bad film", "neg"), ("great food", "pos"), ("awful food", "neg")] * 6
    data.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    out = tmp_path / "cmp"
    assert main(["compare", "classify", "--data", str(data), "--cells", "lstm,gru", "--models", "mlp",
                 "--epochs", "1", "--set", "model.hidden=4", "--set", "model.embedding=4",
                 "--set", "train.progress=none", "--set", "train.tensorboard=off", "--out", str(out)]) == 0
    table = json.loads((out / "compare.json").read_text())
    assert [r["model"] for r in table] == ["lstm", "gru", "mlp", "tfidf+logreg", "nbsvm"]
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["parameters"] > 0 for r in table)
    assert "tfidf+logreg" in capsys.readouterr().out
    sizes = {json.loads((out / m / "result.json").read_text())["test"] for m in ("lstm", "gru", "mlp")}
    assert sizes == {round(len(rows) * 0.1)}   # the same test split for all


def test_compare_forecast_has_baselines_once(tmp_path):
    t = np.arange(80)
    data = tmp_path / "s.csv"
    data.write_text("t,y\n" + "".join(f"{i},{10 + np.sin(i / 2):.4f}\n" for i in t))
    out = tmp_path / "cmp"
    assert main(["compare", "forecast", "--data", str(data), "--target", "y", "--horizon", "3", "--cells", "gru",
                 "--models", "tdnn", "--epochs", "1", "--set", "model.hidden=4", "--set", "model.lookback=6",
                 "--set", "data.baselines=naive,ar", "--set", "train.progress=none",
                 "--set", "train.tensorboard=off", "--out", str(out)]) == 0
    names = [r["model"] for r in json.loads((out / "compare.json").read_text())]
    assert names == ["gru", "naive", "ar", "tdnn"]


def test_compare_lm_with_markov(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. the dog sat on the log. " * 40)
    out = tmp_path / "cmp"
    assert main(["compare", "lm", "--data", str(text), "--cells", "gru", "--orders", "2,4", "--out", str(out),
                 "--set", "train.max_steps=3", "--set", "model.hidden=8", "--set", "train.bptt=16",
                 "--set", "train.batch_size=4", "--set", "train.progress=none", "--set", "train.tensorboard=off"]) == 0
    rows = {r["model"]: r for r in json.loads((out / "compare.json").read_text())}
    assert set(rows) == {"gru", "markov-2", "markov-4"}
    assert rows["markov-4"]["val_ppl"] < rows["markov-2"]["val_ppl"] < 30


def test_compare_bad_set(capsys):
    assert main(["compare", "classify", "--set", "hidden=3"]) == 2
    assert "SECTION.FIELD=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "classify"], ["train", "tag"], ["train", "forecast"], ["predict"],
                                  ["compare"], ["evaluate"]])
def test_help_works(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0 and "usage: rnnkit" in capsys.readouterr().out


def test_predict_refuses_other_tasks_and_missing_runs(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope"), "x"]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_compare_tag_with_feature_crf(tmp_path):
    pytest.importorskip("pycrfsuite")
    data = tmp_path / "t.conll"
    sents = [[("Anna", "B-PER"), ("visited", "O"), ("Paris", "B-LOC")],
             [("Peter", "B-PER"), ("saw", "O"), ("Oslo", "B-LOC")]] * 10
    data.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sents) + "\n")
    out = tmp_path / "cmp"
    assert main(["compare", "tag", "--data", str(data), "--cells", "gru", "--models", "", "--epochs", "1",
                 "--set", "model.hidden=4", "--set", "model.embedding=4", "--set", "model.char_hidden=0",
                 "--set", "train.progress=none", "--set", "train.tensorboard=off", "--out", str(out)]) == 0
    rows = json.loads((out / "compare.json").read_text())
    assert [r["model"] for r in rows] == ["gru", "crf (word features)"] and rows[1]["f1"] == 100.0


@pytest.mark.parametrize("refit,fits", [("true", 2), ("false", 1)])
def test_compare_forecast_train_s_counts_every_fit(tmp_path, monkeypatch, refit, fits):
    """train_s is the time of the early-stopped fit plus the refit, not of the first fit only."""
    import dataclasses
    from rnnkit.tasks.forecast import pipeline as forecast
    real_fit = forecast._fit

    def timed_fit(*args, **kw):                      # every fit reports 1.25 s
        model, fit = real_fit(*args, **kw)
        return model, dataclasses.replace(fit, elapsed_s=1.25)

    monkeypatch.setattr(forecast, "_fit", timed_fit)
    data = tmp_path / "s.csv"
    data.write_text("t,y\n" + "".join(f"{i},{10 + np.sin(i / 2):.4f}\n" for i in range(60)))
    out = tmp_path / "cmp"
    assert main(["compare", "forecast", "--data", str(data), "--target", "y", "--horizon", "2", "--cells", "gru",
                 "--models", "", "--epochs", "1", "--set", "model.hidden=4", "--set", "model.lookback=4",
                 "--set", "data.baselines=naive", "--set", f"data.refit={refit}", "--set", "train.progress=none",
                 "--set", "train.tensorboard=off", "--out", str(out)]) == 0
    rows = {r["model"]: r for r in json.loads((out / "compare.json").read_text())}
    assert rows["gru"]["train_s"] == pytest.approx(1.25 * fits)
    result = json.loads((out / "gru" / "result.json").read_text())
    assert (result["fit_s"], result["refit_s"]) == (1.25, 1.25 if fits == 2 else 0.0)
