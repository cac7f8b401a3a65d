"""The attention of a generated caption drawn over the image: a PNG strip, one panel per word."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from rnnkit.atomic import atomic_save

PANEL = 160      # pixels per panel side
LABEL = 18       # pixels of text under each panel


def attention_strip(image: torch.Tensor, attention: torch.Tensor, words: Sequence[str], path: str | Path,
                    per_row: int = 6) -> Path:
    """image (3, H, W) uint8 or [0, 1] float; attention (len(words), S) over an h x w grid (S = h * w,
    square); writes ``path`` with one panel per word: the image, brightened where the word attended."""
    steps, S = attention.shape
    if steps != len(words):
        raise ValueError(f"{steps} attention rows for {len(words)} words")
    side = math.isqrt(S)
    if side * side != S:
        raise ValueError(f"attention over {S} positions is not a square grid")
    pixels = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    base = Image.fromarray((pixels.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).resize((PANEL, PANEL))
    rows = math.ceil(steps / per_row)
    strip = Image.new("RGB", (min(steps, per_row) * PANEL, rows * (PANEL + LABEL)), "white")
    draw = ImageDraw.Draw(strip)
    for t, word in enumerate(words):
        w = attention[t].reshape(side, side).numpy()
        w = w / w.max() if w.max() > 0 else w
        mask = Image.fromarray((w * 255).astype(np.uint8), "L").resize((PANEL, PANEL), Image.Resampling.BILINEAR)
        dark = Image.blend(base, Image.new("RGB", base.size, "black"), 0.7)
        panel = Image.composite(base, dark, mask)                      # bright where attended
        x, y = (t % per_row) * PANEL, (t // per_row) * (PANEL + LABEL)
        strip.paste(panel, (x, y))
        draw.text((x + 4, y + PANEL + 3), word, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(path, lambda tmp: strip.save(tmp, format="PNG"))
    return path
