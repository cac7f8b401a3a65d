"""Caption scores (pycocoevalcap's BLEU and CIDEr-D, METEOR only with java) and tagging scores."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.metrics import captioning
from rnnkit.metrics.captioning import caption_scores, normalize_caption, tagging_scores

pytest.importorskip("pycocoevalcap", reason="caption metrics need pip install 'rnnkit[vision]'")


def test_identical_captions_score_top_and_wrong_ones_low():
    refs = [["a red circle left of a blue square", "a red circle is left of a blue square"],
            ["two green triangles above a small yellow circle", "a small yellow circle under two green triangles"]]
    good = caption_scores([r[0] for r in refs], refs, meteor="off")
    assert good["bleu1"] == pytest.approx(1.0) and good["bleu4"] == pytest.approx(1.0, abs=1e-6)
    assert good["cider_d"] > 1.0 and good["n"] == 2 and "meteor" not in good
    bad = caption_scores(["a dog", "grass"], refs, meteor="off")
    assert bad["bleu4"] < 0.01 and bad["cider_d"] < 0.1
    assert normalize_caption("A Dog, running!") == "a dog running"


def test_meteor_is_skipped_with_a_notice_without_java(monkeypatch, capsys):
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    scores = caption_scores(["a dog"], [["a dog"]], meteor="auto")
    assert "meteor" not in scores and "METEOR skipped: no java on the PATH" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="METEOR was asked for but cannot run: no java"):
        caption_scores(["a dog"], [["a dog"]], meteor="on")


def test_caption_scores_check_their_input():
    with pytest.raises(ValueError, match="one hypothesis per image"):
        caption_scores(["a"], [["a"], ["b"]], meteor="off")
    with pytest.raises(ValueError, match="at least one reference"):
        caption_scores(["a"], [[]], meteor="off")


def test_tagging_scores():
    truth = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    scores = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.3], [0.6, 0.4, 0.1]])
    predicted = scores > 0.5
    m = tagging_scores(truth, scores, predicted, ["a", "b", "c"])
    assert m["mAP"] == pytest.approx(1.0)                                  # every positive ranked above negatives
    assert m["per_tag_f1"]["a"] == pytest.approx(1.0) and m["per_tag_f1"]["b"] == pytest.approx(2 / 3)
    assert m["exact_set"] == pytest.approx(2 / 3) and m["n"] == 3
    shuffled = tagging_scores(truth, 1 - scores, predicted, ["a", "b", "c"])
    assert shuffled["mAP"] < 0.7
