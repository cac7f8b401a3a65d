"""Metrics for piano rolls: Bay et al.'s frame accuracy, NLL per frame, statistics of pieces.

Rolls are boolean-like arrays (T, P) (or (N, T, P)) for pitches ``lowest .. lowest + P - 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def frame_counts(pred, target) -> tuple[int, int, int]:
    """(TP, FP, FN) summed over all frames and pitches of two same-shape 0/1 rolls."""
    pred, target = np.asarray(pred).astype(bool), np.asarray(target).astype(bool)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have one shape, got {pred.shape} and {target.shape}")
    return int((pred & target).sum()), int((pred & ~target).sum()), int((~pred & target).sum())


def frame_accuracy(pred, target) -> float:
    """Frame-level accuracy of Bay, Ehmann and Downie (ISMIR 2009): sum TP / sum (TP + FP + FN).

    Frames where neither roll has a note add nothing.  Undefined (ValueError) when both rolls are
    silent throughout.
    """
    tp, fp, fn = frame_counts(pred, target)
    if tp + fp + fn == 0:
        raise ValueError("frame accuracy is undefined: neither roll has any note")
    return tp / (tp + fp + fn)


def nll_per_frame(frame_nll, lengths=None) -> float:
    """Mean of per-frame NLLs (N, T) over the frames inside each sequence's length (nats per frame).

    Averaging over all frames of a split (not per sequence) is how the 2012 benchmark reports it.
    """
    nll = np.asarray(frame_nll, dtype=np.float64)
    if nll.ndim == 1:
        nll = nll[None]
    if lengths is None:
        mask = np.ones_like(nll, dtype=bool)
    else:
        lengths = np.asarray(lengths)
        if lengths.shape != (nll.shape[0],) or (lengths < 0).any() or (lengths > nll.shape[1]).any():
            raise ValueError(f"lengths must be ({nll.shape[0]},) in 0..{nll.shape[1]}, got {lengths!r}")
        mask = np.arange(nll.shape[1])[None, :] < lengths[:, None]
    if not mask.any():
        raise ValueError("no frames to average")
    return float(nll[mask].sum() / mask.sum())


@dataclass
class RollStats:
    """Objective statistics of a piece (as used to compare generated music with data).

    pitch_class_histogram: (12,) share of sounding note-frames per pitch class, C first;
    polyphony: mean notes per non-empty frame; note_density: note onsets per frame;
    lowest/highest: sounding pitch extremes (None when silent); empty_frame_ratio.
    """
    pitch_class_histogram: np.ndarray
    polyphony: float
    note_density: float
    lowest: int | None
    highest: int | None
    empty_frame_ratio: float

    @property
    def pitch_range(self) -> int:
        return 0 if self.lowest is None else self.highest - self.lowest


def roll_onsets(frames) -> np.ndarray:
    """(T, P) onsets of a roll without onset marks: a pitch starts where it was silent the frame before."""
    frames = np.asarray(frames).astype(bool)
    prev = np.vstack([np.zeros((1, frames.shape[1]), dtype=bool), frames[:-1]])
    return frames & ~prev


def roll_stats(frames, lowest: int, onsets=None) -> RollStats:
    """Statistics of one roll (T, P); ``onsets`` default to :func:`roll_onsets`."""
    frames = np.asarray(frames).astype(bool)
    if frames.ndim != 2 or frames.shape[0] == 0:
        raise ValueError(f"frames must be a non-empty (T, P) roll, got shape {frames.shape}")
    T, P = frames.shape
    onsets = roll_onsets(frames) if onsets is None else np.asarray(onsets).astype(bool)
    per_pitch = frames.sum(axis=0)                                       # (P,)
    pcs = np.zeros(12)
    np.add.at(pcs, (lowest + np.arange(P)) % 12, per_pitch)
    total = per_pitch.sum()
    notes_per_frame = frames.sum(axis=1)                                 # (T,)
    sounding = notes_per_frame > 0
    used = np.flatnonzero(per_pitch)
    return RollStats(
        pitch_class_histogram=pcs / total if total else pcs,
        polyphony=float(notes_per_frame[sounding].mean()) if sounding.any() else 0.0,
        note_density=float(onsets.sum() / T),
        lowest=int(lowest + used[0]) if used.size else None,
        highest=int(lowest + used[-1]) if used.size else None,
        empty_frame_ratio=float(1 - sounding.mean()))


def histogram_distance(a, b) -> float:
    """Total variation distance between two pitch-class histograms (0 = equal, 1 = disjoint)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(0.5 * np.abs(a / max(a.sum(), 1e-12) - b / max(b.sum(), 1e-12)).sum())
