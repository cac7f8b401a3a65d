"""Pretrained word vectors for the tagger (--embeddings): the rows they start, the file's words in the
vocabulary, frozen rows that stay fixed, runs that no longer need the file, and the errors."""
from __future__ import annotations

import json

import pytest
import torch

from rnnkit.cli import main
from rnnkit.config import ConfigError
from rnnkit.data.tabular import TaggedSentence
from rnnkit.data.word_vectors import read_word_vectors
from rnnkit.tasks.tag.config import TagModelConfig
from rnnkit.tasks.tag.data import fit_tag_encoder, make_tag_batches
from rnnkit.tasks.tag.model import Tagger
from rnnkit.tasks.tag.vectors import start_from_vectors

pytestmark = pytest.mark.usefixtures("one_thread")

SENTS = [TaggedSentence(["Anna", "visited", "Paris", "."], ["B-PER", "O", "B-LOC", "O"], "s0"),
         TaggedSentence(["Peter", "saw", "Oslo"], ["B-PER", "O", "B-LOC"], "s1")]
VECTORS = {"</s>": [9, 9, 9, 9], "visited": [1, 0, 0, 0], "Paris": [0, 1, 0, 0], "oslo": [0, 0, 1, 0],
           "Lima": [0, 0, 0, 1], "saw": [0.5, 0.5, 0, 0]}


def _vec_file(path, header=True):
    rows = [f"{w} " + " ".join(map(str, v)) for w, v in VECTORS.items()]
    path.write_text("\n".join(([f"{len(rows)} 4"] if header else []) + rows) + "\n", encoding="utf-8")
    return path


def _started(tmp_path, vocab="train", freeze=False):
    cfg = TagModelConfig(hidden=4, embedding=4, char_hidden=0, dropout=0.0, word_dropout=0.0,
                         embeddings=str(_vec_file(tmp_path / "v.vec")), embeddings_vocab=vocab,
                         freeze_embeddings=freeze)
    vectors = read_word_vectors(cfg.embeddings, None if vocab == "file" else {t for s in SENTS for t in s.tokens})
    enc = fit_tag_encoder(SENTS, "bio", 1, vectors.words if vocab == "file" else ())
    torch.manual_seed(0)
    model = Tagger(cfg, enc)
    return model, enc, start_from_vectors(model, enc, vectors)


def test_vectors_start_the_rows_of_their_words_lower_cased_match(tmp_path):
    model, enc, start = _started(tmp_path)
    w = model.words.weight
    for word, vec in (("visited", [1, 0, 0, 0]), ("paris", [0, 1, 0, 0]), ("oslo", [0, 0, 1, 0])):
        torch.testing.assert_close(w[enc.words.index[word]], torch.tensor(vec, dtype=torch.float32))
    assert "lima" not in enc.words.index                              # train vocabulary: training words only
    assert (start.found, start.words) == (4, 7)                       # visited paris oslo saw, of 7 words
    assert not torch.equal(w[enc.words.eos_id], torch.full((4,), 9.0))  # the file's </s> starts no special
    assert torch.count_nonzero(w[enc.words.pad_id]) == 0
    assert w[enc.words.index["anna"]].abs().max() < 3.0               # random rows at the vectors' scale


def test_file_vocabulary_adds_the_files_words(tmp_path):
    model, enc, start = _started(tmp_path, vocab="file")
    lima = enc.words.index["lima"]
    assert lima > enc.words.index["visited"]                          # after the training words
    torch.testing.assert_close(model.words.weight[lima], torch.tensor([0.0, 0, 0, 1]))
    assert start.found == 5 and "</s>" not in enc.words.tokens[4:]
    batch = make_tag_batches(enc, [["Peter", "saw", "Lima"]], 1, labelled=False)[0]
    assert int(batch["words"][0, 2]) == lima                          # not <unk>


def test_frozen_vectors_stay_fixed_while_the_rest_learns(tmp_path):
    model, enc, _ = _started(tmp_path, freeze=True)
    batch = make_tag_batches(enc, SENTS, 2)[0]
    ids = torch.tensor([[enc.words.index["paris"], enc.words.index["anna"]]])
    before = model.embed_words(ids).detach().clone()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(batch).loss.backward()
        opt.step()
    after = model.embed_words(ids).detach()
    torch.testing.assert_close(after[0, 0], before[0, 0])             # pretrained: fixed
    assert not torch.allclose(after[0, 1], before[0, 1])              # no vector: learns


def test_cli_trains_with_vectors_and_the_run_needs_no_file(tmp_path, capsys):
    sents = [[("Anna", "B-PER"), ("visited", "O"), ("Paris", "B-LOC")], [("Oslo", "B-LOC"), ("rains", "O")]] * 6
    data = tmp_path / "train.conll"
    data.write_text("".join("".join(f"{t} {g}\n" for t, g in s) + "\n" for s in sents), encoding="utf-8")
    vec = _vec_file(tmp_path / "v.vec", header=False)
    run = tmp_path / "run"
    assert main(["train", "tag", "--data", str(data), "--out", str(run), "--embeddings", str(vec),
                 "--embeddings-vocab", "file", "--freeze-embeddings", "--epochs", "1", "--hidden", "4",
                 "--char-hidden", "2", "--batch-size", "4", "--progress", "none", "--tensorboard", "off"]) == 0
    assert "pretrained vectors" in capsys.readouterr().out
    result = json.loads((run / "result.json").read_text())
    assert result["pretrained"]["found"] == 5                          # visited paris oslo lima saw
    assert "embedding: 4\n" in (run / "config.yaml").read_text()     # no --embedding: the file's size
    vec.unlink()                                                        # the run holds the weights
    assert main(["predict", str(run), "Anna visited Lima", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]["tags"]) == 3
    assert main(["evaluate", str(run), "--data", str(data)]) == 0


def test_cli_errors_name_the_file_and_the_dimension(tmp_path, capsys):
    data = tmp_path / "train.conll"
    data.write_text("Anna B-PER\nsaw O\n\nOslo B-LOC\n\n" * 4, encoding="utf-8")
    vec = _vec_file(tmp_path / "v.vec")
    base = ["train", "tag", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--hidden", "4",
            "--char-hidden", "0", "--progress", "none", "--tensorboard", "off"]
    assert main(base + ["--embeddings", str(vec), "--embedding", "8"]) == 2
    err = capsys.readouterr().err
    assert "--embedding 8 but" in err and "holds 4-dimensional vectors: give --embedding 4" in err
    assert main(base + ["--embeddings", str(tmp_path / "gone.vec")]) == 2
    assert "gone.vec: no such word-vector file" in capsys.readouterr().err


def test_vector_options_need_a_file():
    with pytest.raises(ConfigError, match="freeze_embeddings=True needs a vector file"):
        TagModelConfig(freeze_embeddings=True)
    with pytest.raises(ConfigError, match="embeddings_vocab='file' needs a vector file"):
        TagModelConfig(embeddings_vocab="file")
