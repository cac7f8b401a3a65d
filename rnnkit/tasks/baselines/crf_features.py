"""The classical tagging baseline: a linear-chain CRF over hand-made word features (python-crfsuite).

Features of token i (the usual CoNLL-2003 feature set, as in the sklearn-crfsuite
tutorial): the lower-cased word, its 2- and 3-letter suffixes and prefix, its
shape (Xxxx, dd, ...), whether it is title-cased, upper-cased or a number, and
the same word-level features of the previous and the next token.  Trained with
L-BFGS and elastic-net regularisation (``c1``, ``c2``).
"""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Sequence

from rnnkit.metrics import entity_scores, token_accuracy
from rnnkit.tasks.runs import need


def _shape(word: str) -> str:
    s = re.sub("[A-Z]", "X", word)
    s = re.sub("[a-z]", "x", s)
    s = re.sub("[0-9]", "d", s)
    return re.sub(r"(.)\1{2,}", r"\1\1", s)


def _word(word: str, prefix: str) -> dict:
    return {f"{prefix}lower": word.lower(), f"{prefix}title": word.istitle(), f"{prefix}upper": word.isupper(),
            f"{prefix}shape": _shape(word)}


def token_features(tokens: Sequence[str], i: int) -> dict:
    w = tokens[i]
    f = {"bias": 1.0, "suf3": w[-3:].lower(), "suf2": w[-2:].lower(), "pre3": w[:3].lower(),
         "digit": w.isdigit(), **_word(w, "")}
    f.update(_word(tokens[i - 1], "-1:") if i > 0 else {"BOS": True})
    f.update(_word(tokens[i + 1], "+1:") if i + 1 < len(tokens) else {"EOS": True})
    return f


def sentence_features(tokens: Sequence[str]) -> list[dict]:
    return [token_features(tokens, i) for i in range(len(tokens))]


def crf_tagger(train: Sequence[tuple[list[str], list[str]]], test: Sequence[tuple[list[str], list[str]]],
               c1: float = 0.1, c2: float = 0.01, max_iterations: int = 100) -> dict:
    """Entity F1 / token accuracy on ``test`` of a feature CRF trained on ``train`` (lists of (tokens, tags))."""
    crfsuite = need("pycrfsuite", "the feature-CRF tagging baseline")
    t0 = time.perf_counter()
    trainer = crfsuite.Trainer(verbose=False)
    for tokens, tags in train:
        trainer.append(sentence_features(tokens), list(tags))
    trainer.set_params({"c1": c1, "c2": c2, "max_iterations": max_iterations,
                        "feature.possible_transitions": True})
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "crf.model")
        trainer.train(path)
        elapsed = time.perf_counter() - t0
        tagger = crfsuite.Tagger()
        tagger.open(path)
        pred = [tagger.tag(sentence_features(tokens)) for tokens, _ in test]
        info = tagger.info()
        n_params = len(info.state_features) + len(info.transitions)
        tagger.close()
    gold = [list(tags) for _, tags in test]
    s = entity_scores(gold, pred)
    return {"f1": s["f1"], "precision": s["precision"], "recall": s["recall"],
            "accuracy": token_accuracy(gold, pred), "parameters": n_params, "train_s": elapsed}
