"""The tagger's input features: character-level word features (shapes, padding, the per-batch dedupe) and
word dropout (training only), plus each character model end to end through the CLI."""
from __future__ import annotations

import json

import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.tabular import TaggedSentence
from rnnkit.modules.char_words import CharWordFeatures
from rnnkit.tasks.tag.config import TagModelConfig
from rnnkit.tasks.tag.data import fit_tag_encoder, make_tag_batches, rare_word_ids
from rnnkit.tasks.tag.model import Tagger

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = [[3, 4, 5], [6, 2], [3, 4, 5], [7]]  # character ids of four words; the first and third are equal


def _chars(words: list[list[int]], B: int, T: int, W: int) -> torch.Tensor:
    """(B, T, W) ids: the words laid out row-major, the rest padding."""
    out = torch.zeros(B, T, W, dtype=torch.int64)
    for i, w in enumerate(words):
        out[i // T, i % T, : len(w)] = torch.tensor(w)
    return out


@pytest.mark.parametrize("model", ["rnn", "cnn"])
def test_char_features_shape_padding_and_dedupe(model):
    torch.manual_seed(0)
    feats = CharWordFeatures(10, 3, model, embedding=5).eval()
    x = _chars(WORDS, B=2, T=3, W=4)                                   # 4 words, 2 padding tokens
    out = feats(x)
    assert out.shape == (2, 3, 6) and feats.out_size == 6
    assert torch.count_nonzero(out[1, 1:]) == 0                        # padding tokens: zero features
    flat = out.reshape(6, 6)
    torch.testing.assert_close(flat[0], flat[2])                       # the same word, the same features
    for i, w in enumerate(WORDS):                                      # each word alone, in a wider pad
        alone = feats(_chars([w], B=1, T=1, W=7))[0, 0]
        torch.testing.assert_close(flat[i], alone, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(flat[0], flat[1])


@pytest.mark.parametrize("model", ["rnn", "cnn"])
def test_char_features_gradients_reach_every_real_character(model):
    torch.manual_seed(0)
    feats = CharWordFeatures(10, 3, model, embedding=5)
    feats(_chars(WORDS, B=2, T=3, W=4)).sum().backward()
    grad = feats.embed.weight.grad
    used = sorted({c for w in WORDS for c in w})
    assert torch.count_nonzero(grad[0]) == 0                           # the padding character never learns
    assert all(torch.count_nonzero(grad[c]) > 0 for c in used)
    assert all(torch.count_nonzero(grad[c]) == 0 for c in range(1, 10) if c not in used)


def test_char_features_reject_unknown_model():
    with pytest.raises(ValueError, match="char model must be one of rnn, cnn"):
        CharWordFeatures(10, 3, "transformer")


def _tagger(word_dropout: float, rare_word_dropout: float = 0.0) -> tuple[Tagger, dict]:
    sents = [TaggedSentence(["Anna", "visited", "Paris", "."], ["B-PER", "O", "B-LOC", "O"], "s0"),
             TaggedSentence(["Peter", "saw", "Oslo"], ["B-PER", "O", "B-LOC"], "s1")]
    enc = fit_tag_encoder(sents, "bio", 1)
    torch.manual_seed(0)
    model = Tagger(TagModelConfig(hidden=4, embedding=4, char_hidden=2, dropout=0.0, word_dropout=word_dropout,
                                  rare_word_dropout=rare_word_dropout), enc)
    return model, make_tag_batches(enc, sents, 2)[0]


def test_word_dropout_only_in_training():
    dropped, batch = _tagger(word_dropout=0.9)
    plain, _ = _tagger(word_dropout=0.0)
    plain.load_state_dict(dropped.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(dropped.eval().emissions(batch), plain.eval().emissions(batch))
        torch.manual_seed(1)
        changed = dropped.train().emissions(batch)
    assert not torch.allclose(changed, plain.emissions(batch))      # in training, words do become <unk>


def test_rare_word_dropout_hits_only_words_seen_once_and_only_in_training():
    sents = [TaggedSentence(["Anna", "saw", "Anna", "in", "Oslo"], ["B-PER", "O", "B-PER", "O", "B-LOC"], "s0")]
    enc = fit_tag_encoder(sents, "bio", 1)
    rare = rare_word_ids(enc, sents)
    assert sorted(enc.words.tokens[i] for i in rare) == ["in", "oslo", "saw"]
    model, batch = _tagger(word_dropout=0.0, rare_word_dropout=0.99)
    model.mark_rare([int(batch["words"][0, 1])])                       # one word of the batch is rare
    model.train()
    torch.manual_seed(0)
    words = model.drop_words(batch["words"])
    changed = words != batch["words"]
    assert changed.sum() == (batch["words"] == batch["words"][0, 1]).sum()
    assert (words[changed] == model.unk_id).all()
    assert torch.equal(model.eval().drop_words(batch["words"]), batch["words"])


def test_dropped_words_get_the_id_of_words_never_seen_in_training():
    sents = [TaggedSentence(["Anna", "visited", "Paris", "."], ["B-PER", "O", "B-LOC", "O"], "s0")]
    enc = fit_tag_encoder(sents, "bio", 1)
    model = Tagger(TagModelConfig(hidden=4, embedding=4, char_hidden=0, word_dropout=0.99), enc).train()
    unseen = make_tag_batches(enc, [["Zanzibar", "visited", "Quux"]], 1, labelled=False)[0]["words"]
    torch.manual_seed(0)
    dropped = model.drop_words(make_tag_batches(enc, sents, 1)[0]["words"])
    assert int(unseen[0, 0]) == int(unseen[0, 2]) == model.unk_id      # what evaluation meets ...
    assert (dropped == model.unk_id).sum() >= 3                         # ... is what training drops to


def test_word_dropout_replaces_words_by_unk_not_padding():
    model, batch = _tagger(word_dropout=0.5)
    seen = []
    model.words.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    model.train()
    torch.manual_seed(0)
    model.emissions(batch)
    words, given = seen[0], batch["words"]
    changed = words != given
    assert changed.any() and (words[changed] == model.unk_id).all()  # <unk>: the id unseen words get
    assert (words[given == 0] == 0).all()                             # padding stays padding


def _conll(path, sents):
    path.write_text("".join("".join(f"{t} {g}\n" for t, g in s) + "\n" for s in sents), encoding="utf-8")


@pytest.mark.parametrize("char_model", ["rnn", "cnn"])
def test_cli_trains_each_char_model(tmp_path, char_model):
    sents = [[("Anna", "B-PER"), ("visited", "O"), ("Paris", "B-LOC")], [("Oslo", "B-LOC"), ("rains", "O")]] * 6
    data = tmp_path / "train.conll"
    _conll(data, sents)
    run = tmp_path / "run"
    assert main(["train", "tag", "--data", str(data), "--out", str(run), "--char-model", char_model,
                 "--epochs", "1", "--hidden", "4", "--embedding", "4", "--char-hidden", "2", "--batch-size", "4",
                 "--progress", "none", "--tensorboard", "off"]) == 0
    result = json.loads((run / "result.json").read_text())
    assert 0 <= result["test_f1"] <= 100
    assert main(["predict", str(run), "Anna visited Oslo", "--json"]) == 0


def test_runs_saved_before_char_model_load_with_the_recurrent_one():
    from rnnkit.tasks.tag.pipeline import upgrade_config
    old = {"model": {"char_hidden": 25, "hidden": 8}, "data": {}, "train": {}}
    assert upgrade_config(old)["model"]["char_model"] == "rnn"
    new = {"model": {"char_hidden": 25, "char_model": "cnn"}}
    assert upgrade_config(new)["model"]["char_model"] == "cnn"
