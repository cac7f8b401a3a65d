"""Classifier regularisation (embedding dropout, locked dropout, weight drop), k-fold splits and
cross-validated comparison, and encoders fitted on the training split only."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.config import ConfigError
from rnnkit.modules.embedding_dropout import DroppedEmbedding
from rnnkit.modules.encoders import RecurrentEncoder
from rnnkit.tasks.classify.config import ClassifyDataConfig, ClassifyModelConfig
from rnnkit.data.readers import EncodingError
from rnnkit.tasks.classify.data import fold_indices, read_examples
from rnnkit.tasks.classify.model import SequenceClassifier
from rnnkit.tasks.classify.pipeline import fit_encoder, load_splits
from tiny_files import CLASSIFY_TINY, tiny_reviews, write_text_label_csv

TINY = CLASSIFY_TINY


def test_embedding_dropout_drops_whole_words_and_is_off_in_eval(one_thread):
    torch.manual_seed(0)
    emb = DroppedEmbedding(50, 6, p=0.5).train()
    ids = torch.tensor([[5, 7, 5, 9, 7, 5]])
    out = emb(ids)                                                     # (1, 6, 6)
    zero = (out == 0).all(-1)[0]
    # every occurrence of a word shares its fate: dropped everywhere or nowhere
    for w in (5, 7, 9):
        assert zero[ids[0] == w].unique().numel() == 1
    kept = ~zero
    torch.testing.assert_close(out[0, kept], emb.weight[ids[0, kept]] * 2.0)  # scaled by 1/(1-p)
    torch.testing.assert_close(emb.eval()(ids), emb.weight[ids])
    with pytest.raises(ValueError, match="embedding dropout"):
        DroppedEmbedding(5, 2, p=1.0)


def test_classifier_passes_locked_dropout_and_weight_drop_to_its_layer(one_thread):
    cfg = ClassifyModelConfig(hidden=4, embedding=4, locked_dropout=0.25, weight_drop=0.4, embed_dropout=0.1,
                              nbsvm=0)
    model = SequenceClassifier(cfg, "text", 20, 2)
    reg = model.encoder.rnn.regularization
    assert (reg.variational_dropout, reg.dropconnect) == (0.25, 0.4)
    assert model.embed.p == 0.1
    batch = {"inputs": torch.randint(1, 20, (3, 5)), "lengths": torch.tensor([5, 3, 1]),
             "targets": torch.tensor([0, 1, 0])}
    model.eval()
    a, b = model(batch).logits, model(batch).logits
    torch.testing.assert_close(a, b)                                   # no dropout in evaluation
    model.train()
    torch.manual_seed(1)
    model(batch).loss.backward()
    assert model.encoder.rnn.cells[0].weight_hh.grad is not None
    with pytest.raises(ConfigError, match="weight_drop must be in"):
        ClassifyModelConfig(weight_drop=1.0)
    with pytest.raises(ConfigError, match="no hidden-to-hidden weight"):
        RecurrentEncoder(4, "mingru", 4, 1, False, 0.0, weight_drop=0.3)


def test_folds_partition_the_examples_and_never_overlap():
    labels = ["a"] * 15 + ["b"] * 8
    tests = []
    for fold in range(5):
        tr, va, te = fold_indices(labels, 5, fold, 0.1, seed=3)
        assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
        assert sorted(tr + va + te) == list(range(23)) and len(va) >= 1
        tests += te
    assert sorted(tests) == list(range(23))
    assert fold_indices(labels, 5, 2, 0.1, seed=3) == fold_indices(labels, 5, 2, 0.1, seed=3)   # fixed by the seed
    assert fold_indices(labels, 5, 2, 0.1, seed=3)[2] != fold_indices(labels, 5, 2, 0.1, seed=4)[2]
    with pytest.raises(ConfigError, match="fold must be in 0 .. 4"):
        ClassifyDataConfig(folds=5, fold=5)
    with pytest.raises(ConfigError, match="folds must be 0"):
        ClassifyDataConfig(folds=1)


def test_folds_are_stratified_by_class():
    # 70 / 30 with the minority class listed last: every test fold keeps the 7:3 share, sizes differ by <= 1
    labels = ["pos"] * 70 + ["neg"] * 30
    sizes = []
    for fold in range(10):
        _, _, te = fold_indices(labels, 10, fold, 0.1, seed=0)
        sizes.append(len(te))
        assert sum(labels[i] == "neg" for i in te) == 3
    assert sizes == [10] * 10
    uneven = ["x"] * 13 + ["y"] * 9 + ["z"] * 5
    counts = [len(fold_indices(uneven, 4, f, 0.0, seed=1)[2]) for f in range(4)]
    assert max(counts) - min(counts) <= 1
    for lab, total in (("x", 13), ("y", 9), ("z", 5)):
        per = [sum(uneven[i] == lab for i in fold_indices(uneven, 4, f, 0.0, seed=1)[2]) for f in range(4)]
        assert sum(per) == total and max(per) - min(per) <= 1


def _reviews(n=40):
    return tiny_reviews(n, ["good film", "great food", "lovely room", "really good", "great fun"],
                        ["bad film", "awful food", "poor room", "really bad", "awful fun"], marks=("w", "w"))


def test_vocabulary_is_fitted_on_the_training_split_only(tmp_path):
    # each example has its own word w<i>: a word of a validation or test example must not be in the vocabulary
    data = tmp_path / "r.csv"
    write_text_label_csv(data, _reviews())
    for extra in ({}, {"folds": 4, "fold": 2}):
        cfg = ClassifyDataConfig(data=str(data), val_fraction=0.2, **extra)
        s = load_splits(cfg, seed=0)
        enc = fit_encoder(s.train, "word", True, 1, 0, 0)
        words = set(enc.vocab.tokens)
        held = {t.split()[-1] for t in s.val.inputs + s.test.inputs}
        seen = {t.split()[-1] for t in s.train.inputs}
        assert seen <= words and not held & words


def test_compare_classify_cross_validates_over_folds(tmp_path, capsys):
    data = tmp_path / "r.csv"
    write_text_label_csv(data, _reviews(20))
    out = tmp_path / "cv"
    assert main(["compare", "classify", "--data", str(data), "--cells", "gru", "--models", "", "--folds", "2",
                 "--out", str(out), "--epochs", "1", "--set", "model.hidden=4", "--set", "model.embedding=4",
                 "--set", "train.batch_size=8", "--set", "train.progress=none",
                 "--set", "train.tensorboard=off"]) == 0
    table = capsys.readouterr().out
    assert "accuracy_std" in table and "tfidf+logreg" in table and "accuracy_folds" in table
    assert "fold 2/2 accuracy: gru " in table                          # every fold's accuracy as it finishes
    saved = json.loads((out / "compare.json").read_text())
    assert saved["folds"] == 2 and len(saved["per_fold"]) == 2
    for model in ("gru", "tfidf+logreg", "nbsvm"):
        mean = next(r for r in saved["mean"] if r["model"] == model)["accuracy"]
        folds = [next(r for r in f if r["model"] == model)["accuracy"] for f in saved["per_fold"]]
        assert mean == pytest.approx(np.mean(folds))
        shown = next(r for r in saved["mean"] if r["model"] == model)["accuracy_folds"]
        assert shown == " ".join(f"{a:.3f}" for a in folds)
    sizes = [json.loads((out / f"fold-{i}" / "gru" / "result.json").read_text())["test"] for i in range(2)]
    assert sum(sizes) == 20                                            # the test folds cover every example once


def test_folds_on_a_task_without_cross_validation_is_an_error(capsys):
    assert main(["compare", "tag", "--folds", "3"]) != 0
    assert "no cross-validation" in capsys.readouterr().err


@pytest.mark.parametrize("units", ["bpe", "unigram"])
def test_subword_units_give_unseen_words_known_pieces(tmp_path, units, capsys):
    data = tmp_path / "r.csv"
    write_text_label_csv(data, _reviews(24))
    run = tmp_path / units
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--tokenizer", units,
                 "--max-vocab", "60", *TINY]) == 0
    from rnnkit.tasks.classify.pipeline import load_classifier
    enc = load_classifier(run).encoder                                  # the subword table saved with the run
    ids = enc.encode_input("goodness filmic")                          # neither word is in the training texts
    assert enc.tokenizer == units and len(ids) >= 2 and (ids != enc.vocab.unk_id).any()
    word = fit_encoder(load_splits(ClassifyDataConfig(data=str(data)), 0).train, "word", True, 1, 0, 0)
    assert (word.encode_input("goodness filmic") == word.vocab.unk_id).all()
    capsys.readouterr()
    assert main(["predict", str(run), "goodness filmic", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] in ("pos", "neg")


def test_a_cp1252_file_reads_with_its_encoding_and_fails_clearly_without(tmp_path):
    # MR's files are cp1252: 0x85 is "…" and 0xe9 "é" there, invalid UTF-8 (and 0x85 a line break in Latin-1)
    data = tmp_path / "mr.csv"
    data.write_bytes(b"text,label\ngood film,pos\nun caf\xe9 tr\xe8s bon \x85 great,pos\nbad film,neg\n")
    with pytest.raises(EncodingError, match=r"mr.csv: not valid UTF-8 at byte offset 31 \(byte 0xe9\) on line 3.*"
                                            r"--encoding cp1252"):
        read_examples(data, "text", "label", "auto")
    ex = read_examples(data, "text", "label", "auto", encoding="cp1252")
    assert ex.inputs == ["good film", "un café très bon … great", "bad film"] and ex.labels == ["pos", "pos", "neg"]
    assert ex.wheres[2].startswith(f"{data}:4")
    assert ClassifyDataConfig(encoding="cp1252").encoding == "cp1252"
    with pytest.raises(ConfigError, match="encoding='cp9999' is not a text encoding"):
        ClassifyDataConfig(encoding="cp9999")
