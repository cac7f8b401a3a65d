"""NBSVM (Wang & Manning 2012, "Baselines and Bigrams: Simple, Good Sentiment and Topic Classification").

Features: the binarised word n-grams of a text, 1 .. ``order`` (``x_hat`` = 1 where an n-gram occurs), each
scaled by its naive-Bayes log-count ratio ``r = log((p / |p|_1) / (q / |q|_1))``, where ``p = alpha + sum of
x_hat over the class's texts`` and ``q`` the same over the other texts. A linear SVM (L2-regularised, squared
hinge; scikit-learn's ``LinearSVC``) is trained on ``r * x_hat``, and its weights are interpolated towards
their mean magnitude ``w_bar = |w|_1 / |V|``::

    w' = (1 - beta) * w_bar + beta * w        (beta = 0.25; MR 79.4 with uni- and bigrams in the paper)

so the score is ``(1 - beta) * w_bar * (naive-Bayes score) + beta * (SVM score)``. More than two classes:
one such model per class against the rest, each with its own ratios.

Character n-grams (``chars`` = N > 0): the 2..N-grams of each word padded with a space each side (" good " ->
" g", "go", ..., "od "), so a word never seen in training still scores through its pieces ("unfunny" through
"un", "fun", "nny"); each is marked with a leading tab, which no word n-gram holds (words never contain
whitespace), so the two kinds never collide in one table.

The fitted model is an n-gram table: one score per (n-gram, class) (``w' * r``) and a bias per class, the
form :class:`rnnkit.modules.ngram_logits.NgramLogits` runs inside a classifier.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from rnnkit.data.tokenizers import split_words
from rnnkit.metrics import classification_report
from rnnkit.tasks.runs import need

ALPHA = 1.0   # add-one smoothing of the n-gram counts
BETA = 0.25   # interpolation towards the mean weight magnitude (the paper's value)
SVM_C = 1.0   # the SVM's regularisation constant (the paper's value)
NEEDED_FOR = "NBSVM (also the text classifier's expert, on by default: --nbsvm 0 trains the network alone)"


def word_ngrams(tokens: Sequence[str], order: int) -> list[str]:
    """The distinct n-grams of ``tokens`` for n = 1 .. ``order``, words joined by one space, in first-seen
    order: ``["a", "b", "a"], 2 -> ["a", "b", "a b", "b a"]``."""
    seen: dict[str, None] = {}
    for n in range(1, order + 1):
        for i in range(len(tokens) - n + 1):
            seen.setdefault(" ".join(tokens[i:i + n]), None)
    return list(seen)


CHAR_MARK = "\t"   # leads every character n-gram: word n-grams never contain whitespace


def char_ngrams(tokens: Sequence[str], longest: int) -> list[str]:
    """The distinct character 2..``longest``-grams of each token padded with a space each side, each marked
    with :data:`CHAR_MARK`, in first-seen order: ``["ab"], 3 -> ["\\t a", "\\tab", "\\tb ", "\\t ab", "\\tab "]``."""
    seen: dict[str, None] = {}
    for tok in tokens:
        padded = f" {tok} "
        for n in range(2, longest + 1):
            for i in range(len(padded) - n + 1):
                seen.setdefault(CHAR_MARK + padded[i:i + n], None)
    return list(seen)


def text_ngrams(text: str, order: int, lowercase: bool = True, chars: int = 0) -> list[str]:
    """The word 1..``order``-grams (:func:`word_ngrams`) and then the character 2..``chars``-grams
    (:func:`char_ngrams`; 0 = none) of a raw text split as the classifier splits words (words and punctuation
    marks)."""
    tokens = split_words(text.lower() if lowercase else text)
    return word_ngrams(tokens, order) + (char_ngrams(tokens, chars) if chars else [])


@dataclass
class NgramTable:
    """A fitted linear model over binarised n-grams: ``ngrams[i]`` has scores ``weights[i]`` (one per class);
    a text's scores are ``bias + sum of weights over its distinct known n-grams``."""
    ngrams: list[str]
    weights: np.ndarray    # (V, C) float32
    bias: np.ndarray       # (C,) float32
    order: int             # word 1..order-grams (0 = none)
    chars: int = 0         # character 2..chars-grams of each word (0 = none)

    def scores(self, texts: Iterable[str], lowercase: bool = True) -> np.ndarray:
        """(N, C) scores of raw texts."""
        index = {g: i for i, g in enumerate(self.ngrams)}
        out = []
        for t in texts:
            ids = [index[g] for g in text_ngrams(t, self.order, lowercase, self.chars) if g in index]
            out.append(self.bias + self.weights[ids].sum(0))
        return np.asarray(out, dtype=np.float64).reshape(-1, self.weights.shape[1])


