"""Corpus BLEU and chrF with sacrebleu (on detokenised text), exact match, attention heat maps."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

from torch import Tensor

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


def attention_heatmap(weights: Tensor, source: List[str], target: List[str], path: str | Path,
                      title: str = "") -> Path:
    """PNG of attention weights (target steps x source tokens), rows labelled by target pieces."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = weights.detach().float().cpu().numpy()
    if w.shape != (len(target), len(source)):
        raise ValueError(f"weights {tuple(w.shape)} do not match {len(target)} target x "
                         f"{len(source)} source tokens")
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(source) + 1.5), max(3.0, 0.4 * len(target) + 1.2)))
    im = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(target)), target, fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
