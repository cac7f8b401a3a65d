"""Tiny data that several suites use: a short repetitive text for language-model runs, a ``text,label`` CSV,
tiny two-class reviews and the flags of a seconds-long classification run."""
from __future__ import annotations

import csv
from pathlib import Path

#: a text a one-layer 16-unit LM learns in a few updates (10,806 characters)
LM_TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "\n") * 6

#: `rnnkit train classify` flags for a one-epoch run of a 4-unit model
CLASSIFY_TINY = ["--epochs", "1", "--hidden", "4", "--embedding", "4", "--batch-size", "8", "--progress", "none",
                 "--tensorboard", "off"]


def tiny_reviews(n: int, pos: list[str], neg: list[str], marks: tuple[str, str] = ("q", "z")) -> list[tuple[str, str]]:
    """``n`` (text, label) rows alternating "pos" and "neg": row i is phrase ``i % len`` of its class's list
    followed by a word of its own (``marks[0]`` or ``marks[1]`` then ``i``), so no two texts are equal."""
    return [(pos[i % len(pos)] + f" {marks[0]}{i}", "pos") if i % 2 == 0 else (neg[i % len(neg)] + f" {marks[1]}{i}", "neg")
            for i in range(n)]


def write_text_label_csv(path: str | Path, rows, encoding: str = "utf-8") -> Path:
    """``rows`` of (text, label) as a CSV with a ``text,label`` header (quoted where the csv module must)."""
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return Path(path)
