"""Tiny data files that several suites write: a short repetitive text for language-model runs and a
``text,label`` CSV for classification runs."""
from __future__ import annotations

import csv
from pathlib import Path

#: a text a one-layer 16-unit LM learns in a few updates (10,806 characters)
LM_TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "\n") * 6


def write_text_label_csv(path: str | Path, rows, encoding: str = "utf-8") -> Path:
    """``rows`` of (text, label) as a CSV with a ``text,label`` header (quoted where the csv module must)."""
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return Path(path)
