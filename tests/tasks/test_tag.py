"""Tagging: CoNLL entity scores by hand, CRF against brute force, scheme conversion, the CLI end to end."""
from __future__ import annotations

import itertools
import json

import pytest
import torch

from rnnkit.cli import main
from rnnkit.modules.crf import CRF
from rnnkit.metrics import chunks, entity_scores, token_accuracy
from rnnkit.tasks.tag.data import convert, detect_scheme

TINY = ["--epochs", "2", "--hidden", "8", "--embedding", "8", "--char-hidden", "4", "--batch-size", "4",
        "--progress", "none", "--tensorboard", "off"]


def test_chunks_follow_conlleval():
    assert chunks(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"]) == \
        [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5), ("ORG", 5, 6)]  # I- after another type starts a chunk
    assert chunks(["I-PER", "I-PER", "O", "I-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]   # IOB1
    assert chunks(["S-PER", "B-ORG", "I-ORG", "E-ORG", "S-LOC"]) == [("PER", 0, 1), ("ORG", 1, 4), ("LOC", 4, 5)]


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-LOC"]]
    s = entity_scores(gold, pred)
    # gold: PER, LOC, ORG (3); predicted: PER, ORG, ORG, LOC (4); correct: PER, ORG (2)
    assert (s["gold"], s["found"], s["correct"]) == (3, 4, 2)
    assert s["precision"] == pytest.approx(50.0) and s["recall"] == pytest.approx(200 / 3)
    assert s["f1"] == pytest.approx(2 * 50 * (200 / 3) / (50 + 200 / 3))
    assert s["per_type"]["LOC"]["correct"] == 0
    assert token_accuracy(gold, pred) == pytest.approx(4 / 6)


def test_boundary_errors_are_not_partial_credit():
    s = entity_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])
    assert s["f1"] == 0.0


def _brute(crf, em, mask):
    L = int(mask.sum())
    K = em.shape[-1]
    scores = {}
    for path in itertools.product(range(K), repeat=L):
        tags = torch.tensor(list(path) + [0] * (em.shape[0] - L))[None]
        scores[path] = crf.score(em[None], tags, mask[None]).item()
    return scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crf_viterbi_and_partition_match_brute_force(seed):
    torch.manual_seed(seed)
    K, T = 3, 4
    crf = CRF(K)
    with torch.no_grad():
        for p in (crf.trans, crf.start, crf.end):
            p.normal_()
    em = torch.randn(3, T, K)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    paths = crf.decode(em, mask)
    logz = crf.log_partition(em, mask)
    for b in range(3):
        scores = _brute(crf, em[b], mask[b])
        assert tuple(paths[b]) == max(scores, key=scores.get)
        assert logz[b].item() == pytest.approx(torch.logsumexp(torch.tensor(list(scores.values())), 0).item(),
                                               abs=1e-5)


def test_crf_nll_is_a_proper_distribution():
    torch.manual_seed(0)
    crf = CRF(2)
    em = torch.randn(1, 3, 2)
    mask = torch.ones(1, 3, dtype=torch.bool)
    total = sum(torch.exp(-crf.nll(em, torch.tensor([p]), mask)).item() for p in itertools.product(range(2), repeat=3))
    assert total == pytest.approx(1.0, abs=1e-5)


def test_bio_constraints_forbid_o_then_inside():
    tags = ["O", "B-PER", "I-PER"]
    crf = CRF(3)
    crf.constrain(tags, "bio")
    em = torch.tensor([[[5.0, 0.0, 0.0], [0.0, 0.0, 10.0]]])   # emissions want O, I-PER
    assert crf.decode(em, torch.ones(1, 2, dtype=torch.bool))[0] != [0, 2]


def test_scheme_conversion_round_trip():
    bio = ["B-PER", "I-PER", "O", "B-LOC", "B-ORG", "I-ORG", "I-ORG"]
    bioes = convert(bio, "bioes")
    assert bioes == ["B-PER", "E-PER", "O", "S-LOC", "B-ORG", "I-ORG", "E-ORG"]
    assert convert(bioes, "bio") == bio
    assert convert(["I-PER", "O"], "bio") == ["B-PER", "O"]   # IOB1 in, BIO out


def _conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n")


def _ner_data(n=24):
    names, places = ["Anna", "Peter", "Maria"], ["Paris", "Oslo", "Lima"]
    out = []
    for i in range(n):
        out.append([(names[i % 3], "B-PER"), ("visited", "O"), (places[i % 3], "B-LOC"), (".", "O")])
    return out


@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_cli_train_evaluate_predict(tmp_path, capsys, output):
    data = tmp_path / "d"
    data.mkdir()
    _conll(data / "train.txt", _ner_data(24))
    _conll(data / "dev.txt", _ner_data(4))
    _conll(data / "test.txt", _ner_data(4))
    run = tmp_path / "run"
    assert main(["train", "tag", "--data", str(data), "--out", str(run), "--output", output, *TINY]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["scheme"] == "bio" and (result["train"], result["val"], result["test"]) == (24, 4, 4)
    assert 0 <= result["test_f1"] <= 100
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data / "test.txt")]) == 0
    assert "entity precision" in capsys.readouterr().out
    assert (run / "predictions-test.conll").read_text().splitlines()[0].startswith("Anna B-PER ")
    assert main(["predict", str(run), "Maria visited Lima.", "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)[0]
    assert pred["tokens"] == ["Maria", "visited", "Lima", "."] and len(pred["tags"]) == 4
    assert pred["input"] == "Maria visited Lima."
    assert main(["predict", str(run), "Maria visited Lima."]) == 0
    assert capsys.readouterr().out.startswith("Maria/")  # each token beside its tag


def test_cli_pos_tags_and_tdnn(tmp_path):
    data = tmp_path / "pos.jsonl"
    data.write_text("\n".join(json.dumps({"tokens": ["the", "dog", "runs"], "tags": ["DET", "NOUN", "VERB"]})
                              for _ in range(12)) + "\n")
    run = tmp_path / "run"
    assert main(["train", "tag", "--data", str(data), "--out", str(run), "--model", "tdnn", *TINY]) == 0
    assert json.loads((run / "result.json").read_text())["scheme"] == "none"


def test_unseen_tag_at_evaluation_names_the_sentence(tmp_path, capsys):
    data = tmp_path / "train.conll"
    _conll(data, _ner_data(12))
    run = tmp_path / "run"
    assert main(["train", "tag", "--data", str(data), "--out", str(run), *TINY]) == 0
    bad = tmp_path / "bad.conll"
    _conll(bad, [[("Anna", "B-PER")], [("Acme", "B-ORG"), ("Inc", "I-ORG")]])
    assert main(["evaluate", str(run), "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3" in err and "'B-ORG'" in err and "never seen in training" in err


def test_detect_scheme():
    from rnnkit.data.tabular import TaggedSentence
    assert detect_scheme([TaggedSentence(["a"], ["B-X"], "")]) == "bio"
    assert detect_scheme([TaggedSentence(["a"], ["NOUN"], "")]) == "none"


def test_embedded_ner_test_names_are_unseen():
    from rnnkit.data.embedded_tasks import tag_set
    train, test = tag_set("ner")
    seen = {w for toks, _ in train for w in toks}
    assert len(train) == 1200 and len(test) == 300
    assert any(w not in seen for toks, tags in test for w, t in zip(toks, tags) if t != "O")