def binary_matrix(grams: list[list[str]], index: dict[str, int]):
    """(N, V) scipy CSR matrix: 1 where text n holds n-gram v (n-grams not in ``index`` left out)."""
    sparse = need("scipy.sparse", NEEDED_FOR)
    ids = [sorted(index[g] for g in gs if g in index) for gs in grams]
    indptr = np.cumsum([0] + [len(i) for i in ids])
    cols = np.fromiter((c for i in ids for c in i), dtype=np.int64, count=int(indptr[-1]))
    return sparse.csr_matrix((np.ones(len(cols)), cols, indptr), shape=(len(grams), len(index)))


def nb_ratios(X, positive: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """(V,) naive-Bayes log-count ratios of binary features ``X`` (N, V) for the texts where ``positive``
    (N,) is true against the others: ``log((p / |p|_1) / (q / |q|_1))``, ``p = alpha + X[positive].sum(0)``."""
    p = alpha + np.asarray(X[positive].sum(0)).ravel()
    q = alpha + np.asarray(X[~positive].sum(0)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


def _one_against_rest(X, positive: np.ndarray, C: float, beta: float) -> tuple[np.ndarray, float]:
    """Per-n-gram scores (V,) and bias of one NBSVM: the interpolated SVM weights times the ratios."""
    svm = need("sklearn.svm", NEEDED_FOR)
    r = nb_ratios(X, positive)
    clf = svm.LinearSVC(C=C, loss="squared_hinge", max_iter=10000, random_state=0).fit(X.multiply(r).tocsr(),
                                                                                      positive)
    w = clf.coef_.ravel()
    w_mixed = (1.0 - beta) * np.abs(w).mean() + beta * w
    return w_mixed * r, beta * float(clf.intercept_[0])


def fit_nbsvm(texts: Sequence[str], labels: Sequence[str], classes: Sequence[str], order: int = 2,
              lowercase: bool = True, C: float = SVM_C, beta: float = BETA, chars: int = 0) -> NgramTable:
    """NBSVM fitted on ``texts`` / ``labels`` over their word 1..``order``-grams and character 2..``chars``-grams
    (every such n-gram of these texts, no others; ``order=0, chars=5``: character n-grams only). Two classes:
    one model whose scores go to the second class (the first scores 0); more: one model per class against the
    rest."""
    if len(set(labels)) < 2:
        raise ValueError("NBSVM needs at least two classes in the training texts")
    if order < 0 or chars < 0 or chars == 1 or not (order or chars):
        raise ValueError(f"NBSVM needs word n-grams (order >= 1) or character n-grams (chars >= 2), got order "
                         f"{order}, chars {chars}")
    grams = [text_ngrams(t, order, lowercase, chars) for t in texts]
    index: dict[str, int] = {}
    for gs in grams:
        for g in gs:
            index.setdefault(g, len(index))
    X = binary_matrix(grams, index)                                    # (N, V)
    y = np.asarray([list(classes).index(lab) for lab in labels])
    weights = np.zeros((len(index), len(classes)), dtype=np.float64)
    bias = np.zeros(len(classes), dtype=np.float64)
    targets = [1] if len(classes) == 2 else range(len(classes))
    for c in targets:
        weights[:, c], bias[c] = _one_against_rest(X, y == c, C, beta)
    return NgramTable(list(index), weights.astype(np.float32), bias.astype(np.float32), order, chars)


def nbsvm_baseline(train_texts, train_labels, test_texts, test_labels, order: int = 2) -> dict:
    """Accuracy, macro-F1, parameter count and fit time of NBSVM with 1 .. ``order`` grams."""
    classes = sorted(set(train_labels))
    unseen = sorted(set(test_labels) - set(classes))
    if unseen:
        raise ValueError(f"test labels never seen in training: {', '.join(unseen)}")
    t0 = time.perf_counter()
    table = fit_nbsvm(train_texts, train_labels, classes, order)
    elapsed = time.perf_counter() - t0
    pred = table.scores(test_texts).argmax(1).tolist()
    rep = classification_report([classes.index(lab) for lab in test_labels], pred, len(classes))
    n_models = 1 if len(classes) == 2 else len(classes)
    return {**rep.summary(), "parameters": int(len(table.ngrams) * n_models + n_models), "train_s": elapsed}
