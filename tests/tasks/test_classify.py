"""Classification: metrics against hand-computed values, encoders, and the CLI end to end on tiny data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.readers import DataError
from rnnkit.tasks.classify.config import ClassifyModelConfig
from rnnkit.tasks.classify.model import SequenceClassifier
from rnnkit.modules.encoders import Pooling
from rnnkit.metrics import classification_report, confusion_matrix
from tiny_files import write_text_label_csv

TINY = ["--epochs", "2", "--hidden", "8", "--embedding", "8", "--batch-size", "8", "--progress", "none",
        "--tensorboard", "off"]


def test_classification_report_by_hand():
    y, p = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 0, 2]
    cm = confusion_matrix(y, p, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    r = classification_report(y, p, 3)
    assert r.accuracy == pytest.approx(4 / 6)
    # precision: 1/2, 2/3, 1/1; recall: 1/2, 2/2, 1/2
    assert r.precision == pytest.approx([0.5, 2 / 3, 1.0])
    assert r.recall == pytest.approx([0.5, 1.0, 0.5])
    f1 = [0.5, 0.8, 2 / 3]
    assert r.f1 == pytest.approx(f1)
    assert r.macro_f1 == pytest.approx(sum(f1) / 3)


def test_report_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    r = classification_report(y, p, 4)
    assert r.macro_f1 == pytest.approx(metrics.f1_score(y, p, average="macro"))
    assert r.accuracy == pytest.approx(metrics.accuracy_score(y, p))


def test_last_pooling_reads_each_true_end_in_both_directions():
    h = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)   # D = 4: forward half 0:2, backward 2:4
    lengths = torch.tensor([3, 1])
    out = Pooling("last", 4, 2)(h, lengths)
    assert out[0].tolist() == h[0, 2, :2].tolist() + h[0, 0, 2:].tolist()
    assert out[1].tolist() == h[1, 0, :2].tolist() + h[1, 0, 2:].tolist()
    mean = Pooling("mean", 4, 1)(h, lengths)
    assert torch.allclose(mean[1], h[1, 0])


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
def test_padding_does_not_change_the_prediction(pooling):
    torch.manual_seed(0)
    cfg = ClassifyModelConfig(hidden=6, embedding=5, pooling=pooling, dropout=0.0, nbsvm=0)
    model = SequenceClassifier(cfg, "text", 20, 3).eval()
    x = torch.tensor([[4, 5, 6]])
    alone = model({"inputs": x, "lengths": torch.tensor([3])}).logits
    padded = model({"inputs": torch.tensor([[4, 5, 6, 0, 0]]), "lengths": torch.tensor([3])}).logits
    torch.testing.assert_close(alone, padded)


def _sentiment(n=40):
    pos = ["good film", "great food", "lovely room", "really good", "great fun"]
    neg = ["bad film", "awful food", "poor room", "really bad", "awful fun"]
    return [(pos[i % 5], "pos") if i % 2 == 0 else (neg[i % 5], "neg") for i in range(n)]


def test_cli_train_evaluate_predict_text(tmp_path, capsys):
    data = tmp_path / "reviews.csv"
    write_text_label_csv(data, _sentiment())
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), *TINY]) == 0
    result = json.loads((run / "result.json").read_text())
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["train"] + result["val"] + result["test"] == 40
    assert (run / "checkpoints" / "best.safetensors").is_file()
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    assert "macro-F1" in capsys.readouterr().out
    assert (run / "predictions-reviews.csv").is_file() and (run / "confusion-reviews.png").is_file()
    assert main(["predict", str(run), "good food", "awful room", "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert [set(p["probabilities"]) for p in preds] == [{"pos", "neg"}] * 2
    assert sum(preds[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    long = "the food was good " * 10
    assert [p["input"] for p in preds] == ["good food", "awful room"]
    # the table shows each input beside its label, a long one cut; --json keeps it whole
    assert main(["predict", str(run), "good food", long]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[:2] for r in rows] == [["1", "good food"], ["2", long.strip()[:57] + "..."]]
    assert all(r[2] in ("pos", "neg") for r in rows)
    assert main(["predict", str(run), long, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["input"] == long


def test_cli_numeric_sequences_and_resume(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        up = i % 2 == 0
        seq = np.cumsum(rng.normal(1 if up else -1, 0.3, 5 + i % 3))
        rows.append((" ".join(f"{v:.3f}" for v in seq), "up" if up else "down"))
    data = tmp_path / "seq.csv"
    write_text_label_csv(data, rows)
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--cell", "gru", "--pooling", "mean",
                 *TINY]) == 0
    first = json.loads((run / "result.json").read_text())["steps"]
    assert main(["train", "classify", "--out", str(run), "--resume", "--epochs", "3", "--progress", "none"]) == 0
    assert json.loads((run / "result.json").read_text())["steps"] > first  # went on from epoch 2 to 3


@pytest.mark.parametrize("model", ["tdnn", "mlp"])
def test_cli_baseline_networks(tmp_path, model):
    data = tmp_path / "r.csv"
    write_text_label_csv(data, _sentiment(24))
    assert main(["train", "classify", "--data", str(data), "--out", str(tmp_path / model), "--model", model,
                 *TINY]) == 0


def test_unseen_label_at_evaluation_names_file_line_column(tmp_path, capsys):
    data = tmp_path / "train.csv"
    write_text_label_csv(data, _sentiment(20))
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), *TINY]) == 0
    bad = tmp_path / "bad.csv"
    write_text_label_csv(bad, [("good film", "pos"), ("meh", "neutral")])
    assert main(["evaluate", str(run), "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3" in err and "'neutral'" in err and "never seen in training" in err


def test_missing_label_column_is_a_clear_error(tmp_path, capsys):
    data = tmp_path / "t.csv"
    data.write_text("text,sentiment\ngood,pos\nbad,neg\n")
    assert main(["train", "classify", "--data", str(data), "--out", str(tmp_path / "r"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "no column 'label'" in err and "'sentiment'" in err


def test_embedded_digits_are_rows_as_steps():
    pytest.importorskip("sklearn")
    from rnnkit.data.embedded_tasks import classify_set
    seqs, labels, kind, _ = classify_set("digits")
    assert kind == "numeric" and len(seqs) == 1797 and seqs[0].shape == (8, 8) and set(labels) == set("0123456789")


def test_embedded_reviews_are_balanced_and_deterministic():
    from rnnkit.data.embedded_tasks import classify_set
    a, la, kind, _ = classify_set("reviews")
    b, lb, _, _ = classify_set("reviews")
    assert kind == "text" and a == b and la.count("pos") == la.count("neg")
    with pytest.raises(DataError):
        classify_set("nope")
