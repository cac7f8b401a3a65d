"""Character features of words in the text classifier (``--char-hidden``): a word never seen in training keeps
its spelling, the feature table is fitted on the training split only, and runs load, predict and resume."""
from __future__ import annotations

import json

import pytest
import torch

from rnnkit.cli import main
from rnnkit.config import ConfigError
from rnnkit.tasks.classify.config import ClassifyDataConfig, ClassifyModelConfig
from rnnkit.tasks.classify.data import MAX_WORD_CHARS, fit_encoder
from rnnkit.tasks.classify.model import SequenceClassifier
from rnnkit.tasks.classify.pipeline import load_classifier, load_splits
from tiny_files import CLASSIFY_TINY, tiny_reviews, write_text_label_csv

TINY = CLASSIFY_TINY


def _reviews(n=24):
    return tiny_reviews(n, ["good film", "great food", "lovely room"], ["bad film", "awful food", "poor room"])


def test_unseen_words_get_character_features_not_one_unk_vector(tmp_path, one_thread):
    data = tmp_path / "r.csv"
    write_text_label_csv(data, _reviews())
    train = load_splits(ClassifyDataConfig(data=str(data)), 0).train
    enc = fit_encoder(train, "word", True, 1, 0, 0, char_words=True)
    assert set("goodfilmq") <= set(enc.chars.tokens)                   # the training words' characters
    batch = enc.batches(["goodish filmy", "awfulish roomy x"], None, 2, sort=False)[0]
    assert batch["chars"].shape == (2, 3, 8)                            # (B, T, W): 3 words, "awfulish" 8 chars
    assert (batch["inputs"][0, :2] == enc.vocab.unk_id).all()          # both words unseen: <unk> ids
    assert (batch["chars"][0, 2] == 0).all() and (batch["chars"][1, 2, 1:] == 0).all()  # padding / "x"
    assert enc.encode_chars("a" * 30)[0].__len__() == MAX_WORD_CHARS
    cfg = ClassifyModelConfig(hidden=4, embedding=4, char_hidden=3, nbsvm=0)
    model = SequenceClassifier(cfg, "text", len(enc.vocab), 2, n_chars=len(enc.chars)).eval()
    feats = model.chars(batch["chars"])                                 # (B, T, 6)
    assert feats.shape == (2, 3, 6)
    assert not torch.allclose(feats[0, 0], feats[0, 1])                 # two unknown words, two spellings
    assert model(batch).logits.shape == (2, 2)
    loss = model({**batch, "targets": torch.tensor([0, 1])}).loss
    loss.backward()
    assert model.chars.embed.weight.grad.abs().sum() > 0                # the features learn with the classifier
    assert any(p is model.chars.embed.weight for p in model.layer_groups()[0])
    with pytest.raises(ConfigError, match="char_model"):
        ClassifyModelConfig(char_model="gru")


def test_cli_char_features_train_predict_resume_and_fit_on_training_words_only(tmp_path, capsys, one_thread):
    data = tmp_path / "r.csv"
    write_text_label_csv(data, _reviews(30))
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--char-hidden", "3", *TINY]) == 0
    loaded = load_classifier(run)
    assert loaded.model.chars is not None and loaded.config.model.char_model == "cnn"
    s = load_splits(loaded.config.data, loaded.config.train.seed)
    train_chars = {c for t in s.train.inputs for c in t.lower() if c != " "}
    assert set(loaded.encoder.chars.tokens) - {"<pad>", "<unk>", "<s>", "</s>"} <= train_chars
    capsys.readouterr()
    assert main(["predict", str(run), "goodish filmy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] in ("pos", "neg")
    first = json.loads((run / "result.json").read_text())["steps"]
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--char-hidden", "3", *TINY[2:],
                 "--epochs", "2", "--resume"]) == 0
    assert json.loads((run / "result.json").read_text())["steps"] == 2 * first   # the second epoch only


@pytest.mark.parametrize("flags, message", [
    (["--tokenizer", "char"], "it needs --tokenizer word (got --tokenizer char)"),
    (["--pretrain-epochs", "1", "--layers", "1"], "exclude each other"),
])
def test_char_features_with_other_units_or_pretraining_are_an_error(tmp_path, capsys, flags, message):
    data = tmp_path / "r.csv"
    write_text_label_csv(data, _reviews(20))
    assert main(["train", "classify", "--data", str(data), "--out", str(tmp_path / "x"), "--char-hidden", "3",
                 *flags, *TINY]) != 0
    assert message in capsys.readouterr().err


def test_a_char_feature_run_exports_to_onnx_with_parity(tmp_path, one_thread):
    pytest.importorskip("onnxruntime", reason="ONNX export needs pip install 'rnnkit[export]'")
    pytest.importorskip("onnxscript", reason="ONNX export needs pip install 'rnnkit[export]'")
    from rnnkit.export import export_run
    from rnnkit.export.routes import run_exported

    data = tmp_path / "r.csv"
    write_text_label_csv(data, _reviews(16))
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--char-hidden", "2", *TINY]) == 0
    manifest = export_run(run, "onnx", tmp_path / "onnx")              # parity on a second batch shape inside
    assert [i["name"] for i in manifest["graphs"][0]["inputs"]] == ["inputs", "lengths", "chars", "ngrams"]
    loaded = load_classifier(run)
    batch = loaded.encoder.batches(["goodish filmy room", "awful"], None, 2, sort=False)[0]
    (logits,) = run_exported("onnx", tmp_path / "onnx" / "model.onnx",
                             (batch["inputs"], batch["lengths"], batch["chars"], batch["ngrams"]))
    torch.testing.assert_close(logits, loaded.model(batch).logits, rtol=1e-4, atol=1e-5)


def test_the_tune_space_searches_char_features_for_word_level_text_only():
    pytest.importorskip("optuna")
    from rnnkit.tasks import TASKS
    from rnnkit.tune.space import default_space

    words = default_space(TASKS["classify"], {}).specs
    assert words["model.char_hidden"]["choices"][0] == 0 and "concat" in words["model.pooling"]["choices"]
    assert {"model.embed_dropout", "model.locked_dropout"} <= set(words)
    assert "model.char_hidden" not in default_space(TASKS["classify"], {"data": {"tokenizer": "bpe"}}).specs
