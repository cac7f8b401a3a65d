"""Tiny MIDI folders written for the music tests (the roll mode's and the event modes')."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.data.midi import write_midi


def midi_folder(folder: Path, n: int = 5, seed: int = 0) -> Path:
    """``n`` tiny two-voice pieces (16 sixteenth-note steps each, the lower voice ringing to step 18) in
    pitches 48..71."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        notes = []
        for s in range(0, 16, 2):
            p = 60 + int(rng.integers(0, 12))
            notes += [(p, s, s + 2), (p - 12, s, s + 4)]
        write_midi(notes, folder / f"piece{i}.mid")
    return folder
