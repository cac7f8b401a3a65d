"""Corpus BLEU and chrF with sacrebleu (on detokenised text), exact match."""
from __future__ import annotations

from typing import Dict, Sequence

INSTALL_HINT = "pip install 'rnnkit[translate]'"


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError as err:
        raise ImportError(f"BLEU and chrF need the sacrebleu package: {INSTALL_HINT}") from err
    return sacrebleu


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> Dict[str, object]:
    """Corpus BLEU (13a tokenisation) and chrF of plain-text hypotheses against one reference each.

    Returns ``{"bleu", "chrf", "exact", "n", "bleu_signature", "chrf_signature"}`` (scores 0-100).
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("no sentences to score")
    sb = _sacrebleu()
    bleu = sb.metrics.BLEU()
    chrf = sb.metrics.CHRF()
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    return {"bleu": b.score, "chrf": c.score, "exact": exact_match(hypotheses, references),
            "n": len(hypotheses), "bleu_signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature())}


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Share of hypotheses identical to their reference (0-1)."""
    return sum(h == r for h, r in zip(hypotheses, references)) / max(len(references), 1)
