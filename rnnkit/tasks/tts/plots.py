"""The attention alignment, and the predicted mel spectrogram above the target one (PNG)."""
from __future__ import annotations

from pathlib import Path

import torch


def alignment_and_mels(alignment: torch.Tensor, predicted: torch.Tensor, target: torch.Tensor | None,
                       path: str | Path, title: str = "") -> Path:
    """alignment (steps, N) as an image (decoder step across, input symbol up), then the predicted log-mel
    (T, M) and, when given, the target log-mel (T', M) on the same colour scale."""
    from rnnkit.train.plots import plt, save_figure  # matplotlib (Agg backend), imported only when plotting

    panels = 3 if target is not None else 2
    fig, axes = plt.subplots(panels, 1, figsize=(8, 2.4 * panels))
    a = alignment.detach().float().cpu().numpy()
    axes[0].imshow(a.T, origin="lower", aspect="auto", cmap="viridis", interpolation="none")
    axes[0].set_ylabel("input symbol")
    axes[0].set_xlabel("decoder step")
    axes[0].set_title(title[:100], fontsize=8, loc="left")
    mels = [("predicted", predicted)] + ([("target", target)] if target is not None else [])
    lo = min(float(m.min()) for _, m in mels)
    hi = max(float(m.max()) for _, m in mels)
    for ax, (name, m) in zip(axes[1:], mels):
        ax.imshow(m.detach().float().cpu().numpy().T, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi)
        ax.set_ylabel(f"{name}\nmel bin", fontsize=8)
    axes[-1].set_xlabel("frame")
    return save_figure(fig, Path(path), dpi=90)
