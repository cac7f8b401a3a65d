"""ULMFiT for the classifier: language-model pretraining of its encoder (training texts and --unlabelled),
starting from an `rnnkit train lm` run (--init-from), and the fine-tuning settings."""
from __future__ import annotations

import json
import math

import pytest
import torch

from rnnkit.cli import main
from rnnkit.config import ConfigError
from rnnkit.modules.encoder_lm import EncoderLM
from rnnkit.modules.encoders import RecurrentEncoder
from rnnkit.tasks.classify.config import ClassifyPretrainConfig
from rnnkit.tasks.classify.pipeline import load_classifier
from rnnkit.train import load_checkpoint
from tiny_files import write_text_label_csv

TINY = ["--epochs", "2", "--hidden", "8", "--embedding", "8", "--batch-size", "8", "--progress", "none",
        "--tensorboard", "off"]
GOOD = ["a fine warm film", "great acting and a good story", "good fun all the way", "warm and great"]
BAD = ["a dull cold film", "bad acting and a poor story", "poor and dull all the way", "cold and bad"]


def write_csv(path, n=6):
    one_round = [(t, "pos") for t in GOOD] + [(t, "neg") for t in BAD]
    return write_text_label_csv(path, one_round * n)


def test_encoder_lm_counts_both_directions_and_refuses_leaky_stacks(one_thread):
    torch.manual_seed(0)
    enc = RecurrentEncoder(4, "lstm", 5, 1, True, 0.0)
    lm = EncoderLM(torch.nn.Embedding(11, 4), enc, 11)
    batch = {"inputs": torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]]), "lengths": torch.tensor([4, 2])}
    out = lm(batch)
    assert out.n == 2 * ((4 - 1) + (2 - 1))  # each direction predicts every token but its first
    out.loss.backward()
    assert lm.heads[1].proj.weight.grad.abs().sum() > 0 and enc.rnn.cells[1].weight_ih.grad.abs().sum() > 0
    # a token past a sequence's end is never a target: padding changes nothing
    longer = {"inputs": torch.tensor([[3, 4, 5, 6], [7, 8, 9, 9]]), "lengths": torch.tensor([4, 2])}
    torch.testing.assert_close(lm(longer).loss, lm(batch).loss)
    # a large vocabulary gets torch's adaptive softmax, a proper distribution over all 6000 tokens
    big = EncoderLM(torch.nn.Embedding(6000, 4), RecurrentEncoder(4, "lstm", 5, 1, True, 0.0), 6000)
    assert isinstance(big.heads[0], torch.nn.AdaptiveLogSoftmaxWithLoss)
    torch.testing.assert_close(big.heads[1].log_prob(torch.randn(3, 5)).exp().sum(-1), torch.ones(3))
    out = big({"inputs": torch.randint(0, 6000, (3, 7)), "lengths": torch.tensor([7, 5, 2])})
    assert out.n == 2 * (6 + 4 + 1) and math.isfinite(out.loss.item())
    with pytest.raises(ConfigError, match="needs layers=1"):
        EncoderLM(torch.nn.Embedding(11, 4), RecurrentEncoder(4, "lstm", 5, 2, True, 0.0), 11)


def test_concat_pooling_is_last_max_and_mean_side_by_side():
    from rnnkit.modules.encoders import Pooling
    h = torch.randn(2, 5, 6)                                                   # (B, T, 2 directions x 3)
    lengths = torch.tensor([5, 3])
    parts = [Pooling(m, 6, 2)(h, lengths) for m in ("last", "max", "mean")]
    concat = Pooling("concat", 6, 2)
    assert concat.out_size == 18
    torch.testing.assert_close(concat(h, lengths), torch.cat(parts, dim=-1))
    torch.testing.assert_close(parts[2][1], h[1, :3].mean(0))                  # padding left out


def test_pretrain_then_fine_tune_end_to_end(tmp_path, one_thread):
    data = write_csv(tmp_path / "reviews.csv")
    extra = tmp_path / "more.txt"
    extra.write_text("a splendid film\n\nsplendid and warm\n", encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--pretrain-epochs", "2",
                 "--unlabelled", str(extra), "--layer-lr-decay", "2.6", "--unfreeze", "gradual",
                 "--schedule", "slanted", "--warmup-steps", "0", *TINY]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["pretrain_texts"] == 48 * 8 // 10 + 2 and result["pretrain_steps"] > 0
    loaded = load_classifier(run)
    assert "splendid" in loaded.encoder.vocab.tokens  # the unlabelled text's words joined the vocabulary
    pre = load_checkpoint(run / "pretrain" / "checkpoints" / "best.safetensors").group("model")
    assert set(pre) >= {"embed.weight", "encoder.rnn.cells.0.weight_ih", "heads.1.proj.weight"}
    # fine-tuning started from the best pretrained weights: 2 epochs of gradual unfreezing over 3 groups
    # (embedding, BiLSTM, head) never open the embedding, so it is the pretrained one; the BiLSTM trained
    # in the second epoch
    last = load_checkpoint(run / "checkpoints" / "last.safetensors").group("model")
    torch.testing.assert_close(loaded.model.embed.weight, pre["embed.weight"])
    torch.testing.assert_close(last["embed.weight"], pre["embed.weight"])
    assert not torch.equal(last["encoder.rnn.cells.0.weight_ih"], pre["encoder.rnn.cells.0.weight_ih"])
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--resume", "--pretrain-epochs", "2",
                 "--unlabelled", str(extra), "--layer-lr-decay", "2.6", "--unfreeze", "gradual",
                 "--schedule", "slanted", "--warmup-steps", "0", *TINY[:1], "3", *TINY[2:]]) == 0


