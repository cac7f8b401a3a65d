"""A log-mel spectrogram with the CTC per-frame best label under it (PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from rnnkit.atomic import atomic_save


def ctc_spectrogram(feats: torch.Tensor, logits: torch.Tensor, symbols: Sequence[str], subsampling: int,
                    path: str | Path, title: str = "") -> Path:
    """Features (T, F) as an image (time across), and below it the best label of each output frame of
    ``logits`` (T', V), each spanning ``subsampling`` input frames; blanks are left empty, spaces shown as '_'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = feats.detach().float().cpu().numpy()                       # (T, F)
    best = logits.detach().argmax(-1).cpu().tolist()               # (T',)
    T = f.shape[0]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, T / 40), 3.6), sharex=True,
                                      gridspec_kw={"height_ratios": [4, 1]})
    top.imshow(f.T, origin="lower", aspect="auto", cmap="magma", extent=(0, T, 0, f.shape[1]))
    top.set_ylabel("feature")
    if title:
        top.set_title(title, fontsize=8, loc="left")
    prob = torch.softmax(logits.detach().float().cpu(), -1).max(-1).values.numpy()
    bottom.bar([(t + 0.5) * subsampling for t in range(len(best))], prob, width=subsampling * 0.9,
               color=["#cccccc" if s == 0 else "#1f77b4" for s in best])
    prev = None
    for t, s in enumerate(best):
        if s != 0 and s != prev:
            bottom.text((t + 0.5) * subsampling, 0.5, symbols[s] if symbols[s] != " " else "_", ha="center",
                        va="center", fontsize=7, color="black")
        prev = s
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("CTC", fontsize=8)
    bottom.set_xlabel("input frame (label shown where a new one starts; grey = blank)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path
