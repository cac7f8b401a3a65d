"""NBSVM (Wang & Manning 2012) as a baseline row and as the classifier's ``--nbsvm N`` expert: ratios checked by
hand, the table fitted on the training split only, the mixing weight chosen on validation and saved, and runs
that predict from raw text and export."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.config import ConfigError
from rnnkit.tasks.baselines.nbsvm import binary_matrix, fit_nbsvm, nb_ratios, nbsvm_baseline, word_ngrams
from rnnkit.tasks.classify.config import ClassifyDataConfig, ClassifyModelConfig, ClassifyRunConfig
from rnnkit.tasks.classify.data import fit_encoder
from rnnkit.tasks.classify.model import SequenceClassifier
from rnnkit.tasks.classify.ngram_mix import RIDGE, choose_mix, expert_logits, fit_ngram_expert
from rnnkit.tasks.classify.pipeline import encode, load_classifier, load_splits
from rnnkit.tasks.classify.task import logreg_baseline
from rnnkit.train.checkpoint import load_checkpoint
from tiny_files import CLASSIFY_TINY, tiny_reviews, write_text_label_csv

TINY = CLASSIFY_TINY


def _reviews(n=40):
    return tiny_reviews(n, ["a good film", "great food here", "lovely room"],
                        ["a bad film", "awful food here", "poor room"])


def test_ngrams_and_the_log_count_ratios_by_hand():
    assert word_ngrams(["a", "b", "a"], 2) == ["a", "b", "a b", "b a"]
    assert word_ngrams(["a", "b"], 1) == ["a", "b"]
    X = binary_matrix([["x", "y"], ["x", "z"], ["y"]], {"x": 0, "y": 1, "z": 2})
    np.testing.assert_array_equal(X.toarray(), [[1, 1, 0], [1, 0, 1], [0, 1, 0]])
    # p = 1 + [2, 1, 1] = [3, 2, 2] (sum 7), q = 1 + [0, 1, 0] = [1, 2, 1] (sum 4)
    r = nb_ratios(X, np.array([True, True, False]))
    np.testing.assert_allclose(r, [math.log(12 / 7), math.log(4 / 7), math.log(8 / 7)])


def test_the_interpolation_and_what_the_table_holds():
    texts = ["good film", "great film", "bad film", "awful film", "good fun", "bad day"]
    labels = ["pos", "pos", "neg", "neg", "pos", "neg"]
    nb_only = fit_nbsvm(texts, labels, ["neg", "pos"], order=2, beta=0.0)  # w' = mean |w|: naive Bayes, scaled
    X = binary_matrix([word_ngrams(t.split(), 2) for t in texts], {g: i for i, g in enumerate(nb_only.ngrams)})
    r = nb_ratios(X, np.array([lab == "pos" for lab in labels]))
    some = np.abs(r) > 1e-9                                             # "film": in every text, ratio 0
    assert not some.all() and not nb_only.weights[~some, 1].any()
    ratio = nb_only.weights[some, 1] / r[some]                          # one constant: mean |w| of the SVM
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)
    assert ratio[0] > 0 and nb_only.bias[1] == 0.0
    assert not nb_only.weights[:, 0].any()                              # two classes: one model, for the second
    assert sorted(nb_only.ngrams) == sorted({g for t in texts for g in word_ngrams(t.split(), 2)})
    full = fit_nbsvm(texts, labels, ["neg", "pos"], order=2)
    assert (full.scores(["good good film", "awful day"]).argmax(1) == [1, 0]).all()
    rep = nbsvm_baseline(texts, labels, ["a good one", "a bad one"], ["pos", "neg"])
    assert rep["accuracy"] == 1.0 and rep["parameters"] == len(full.ngrams) + 1
    three = fit_nbsvm(texts + ["so so", "meh so"], labels + ["mid", "mid"], ["mid", "neg", "pos"], order=1)
    assert three.weights.shape == (len(three.ngrams), 3) and three.weights[:, 0].any()   # one against the rest


def test_the_compare_baselines_hold_an_nbsvm_row(tmp_path):
    pytest.importorskip("sklearn")
    data = write_text_label_csv(tmp_path / "r.csv", _reviews())
    rows = logreg_baseline(ClassifyRunConfig(data=ClassifyDataConfig(data=str(data))))
    assert [r["model"] for r in rows] == ["tfidf+logreg", "nbsvm"]
    assert 0.0 <= rows[1]["accuracy"] <= 1.0 and rows[1]["parameters"] > 0


def test_the_weights_are_fitted_on_the_validation_loss():
    y = np.array([0, 1, 0, 1, 1, 0])
    sign = np.where(y == 1, 1.0, -1.0)
    noise = np.array([0.3, -0.2, 0.1, 0.4, -0.5, -0.1])
    net = np.stack([np.zeros(6), 8.0 * noise], 1)                       # an overconfident network, mostly wrong
    good = np.stack([np.zeros(6), sign], 1)                             # the n-gram scores are right
    best = choose_mix(net, good, y)
    assert best.mix > 1.0 and best.val_accuracy == 1.0
    worse = choose_mix(net, -good, y)                                   # wrong scores are left out, not inverted
    assert worse.mix == 0.0 and worse.net_scale >= 0.0
    def objective(a, b):                                                # what the weights minimise
        return _xent(a * net + b * good, y) + RIDGE * (a * a + b * b)
    for da, db in ((0.05, 0), (0, 0.2), (0, -0.2)):
        assert objective(best.net_scale + da, best.mix + db) >= objective(best.net_scale, best.mix) - 1e-9
    with pytest.raises(ConfigError, match="nbsvm"):
        ClassifyModelConfig(nbsvm=4)


def _xent(z, y):
    return float(torch.nn.functional.cross_entropy(torch.as_tensor(z), torch.as_tensor(y)))


def test_cli_nbsvm_run_fits_on_training_texts_only_mixes_on_validation_and_predicts(tmp_path, capsys, one_thread):
    rows = _reviews(40)
    data = write_text_label_csv(tmp_path / "r.csv", rows)
    val = write_text_label_csv(tmp_path / "v.csv", [("a good valonly film", "pos"), ("a bad valonly film", "neg")])
    test = write_text_label_csv(tmp_path / "t.csv", [("great testonly food", "pos"), ("awful testonly", "neg")])
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--val-data", str(val), "--test-data", str(test),
                 "--out", str(run), "--nbsvm", "2", *TINY]) == 0
    loaded = load_classifier(run)
    enc = loaded.encoder
    assert enc.ngram_order == 2 and not any("valonly" in g or "testonly" in g for g in enc.ngrams)
    s = load_splits(loaded.config.data, loaded.config.train.seed)
    table = fit_nbsvm(s.train.inputs, s.train.labels, enc.labels, 2)  # the same table, from the training split
    assert enc.ngrams == table.ngrams
    torch.testing.assert_close(loaded.model.ngram.table[1:], torch.as_tensor(table.weights))
    result = json.loads((run / "result.json").read_text())
    val_b = encode(enc, s.val, 8)
    again = choose_mix(*expert_logits(loaded.model, val_b))
    assert (result["nbsvm_net_scale"], result["nbsvm_mix"]) == pytest.approx((again.net_scale, again.mix))
    for name in ("best", "last"):                                       # written into both checkpoints
        saved = load_checkpoint(run / "checkpoints" / f"{name}.safetensors").tensors
        assert float(saved["model.net_scale"]) == pytest.approx(result["nbsvm_net_scale"])
        assert float(saved["model.ngram_mix"]) == pytest.approx(result["nbsvm_mix"])
    assert {"test_accuracy_network", "test_accuracy_nbsvm"} <= set(result)
    capsys.readouterr()
    assert main(["predict", str(run), "great food here", "poor room", "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    batch = enc.batches(["great food here", "poor room"], None, 2, sort=False)[0]
    with torch.no_grad():
        probs = torch.softmax(loaded.model(batch).logits, -1)
    for p, row in zip(preds, probs):
        assert p["probabilities"]["pos"] == pytest.approx(float(row[enc.labels.index("pos")]), abs=1e-5)


def test_the_ngram_scores_reach_the_logits_and_not_the_loss(tmp_path):
    data = write_text_label_csv(tmp_path / "r.csv", _reviews(20))
    train = load_splits(ClassifyDataConfig(data=str(data)), 0).train
    enc, table = fit_ngram_expert(fit_encoder(train, "word", True, 1, 0, 0), train, 2)
    model = SequenceClassifier(ClassifyModelConfig(hidden=4, embedding=4, nbsvm=2), "text", len(enc.vocab), 2,
                               n_ngrams=len(enc.ngrams)).eval()
    model.ngram.set_table(table.weights, table.bias)
    batch = {**enc.batches(["a good film", "poor room q1"], None, 2, sort=False)[0], "targets": torch.tensor([1, 0])}
    plain = model(batch)
    model.ngram_mix.fill_(2.0)
    model.net_scale.fill_(0.5)
    mixed = model(batch)
    torch.testing.assert_close(mixed.logits, 0.5 * plain.logits + 2.0 * model.ngram(batch["ngrams"]))
    torch.testing.assert_close(mixed.loss, plain.loss)                  # the network's loss alone
    assert batch["ngrams"].shape[0] == 2 and (batch["ngrams"][:, 0] > 0).all()
    assert enc.encode_ngrams("zzz unseen") == []


def test_an_nbsvm_run_exports_to_onnx_with_parity(tmp_path, one_thread):
    pytest.importorskip("onnxruntime", reason="ONNX export needs pip install 'rnnkit[export]'")
    pytest.importorskip("onnxscript", reason="ONNX export needs pip install 'rnnkit[export]'")
    from rnnkit.export import export_run
    from rnnkit.export.routes import run_exported

    data = write_text_label_csv(tmp_path / "r.csv", _reviews(24))
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--nbsvm", "2", *TINY]) == 0
    manifest = export_run(run, "onnx", tmp_path / "onnx")
    assert [i["name"] for i in manifest["graphs"][0]["inputs"]] == ["inputs", "lengths", "ngrams"]
    loaded = load_classifier(run)
    batch = loaded.encoder.batches(["great food here today", "awful"], None, 2, sort=False)[0]
    (logits,) = run_exported("onnx", tmp_path / "onnx" / "model.onnx",
                             (batch["inputs"], batch["lengths"], batch["ngrams"]))
    torch.testing.assert_close(logits, loaded.model(batch).logits, rtol=1e-4, atol=1e-5)


def test_a_run_saved_before_nbsvm_existed_loads_without_it(tmp_path, one_thread):
    from rnnkit.train.checkpoint import save_checkpoint
    data = write_text_label_csv(tmp_path / "r.csv", _reviews(16))
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--nbsvm", "0", *TINY]) == 0
    for name in ("best", "last"):                                       # as an older rnnkit saved it
        path = run / "checkpoints" / f"{name}.safetensors"
        ck = load_checkpoint(path)
        del ck.meta["config"]["model"]["nbsvm"]
        save_checkpoint(path, ck)
    loaded = load_classifier(run)
    assert loaded.config.model.nbsvm == 0 and loaded.model.ngram is None   # not the default, 2


def test_without_scikit_learn_the_error_says_how_to_train_without_nbsvm(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.svm", None)              # as if the tasks extra were missing
    with pytest.raises(ImportError, match=r"--nbsvm 0 trains the network alone\) needs sklearn: .*rnnkit\[tasks\]"):
        fit_nbsvm(["good", "bad"], ["pos", "neg"], ["neg", "pos"])