def fails(capsys, argv: list[str]) -> str:
    """The error `rnnkit` prints for ``argv`` (it exits non-zero)."""
    capsys.readouterr()
    assert main(argv) != 0
    return capsys.readouterr().err


def test_unlabelled_needs_pretraining_and_a_readable_file(tmp_path, one_thread, capsys):
    with pytest.raises(ConfigError, match="--pretrain-epochs"):
        ClassifyPretrainConfig(unlabelled="x.txt")
    data = write_csv(tmp_path / "reviews.csv")
    assert "missing.txt: no such file" in fails(capsys, ["train", "classify", "--data", str(data), "--out",
                                                         str(tmp_path / "r"), "--pretrain-epochs", "1", "--unlabelled",
                                                         str(tmp_path / "missing.txt"), *TINY])
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"fine\ncaf\xe9\n")
    assert "latin.txt:2: not UTF-8" in fails(capsys, ["train", "classify", "--data", str(data), "--out",
                                                      str(tmp_path / "r"), "--pretrain-epochs", "1", "--unlabelled",
                                                      str(latin), *TINY])


def lm_run(tmp_path, tokenizer="char"):
    text = tmp_path / "text.txt"
    text.write_text(" ".join(GOOD + BAD) * 20, encoding="utf-8")
    run = tmp_path / f"lm-{tokenizer}"
    assert main(["train", "lm", "--data", str(text), "--out", str(run), "--tokenizer", tokenizer, "--hidden", "8",
                 "--embedding", "8", "--layers", "1", "--max-steps", "3", "--bptt", "8", "--batch-size", "4", "--progress", "none",
                 "--tensorboard", "off"]) == 0
    return run


def test_init_from_an_lm_run_takes_its_vocabulary_and_layers(tmp_path, one_thread):
    lm = lm_run(tmp_path)
    data = write_csv(tmp_path / "reviews.csv")
    run = tmp_path / "clf"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--init-from", str(lm),
                 "--epochs", "1", "--batch-size", "8", "--progress", "none", "--tensorboard", "off",
                 "--unfreeze", "gradual"]) == 0  # one epoch of gradual unfreezing trains only the head
    loaded = load_classifier(run)
    cfg = loaded.config
    assert (cfg.model.hidden, cfg.model.embedding, cfg.model.bidirectional, cfg.data.tokenizer) == (8, 8, False, "char")
    weights = load_checkpoint(lm / "checkpoints" / "best.safetensors").group("model")
    torch.testing.assert_close(loaded.model.embed.weight, weights["embed.weight"])
    torch.testing.assert_close(loaded.model.encoder.rnn.cells[0].weight_hh, weights["rnn.cells.0.weight_hh"])


def test_init_from_with_another_vocabulary_is_a_clear_error(tmp_path, one_thread, capsys):
    lm = lm_run(tmp_path)
    data = write_csv(tmp_path / "reviews.csv")
    train = ["train", "classify", "--data", str(data), "--out", str(tmp_path / "clf"), "--init-from"]
    err = fails(capsys, train + [str(lm), "--tokenizer", "word", "--epochs", "1"])
    assert "--tokenizer 'word' (the run has 'char')" in err and "vocabulary" in err
    err = fails(capsys, train + [str(lm), "--hidden", "16", "--max-vocab", "100", "--epochs", "1"])
    assert "--hidden 16 (the run has 8)" in err and "--max-vocab (the vocabulary is the run's)" in err
    clf = tmp_path / "clf2"
    assert main(["train", "classify", "--data", str(data), "--out", str(clf), *TINY]) == 0
    assert "not a language-model run" in fails(capsys, train + [str(clf), "--epochs", "1"])


def test_unlabelled_texts_are_split_at_newlines_only(tmp_path):
    from rnnkit.tasks.classify.data import read_unlabelled
    p = tmp_path / "more.txt"
    p.write_text("a review\u2028with a break inside\n\nanother\r\n", encoding="utf-8")
    assert read_unlabelled(p) == ["a review\u2028with a break inside", "another"]
