"""Scores of generated captions and of predicted tag sets.

* :func:`caption_scores` - corpus BLEU-1..4 and CIDEr-D of the COCO caption evaluation code
  (pycocoevalcap, pure Python), and METEOR 1.5 when asked and ``java`` is on the PATH (pycocoevalcap
  ships the jar; nothing is downloaded). Captions are lower-cased and split on non-alphanumerics
  before scoring (a light stand-in for the PTB tokenizer, which also needs Java).
* :func:`tagging_scores` - mean average precision over tags (scikit-learn's average precision per tag,
  averaged over the tags that occur), micro / macro F1 and F1 per tag of the predicted sets.
"""
from __future__ import annotations

import importlib
import re
import shutil
import sys
from typing import Sequence

import numpy as np

METEOR_MODES = ("auto", "on", "off")


def _need(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"caption metrics need {module.split('.')[0]}: pip install 'rnnkit[vision]'") from err


def normalize_caption(text: str) -> str:
    """Lower case, words of letters and digits only, single spaces."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def meteor_available() -> str | None:
    """None if METEOR can run here, else the reason it cannot."""
    if shutil.which("java") is None:
        return "no java on the PATH"
    return None


def caption_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]], meteor: str = "auto") -> dict:
    """BLEU-1..4, CIDEr-D (and METEOR) of one hypothesis per image against its references (fractions in
    [0, 1]; CIDEr-D is on its usual scale where 1.0 is good). ``meteor``: ``auto`` (when java is found,
    else skipped with a notice on stderr), ``on`` (an error without java) or ``off``."""
    if meteor not in METEOR_MODES:
        raise ValueError(f"meteor must be one of {', '.join(METEOR_MODES)}, got {meteor!r}")
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"need one hypothesis per image and at least one image, got {len(hypotheses)} "
                         f"hypotheses for {len(references)} images")
    gts = {str(i): [normalize_caption(r) for r in refs] for i, refs in enumerate(references)}
    if any(not refs for refs in gts.values()):
        raise ValueError("every image needs at least one reference caption")
    res = {str(i): [normalize_caption(h) or "<empty>"] for i, h in enumerate(hypotheses)}
    bleu = _need("pycocoevalcap.bleu.bleu").Bleu(4).compute_score(gts, res, verbose=0)[0]
    cider = float(_need("pycocoevalcap.cider.cider").Cider().compute_score(gts, res)[0])
    out = {f"bleu{n}": float(b) for n, b in enumerate(bleu, start=1)}
    out["cider_d"] = cider
    if meteor != "off":
        reason = meteor_available()
        if reason is None:
            out["meteor"] = float(_need("pycocoevalcap.meteor.meteor").Meteor().compute_score(gts, res)[0])
        elif meteor == "on":
            raise RuntimeError(f"METEOR was asked for but cannot run: {reason}")
        else:
            print(f"METEOR skipped: {reason} (it runs pycocoevalcap's meteor-1.5.jar)", file=sys.stderr)
    out["n"] = len(hypotheses)
    return out


def tagging_scores(truth: np.ndarray, scores: np.ndarray, predicted: np.ndarray, tags: Sequence[str]) -> dict:
    """truth, predicted (N, K) 0/1; scores (N, K) any monotone confidence; tags: the K names.

    mAP averages the per-tag average precision over tags with at least one positive."""
    metrics = _need("sklearn.metrics")
    truth, predicted = np.asarray(truth, dtype=int), np.asarray(predicted, dtype=int)
    present = truth.sum(0) > 0
    ap = [metrics.average_precision_score(truth[:, k], scores[:, k]) for k in np.flatnonzero(present)]
    per_tag = metrics.f1_score(truth, predicted, average=None, zero_division=0)
    return {"mAP": float(np.mean(ap)) if ap else 0.0,
            "micro_f1": float(metrics.f1_score(truth, predicted, average="micro", zero_division=0)),
            "macro_f1": float(np.mean(per_tag[present])) if present.any() else 0.0,
            "exact_set": float((truth == predicted).all(1).mean()),
            "per_tag_f1": {t: float(f) for t, f, p in zip(tags, per_tag, present) if p},
            "n": int(truth.shape[0])}
