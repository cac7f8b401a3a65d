"""Pieces as piano rolls, their split and the batches the trainer reads.

A piece is a boolean roll ``(T, P)`` for the pitches ``lowest .. highest`` of the run's
:class:`~rnnkit.tasks.music.config.MusicDataConfig`.  Three sources (:func:`load_pieces`):

* a folder of MIDI files (``*.mid``/``*.midi``, read once and cached, :func:`rnnkit.data.midi.load_midi_folder`),
  split into train / valid / test by piece with a permutation seeded by the run's seed;
* a 2012-format file (``.pickle``/``.pkl``/``.json``/``.mat``) with its own train / valid / test;
* nothing: J. S. Bach's chorales bundled with music21 (:func:`rnnkit.data.music_sets.bach_chorales`), split
  the same seeded way.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from rnnkit.data.cache import data_cache_dir
from rnnkit.data.midi import RollConfig, load_midi_folder, read_midi_roll, transpose_range
from rnnkit.data.music_sets import SPLITS, bach_chorales, read_poly_set
from rnnkit.data.readers import DataError
from rnnkit.tasks.music.config import MusicDataConfig

POLY_SUFFIXES = (".pickle", ".pkl", ".json", ".mat")
MIDI_SUFFIXES = (".mid", ".midi")
EVAL_FRAMES = 4096  # most padded frames in one evaluation batch


@dataclass
class Pieces:
    """The rolls of each split, what they came from, and the files skipped as bad."""
    train: list[np.ndarray]
    valid: list[np.ndarray]
    test: list[np.ndarray]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def split(self, name: str) -> list[np.ndarray]:
        if name == "all":
            return self.train + self.valid + self.test
        if name not in SPLITS:
            raise DataError(f"split must be one of {', '.join(SPLITS)} or all, got {name!r}")
        return getattr(self, name)


def cache_dir(cfg: MusicDataConfig) -> Path | None:
    if cfg.cache_dir == "off":
        return None
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    return data_cache_dir("music")


def roll_config(cfg: MusicDataConfig) -> RollConfig:
    return RollConfig(steps_per_quarter=cfg.steps_per_quarter, lowest=cfg.lowest, highest=cfg.highest)


def seeded_split(pieces: list, cfg: MusicDataConfig, seed: int, where: str) -> tuple[list, list, list]:
    """(train, valid, test) by piece: a permutation seeded by ``seed``; valid and test get at least one each."""
    n = len(pieces)
    n_val = max(1, int(round(n * cfg.val_fraction)))
    n_test = max(1, int(round(n * cfg.test_fraction)))
    if n - n_val - n_test < 1:
        raise DataError(f"{where}: {n} pieces are too few to split into train, valid and test (need at least 3)")
    order = np.random.default_rng(seed).permutation(n).tolist()
    pick = lambda idx: [pieces[i] for i in idx]  # noqa: E731
    return pick(order[n_val + n_test:]), pick(order[:n_val]), pick(order[n_val:n_val + n_test])


def load_pieces(cfg: MusicDataConfig, seed: int) -> Pieces:
    """The pieces of ``cfg.data`` (see the module docstring), split."""
    if not cfg.data:
        chorales = bach_chorales(cfg.steps_per_quarter, lowest=cfg.lowest, highest=cfg.highest,
                                 limit=cfg.chorales or None, cache_dir=cache_dir(cfg))
        rolls = [roll for _, roll in chorales]
        return Pieces(*seeded_split(rolls, cfg, seed, "music21 Bach chorales"), source="music21 Bach chorales")
    path = Path(cfg.data)
    if path.is_dir():
        folder = load_midi_folder(path, roll_config(cfg), cache_dir=cache_dir(cfg), skip_bad=cfg.skip_bad)
        rolls = [roll.frames for _, roll in folder.rolls]
        return Pieces(*seeded_split(rolls, cfg, seed, str(path)), source=str(path), skipped=folder.skipped)
    if path.suffix.lower() in POLY_SUFFIXES:
        ps = read_poly_set(path, cfg.lowest, cfg.highest)
        return Pieces(ps.train, ps.valid, ps.test, source=str(path))
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    raise DataError(f"{path}: expected a folder of MIDI files or a 2012-format file "
                    f"({', '.join(POLY_SUFFIXES)}), got a {path.suffix or 'suffix-less'} file")


def read_scored(path: str | Path, cfg: MusicDataConfig, seed: int, split: str) -> tuple[list[np.ndarray], str]:
    """The pieces ``rnnkit evaluate`` scores: one MIDI file whole, else the ``split`` of :func:`load_pieces`."""
    path = Path(path)
    if path.suffix.lower() in MIDI_SUFFIXES:
        return [read_midi_roll(path, roll_config(cfg)).frames], "file"
    data = MusicDataConfig(**{**cfg.__dict__, "data": str(path)})
    return load_pieces(data, seed).split(split), split


# ------------------------------------------------------------------------------ batches

def pad(pieces: list[np.ndarray]) -> dict:
    """Rolls (T_i, P) -> {"frames": (B, T, P) float32 zero-padded, "lengths": (B,) int64}."""
    T = max(len(p) for p in pieces)
    x = np.zeros((len(pieces), T, pieces[0].shape[1]), dtype=np.float32)
    for k, p in enumerate(pieces):
        x[k, :len(p)] = p
    return {"frames": torch.from_numpy(x), "lengths": torch.tensor([len(p) for p in pieces], dtype=torch.long)}


def eval_batches(pieces: list[np.ndarray], max_frames: int = EVAL_FRAMES) -> list[dict]:
    """Whole pieces in length order, grouped so that a padded batch holds at most ``max_frames`` frames."""
    if not pieces:
        raise DataError("no pieces to score")
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    groups, group = [], []
    for i in order:
        if group and (len(group) + 1) * len(pieces[i]) > max_frames:
            groups.append(group)
            group = []
        group.append(i)
    return [pad([pieces[i] for i in g]) for g in groups + [group]]


class TrainBatches:
    """Training batches, drawn afresh each epoch from a generator seeded by ``(seed, epoch)``: the pieces
    shuffled, each cropped to a random window of ``crop`` frames and shifted by a random transposition
    in ``+-transpose`` semitones that keeps its notes in range.  An epoch is the same whenever it is
    replayed, so a resumed run sees the batches an uninterrupted one does."""

    def __init__(self, pieces: list[np.ndarray], batch_size: int, *, crop: int, transpose: int, seed: int):
        if not pieces:
            raise DataError("no training pieces")
        self.pieces, self.batch_size, self.crop, self.transpose, self.seed = pieces, batch_size, crop, transpose, seed

    def __len__(self) -> int:
        return math.ceil(len(self.pieces) / self.batch_size)

    def epoch(self, epoch: int) -> list[dict]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.pieces))
        chosen = []
        for i in order:
            roll = self.pieces[i]
            if self.crop and len(roll) > self.crop:
                start = int(rng.integers(0, len(roll) - self.crop + 1))
                roll = roll[start:start + self.crop]
            if self.transpose:
                roll = np.roll(roll, int(rng.choice(transpose_range(roll, self.transpose))), axis=1)
            chosen.append(roll)
        return [pad(chosen[i:i + self.batch_size]) for i in range(0, len(chosen), self.batch_size)]

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[dict]:
        yield from self.epoch(epoch)[start:]

    def fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.batch_size, self.crop, self.transpose, self.seed)).encode())
        for p in self.pieces:
            h.update(repr(p.shape).encode())
            h.update(np.packbits(p).tobytes())
        return h.hexdigest()
