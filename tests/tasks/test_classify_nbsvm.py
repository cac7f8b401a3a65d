"""NBSVM (Wang & Manning 2012) as a baseline row and as the classifier's ``--nbsvm N`` / ``--nbsvm-chars M``
experts: ratios and character n-grams checked by hand, the tables fitted on the training split only, the mixing
weights and class bias chosen on validation and saved, runs that predict from raw text and export, and runs saved
before the character model and the bias that load as they were."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.config import ConfigError
from rnnkit.tasks.baselines.nbsvm import (CHAR_MARK, binary_matrix, char_ngrams, fit_nbsvm, nb_ratios, nbsvm_baseline,
                                          text_ngrams, word_ngrams)
from rnnkit.tasks.classify.config import ClassifyDataConfig, ClassifyModelConfig, ClassifyRunConfig
from rnnkit.tasks.classify.data import fit_encoder
from rnnkit.tasks.classify.model import SequenceClassifier
from rnnkit.tasks.classify.ngram_mix import RIDGE, choose_mix, expert_logits, fit_ngram_experts, table_rows
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


def test_character_ngrams_by_hand_and_apart_from_the_word_ngrams():
    assert char_ngrams(["ab"], 3) == ["\t a", "\tab", "\tb ", "\t ab", "\tab "]
    assert text_ngrams("A b", 1, chars=2) == ["a", "b", "\t a", "\ta ", "\t b", "\tb "]
    assert text_ngrams("go", 0, chars=2) == [CHAR_MARK + g for g in (" g", "go", "o ")]
    assert "go" not in text_ngrams("good", 0, chars=3)                  # never the word "go"
    texts = ["unfunny film", "a funny film", "dull film", "a witty film"]
    labels = ["neg", "pos", "neg", "pos"]
    chars = fit_nbsvm(texts, labels, ["neg", "pos"], order=0, chars=4)
    assert all(g.startswith(CHAR_MARK) for g in chars.ngrams) and chars.chars == 4 and chars.order == 0
    assert chars.scores(["witty"]).argmax(1).tolist() == [1]            # an unseen text, scored through its pieces
    with pytest.raises(ValueError, match="order >= 1"):
        fit_nbsvm(texts, labels, ["neg", "pos"], order=0)


def test_the_compare_baselines_hold_an_nbsvm_row(tmp_path):
    pytest.importorskip("sklearn")
    data = write_text_label_csv(tmp_path / "r.csv", _reviews())
    rows = logreg_baseline(ClassifyRunConfig(data=ClassifyDataConfig(data=str(data))))
    assert [r["model"] for r in rows] == ["tfidf+logreg", "nbsvm"]
    assert 0.0 <= rows[1]["accuracy"] <= 1.0 and rows[1]["parameters"] > 0


def test_the_weights_and_the_bias_are_fitted_on_the_validation_loss():
    y = np.array([0, 1, 0, 1, 1, 0])
    sign = np.where(y == 1, 1.0, -1.0)
    noise = np.array([0.3, -0.2, 0.1, 0.4, -0.5, -0.1])
    net = np.stack([np.zeros(6), 8.0 * noise], 1)                       # an overconfident network, mostly wrong
    good = np.stack([np.zeros(6), sign], 1)[:, None]                    # (N, K=1, C): the n-gram scores are right
    best = choose_mix(net, good, y)
    assert best.mix[0] > 1.0 and best.val_accuracy == 1.0
    worse = choose_mix(net, -good, y)                                   # wrong scores are left out, not inverted
    assert worse.mix == [0.0] and worse.net_scale >= 0.0
    def objective(a, b, c):                                             # what the weights and bias minimise
        return _xent(a * net + b * good[:, 0] + np.asarray(c), y) + RIDGE * (a * a + b * b + sum(v * v for v in c))
    at = (best.net_scale, best.mix[0], best.bias)
    for da, db, dc in ((0.05, 0, 0), (0, 0.2, 0), (0, -0.2, 0), (0, 0, 0.1), (0, 0, -0.1)):
        moved = objective(at[0] + da, at[1] + db, [at[2][0], at[2][1] + dc])
        assert moved >= objective(*at) - 1e-9
    # two n-gram models: the useless one gets weight 0, the useful one a positive weight
    both = choose_mix(net, np.concatenate([-good, good], 1), y)
    assert both.mix[0] == 0.0 and both.mix[1] > 1.0
    # a lean towards one class that validation shows is corrected by the bias, not by the weights
    shifted = np.stack([np.zeros(6), sign + 3.0], 1)[:, None]           # every text scored positive
    lean = choose_mix(net, shifted, y)
    assert lean.bias[1] - lean.bias[0] < -1.0 and lean.val_accuracy == 1.0
    with pytest.raises(ConfigError, match="nbsvm"):
        ClassifyModelConfig(nbsvm=4)
    with pytest.raises(ConfigError, match="nbsvm_chars"):
        ClassifyModelConfig(nbsvm_chars=1)


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
    assert (enc.ngram_order, enc.ngram_chars) == (2, 5)                 # the character model is on by default
    assert not any("valonly" in g or "testonly" in g for g in enc.ngrams)
    assert not any(x in g for g in enc.ngrams for x in ("valo", "nly ", "testo"))   # nor their characters
    s = load_splits(loaded.config.data, loaded.config.train.seed)
    words = fit_nbsvm(s.train.inputs, s.train.labels, enc.labels, 2)  # the same tables, from the training split
    chars = fit_nbsvm(s.train.inputs, s.train.labels, enc.labels, 0, chars=5)
    assert enc.ngrams == words.ngrams + chars.ngrams
    Vw = len(words.ngrams)
    torch.testing.assert_close(loaded.model.ngram.table[1:Vw + 1, 0], torch.as_tensor(words.weights))
    torch.testing.assert_close(loaded.model.ngram.table[Vw + 1:, 1], torch.as_tensor(chars.weights))
    assert not loaded.model.ngram.table[Vw + 1:, 0].any() and not loaded.model.ngram.table[1:Vw + 1, 1].any()
    result = json.loads((run / "result.json").read_text())
    val_b = encode(enc, s.val, 8)
    again = choose_mix(*expert_logits(loaded.model, val_b))
    assert (result["nbsvm_net_scale"], *result["nbsvm_mix"], *result["nbsvm_bias"]) == pytest.approx(
        (again.net_scale, *again.mix, *again.bias), abs=1e-6)
    for name in ("best", "last"):                                       # written into both checkpoints
        saved = load_checkpoint(run / "checkpoints" / f"{name}.safetensors").tensors
        assert float(saved["model.net_scale"]) == pytest.approx(result["nbsvm_net_scale"])
        assert saved["model.ngram_mix"].tolist() == pytest.approx(result["nbsvm_mix"])
        assert saved["model.mix_bias"].tolist() == pytest.approx(result["nbsvm_bias"])
    assert {"test_accuracy_network", "test_accuracy_nbsvm", "test_accuracy_nbsvm_chars"} <= set(result)
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
    enc, tables = fit_ngram_experts(fit_encoder(train, "word", True, 1, 0, 0), train, 2, 3)
    model = SequenceClassifier(ClassifyModelConfig(hidden=4, embedding=4, nbsvm=2, nbsvm_chars=3), "text",
                               len(enc.vocab), 2, n_ngrams=len(enc.ngrams)).eval()
    for k, (rows, bias) in enumerate(table_rows(tables)):
        model.ngram.set_table(rows, bias, k)
    batch = {**enc.batches(["a good film", "poor room q1"], None, 2, sort=False)[0], "targets": torch.tensor([1, 0])}
    plain = model(batch)
    model.ngram_mix.copy_(torch.tensor([2.0, 3.0]))
    model.net_scale.fill_(0.5)
    model.mix_bias.copy_(torch.tensor([0.25, -0.25]))
    mixed = model(batch)
    scores = model.ngram(batch["ngrams"])                               # (B, K, C)
    np.testing.assert_allclose(scores[:, 0].numpy(), tables[0].scores(["a good film", "poor room q1"]), rtol=1e-5)
    np.testing.assert_allclose(scores[:, 1].numpy(), tables[1].scores(["a good film", "poor room q1"]), rtol=1e-5)
    torch.testing.assert_close(mixed.logits, 0.5 * plain.logits + 2.0 * scores[:, 0] + 3.0 * scores[:, 1]
                               + torch.tensor([0.25, -0.25]))
    torch.testing.assert_close(mixed.loss, plain.loss)                  # the network's loss alone
    assert batch["ngrams"].shape[0] == 2 and (batch["ngrams"][:, 0] > 0).all()
    assert enc.encode_ngrams("ÿÿÿ") == []                               # no word or character n-gram known


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


def test_a_run_saved_before_the_character_model_and_the_bias_loads_as_it_was(tmp_path, one_thread):
    from rnnkit.train.checkpoint import save_checkpoint
    data = write_text_label_csv(tmp_path / "r.csv", _reviews(16))
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--nbsvm-chars", "0", *TINY]) == 0
    fresh = load_classifier(run)
    batch = fresh.encoder.batches(["a good film", "poor room"], None, 2, sort=False)[0]
    with torch.no_grad():
        fresh.model.mix_bias.zero_()                                    # the old model had no bias
        expected = fresh.model(batch).logits
    for name in ("best", "last"):                                       # as the previous rnnkit saved it
        path = run / "checkpoints" / f"{name}.safetensors"
        ck = load_checkpoint(path)
        del ck.meta["config"]["model"]["nbsvm_chars"], ck.tensors["model.mix_bias"]
        ck.tensors["model.ngram_mix"] = ck.tensors["model.ngram_mix"].reshape(())
        ck.tensors["model.ngram.table"] = ck.tensors["model.ngram.table"][:, 0].contiguous()
        ck.tensors["model.ngram.bias"] = ck.tensors["model.ngram.bias"][0].contiguous()
        save_checkpoint(path, ck)
    old = load_classifier(run)
    assert old.config.model.nbsvm_chars == 0 and old.model.ngram.n_models == 1
    with torch.no_grad():
        torch.testing.assert_close(old.model(batch).logits, expected)


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
