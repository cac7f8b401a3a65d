"""Task metrics: classification, tagging (CoNLL entity scores) and forecasting.

Plain NumPy, so the base install scores every task; the test-suite checks
them against hand-computed values and against scikit-learn where installed.

* classification: :func:`classification_report` - accuracy, macro-F1,
  per-class precision / recall / F1 / support, confusion matrix
  (rows = true class, columns = predicted, as scikit-learn orders them).
* tagging: :func:`entity_scores` - entity-level precision, recall and F1 as
  the CoNLL ``conlleval`` script counts them (an entity is correct only when
  its type and both boundaries match), for BIO (IOB2), IOB1 and BIOES tags;
  :func:`token_accuracy`.
* forecasting: :func:`mae`, :func:`rmse`, :func:`smape` (0-200 scale, as in
  the M4 competition), :func:`mase` (scaled by the in-sample seasonal-naive
  MAE of the training series, Hyndman & Koehler 2006).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


# ------------------------------------------------------------------ classification

def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """(C, C) counts; ``[i, j]`` = examples of class i predicted as j."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@dataclass
class ClassificationReport:
    accuracy: float
    macro_f1: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]

    def summary(self) -> dict:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1}

    def per_class(self, labels: Sequence[str]) -> list[dict]:
        return [{"label": lab, "precision": p, "recall": r, "f1": f, "support": s}
                for lab, p, r, f, s in zip(labels, self.precision, self.recall, self.f1, self.support)]


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> ClassificationReport:
    """Accuracy, macro-F1 (unweighted mean over all ``n_classes``; an absent class scores 0)."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm)
    precision = _safe_div(tp, cm.sum(axis=0))
    recall = _safe_div(tp, cm.sum(axis=1))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    total = cm.sum()
    return ClassificationReport(float(tp.sum() / total) if total else 0.0, float(f1.mean()),
                                precision.tolist(), recall.tolist(), f1.tolist(),
                                cm.sum(axis=1).tolist(), cm.tolist())


# ------------------------------------------------------------------------- tagging

def _split_tag(tag: str) -> tuple[str, str]:
    if tag == "O" or not tag:
        return "O", ""
    if len(tag) > 1 and tag[1] in "-_":
        return tag[0].upper(), tag[2:]
    return tag.upper(), ""  # a bare prefix such as "B" (untyped chunk)


def _ends(prev: str, prev_type: str, cur: str, cur_type: str) -> bool:
    """Does a chunk end between the previous and the current tag (conlleval's endOfChunk)."""
    return prev in ("E", "S") or \
        (prev in ("B", "I") and (cur in ("B", "S", "O") or cur_type != prev_type))


def _starts(prev: str, prev_type: str, cur: str, cur_type: str) -> bool:
    """Does a chunk start at the current tag (conlleval's startOfChunk)."""
    if cur in ("B", "S"):
        return True
    if cur in ("I", "E"):
        return prev in ("E", "S", "O") or cur_type != prev_type
    return False


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities ``(type, start, end_exclusive)`` in one sentence, conlleval rules.

    Works for IOB2 (``B-``/``I-``), IOB1 (an ``I-`` after ``O`` or another type
    starts a chunk) and BIOES (``S-`` single, ``E-`` end).
    """
    out, start, prev, prev_type = [], None, "O", ""
    for i, tag in enumerate(list(tags) + ["O"]):
        cur, cur_type = _split_tag(tag)
        if start is not None and _ends(prev, prev_type, cur, cur_type):
            out.append((prev_type, start, i))
            start = None
        if _starts(prev, prev_type, cur, cur_type):
            start = i
        prev, prev_type = cur, cur_type
    return out


def entity_scores(true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> dict:
    """Micro-averaged entity precision / recall / F1 (in %, as conlleval prints) and per type."""
    found = correct = gold = 0
    per: dict[str, list[int]] = {}
    for i, (t, p) in enumerate(zip(true_seqs, pred_seqs, strict=True)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} true tags but {len(p)} predicted")
        ct, cp = set(chunks(t)), set(chunks(p))
        gold, found, correct = gold + len(ct), found + len(cp), correct + len(ct & cp)
        for kind, bucket in ((ct, 0), (cp, 1), (ct & cp, 2)):
            for typ, _, _ in kind:
                per.setdefault(typ, [0, 0, 0])[bucket] += 1
    result = _prf(correct, found, gold)
    result["per_type"] = {typ: _prf(c, f, g) for typ, (g, f, c) in sorted(per.items())}
    return result


def _prf(correct: int, found: int, gold: int) -> dict:
    p = 100.0 * correct / found if found else 0.0
    r = 100.0 * correct / gold if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "found": found, "gold": gold, "correct": correct}


def token_accuracy(true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> float:
    total = right = 0
    for t, p in zip(true_seqs, pred_seqs, strict=True):
        total += len(t)
        right += sum(a == b for a, b in zip(t, p))
    return right / total if total else 0.0


# --------------------------------------------------------------------- forecasting

def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: actual {a.shape}, forecast {b.shape}")
    if a.size == 0:
        raise ValueError("no values to score")
    return a, b


def mae(y_true, y_pred) -> float:
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def rmse(y_true, y_pred) -> float:
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def smape(y_true, y_pred) -> float:
    """Symmetric MAPE in percent, ``200 * |y - f| / (|y| + |f|)``; a 0/0 term counts as 0."""
    a, b = _pair(y_true, y_pred)
    den = np.abs(a) + np.abs(b)
    return float(np.mean(_safe_div(200.0 * np.abs(a - b), den)))


def mase_scale(train: np.ndarray, season: int = 1) -> float:
    """In-sample MAE of the seasonal-naive forecast on the training series (the MASE denominator)."""
    train = np.asarray(train, dtype=np.float64)
    m = max(int(season), 1)
    if train.shape[0] <= m:
        raise ValueError(f"MASE needs more than season={m} training values, got {train.shape[0]}")
    scale = float(np.mean(np.abs(train[m:] - train[:-m])))
    if scale == 0.0:
        raise ValueError("MASE is undefined: the training series is constant at the seasonal lag")
    return scale


def mase(y_true, y_pred, scale: float) -> float:
    return mae(y_true, y_pred) / scale


def forecast_metrics(y_true, y_pred, scale: float) -> dict:
    return {"mae": mae(y_true, y_pred), "rmse": rmse(y_true, y_pred), "smape": smape(y_true, y_pred),
            "mase": mase(y_true, y_pred, scale)}


def interval_coverage(y_true, lower, upper) -> float:
    """Share of actual values inside ``[lower, upper]``."""
    a, lo = _pair(y_true, lower)
    _, hi = _pair(y_true, upper)
    return float(np.mean((a >= lo) & (a <= hi)))
