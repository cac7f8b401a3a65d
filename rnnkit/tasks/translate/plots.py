"""Attention heat maps of translations (PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import List

from torch import Tensor

from rnnkit.train.plots import save_figure


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
    return save_figure(fig, path)
