"""Classical classification baselines from scikit-learn, on the same splits as the networks.

* text: TF-IDF of word unigrams and bigrams -> logistic regression (the standard
  sentiment baseline, e.g. Wang & Manning 2012);
* numeric sequences: logistic regression on the zero-padded, flattened sequence.
"""
from __future__ import annotations

import time

import numpy as np

from rnnkit.metrics import classification_report
from rnnkit.tasks.runs import need


def _labels(train_labels, test_labels):
    classes = sorted(set(train_labels))
    index = {c: i for i, c in enumerate(classes)}
    unseen = sorted(set(test_labels) - set(classes))
    if unseen:
        raise ValueError(f"test labels never seen in training: {', '.join(unseen)}")
    return classes, [index[c] for c in train_labels], [index[c] for c in test_labels]


def tfidf_logreg(train_texts, train_labels, test_texts, test_labels, C: float = 4.0) -> dict:
    """Accuracy, macro-F1, parameter count and fit time of TF-IDF (1-2 grams) + logistic regression."""
    text = need("sklearn.feature_extraction.text", "the TF-IDF baseline")
    linear = need("sklearn.linear_model", "the TF-IDF baseline")
    classes, ytr, yte = _labels(train_labels, test_labels)
    t0 = time.perf_counter()
    vec = text.TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, token_pattern=r"(?u)\b\w+\b")
    Xtr = vec.fit_transform(train_texts)
    clf = linear.LogisticRegression(C=C, max_iter=2000).fit(Xtr, ytr)
    elapsed = time.perf_counter() - t0
    rep = classification_report(yte, clf.predict(vec.transform(test_texts)).tolist(), len(classes))
    return {**rep.summary(), "parameters": int(clf.coef_.size + clf.intercept_.size), "train_s": elapsed}


def flat_logreg(train_seqs, train_labels, test_seqs, test_labels, C: float = 1.0) -> dict:
    """Logistic regression on zero-padded flattened numeric sequences (T_max x F features)."""
    linear = need("sklearn.linear_model", "the logistic-regression baseline")
    classes, ytr, yte = _labels(train_labels, test_labels)
    T = max(len(s) for s in list(train_seqs) + list(test_seqs))

    def flat(seqs):
        out = np.zeros((len(seqs), T * seqs[0].shape[1]), dtype=np.float64)
        for i, s in enumerate(seqs):
            out[i, : s.size] = np.asarray(s, dtype=np.float64).ravel()
        return out
    t0 = time.perf_counter()
    clf = linear.LogisticRegression(C=C, max_iter=3000).fit(flat(train_seqs), ytr)
    elapsed = time.perf_counter() - t0
    rep = classification_report(yte, clf.predict(flat(test_seqs)).tolist(), len(classes))
    return {**rep.summary(), "parameters": int(clf.coef_.size + clf.intercept_.size), "train_s": elapsed}
