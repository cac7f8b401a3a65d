"""Pieces as event tokens, for ``mode: performance`` and ``mode: melody``.

:class:`EventCodec` turns a piece into tokens and back:

* performance: every note of a MIDI file, timed in seconds with its velocity, as the events of
  :class:`~rnnkit.data.music_tokens.PerformanceTokenizer` (10 ms time shifts);
* melody: the top voice of the piece's piano roll (at ``steps_per_quarter``) as the pitch / duration
  tokens of :class:`~rnnkit.data.music_tokens.MelodyTokenizer`.

One extra token, ``bos``, starts every piece: the model reads ``[bos] + tokens[:-1]`` and predicts
every token of the piece.  Sources are those of the roll mode (:func:`load_event_pieces`): a MIDI
folder, a 2012-format file (its rolls, read at 120 beats per minute), or the music21 Bach chorales
(rolls without onsets, so a repeated note is heard as one long note).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from rnnkit.data.midi import RollConfig, read_midi_notes, read_midi_roll, roll_to_notes
from rnnkit.data.music_sets import bach_chorales, read_poly_set
from rnnkit.data.music_tokens import MelodyTokenizer, PerfNote, PerformanceTokenizer, melody_from_roll, perf_notes
from rnnkit.data.readers import DataError
from rnnkit.modules.token_lm import IGNORE_INDEX
from rnnkit.tasks.music.config import MusicDataConfig
from rnnkit.tasks.music.data import MIDI_SUFFIXES, POLY_SUFFIXES, Pieces, cache_dir, seeded_split

ROLL_BPM = 120.0     # tempo at which a roll without one (chorales, 2012-format pieces) is timed
EVAL_TOKENS = 8192   # most padded tokens in one evaluation batch


@dataclass(frozen=True)
class EventCodec:
    """A piece <-> tokens for one run's data settings; token ``bos`` (the last id) starts every piece."""
    mode: str
    lowest: int
    highest: int
    steps_per_quarter: int
    velocity_bins: int = 32
    max_duration: int = 32

    @classmethod
    def of(cls, cfg: MusicDataConfig) -> "EventCodec":
        if cfg.mode not in ("performance", "melody"):
            raise ValueError(f"an event codec needs mode performance or melody, got {cfg.mode!r}")
        return cls(cfg.mode, cfg.lowest, cfg.highest, cfg.steps_per_quarter, cfg.velocity_bins, cfg.max_duration)

    @property
    def tokenizer(self):
        if self.mode == "performance":
            return PerformanceTokenizer(velocity_bins=self.velocity_bins)
        return MelodyTokenizer(self.lowest, self.highest, self.max_duration)

    @property
    def roll_config(self) -> RollConfig:
        return RollConfig(steps_per_quarter=self.steps_per_quarter, lowest=self.lowest, highest=self.highest)

    @property
    def bos(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size + 1

    # ------------------------------------------------------------------ reading

    def file_tokens(self, path: str | Path) -> np.ndarray:
        """(N,) int64 tokens of a MIDI file; DataError for no notes, drums only, pitches out of range."""
        if self.mode == "melody":
            roll = read_midi_roll(path, self.roll_config)
            return self._melody_tokens(roll.frames, roll.onsets, str(path))
        midi = read_midi_notes(path)
        if not midi.notes:
            what = "drum notes only (channel 10 is excluded)" if midi.n_drum_notes else "no notes"
            raise DataError(f"{path}: {what}; expected pitched notes")
        outside = sorted({n.pitch for n in midi.notes if not self.lowest <= n.pitch <= self.highest})
        if outside:
            raise DataError(f"{path}: pitches {outside} lie outside the configured range {self.lowest}.."
                            f"{self.highest}; widen lowest/highest or transpose the file")
        return np.asarray(self.tokenizer.encode(perf_notes(midi.notes)), dtype=np.int64)

    def roll_tokens(self, frames: np.ndarray, where: str) -> np.ndarray:
        """(N,) tokens of a roll (T, P) without onsets (each run of frames is one note), timed at ROLL_BPM."""
        if not frames.any():
            raise DataError(f"{where}: no notes; expected pitched notes")
        if self.mode == "melody":
            return self._melody_tokens(frames, None, where, split_long=True)
        step_s = 60.0 / ROLL_BPM / self.steps_per_quarter
        notes = [PerfNote(p, 80, s * step_s, e * step_s) for p, s, e in roll_to_notes(frames, self.lowest)]
        return np.asarray(self.tokenizer.encode(notes), dtype=np.int64)

    def _melody_tokens(self, frames, onsets, where: str, split_long: bool = False) -> np.ndarray:
        """The top voice's tokens; ``split_long`` (rolls without onsets, where a run of frames may be several
        repeated notes) re-strikes a note longer than max_duration every max_duration steps."""
        melody = melody_from_roll(frames, self.lowest, onsets, policy="highest")
        if split_long:
            m = self.max_duration
            melody = [(p, min(m, d - k)) for p, d in melody for k in range(0, d, m)]
        try:
            return np.asarray(self.tokenizer.encode(melody), dtype=np.int64)
        except ValueError as err:  # a note longer than max_duration
            raise DataError(f"{where}: {err}; raise max_duration") from err

    # ------------------------------------------------------------------ writing

    def notes(self, tokens) -> list:
        """Notes to write: PerfNote (seconds) for performance, (pitch, start_step, end_step) for melody."""
        if self.mode == "performance":
            return self.tokenizer.decode(tokens)
        out, now = [], 0
        for pitch, steps in self.tokenizer.decode(tokens):
            if pitch is not None:
                out.append((pitch, now, now + steps))
            now += steps
        return out

    def seconds(self, tokens: np.ndarray) -> float:
        """Performance: the time the tokens span (the sum of their time shifts)."""
        tok = self.tokenizer
        shifts = tokens[(tokens >= tok.shift_base) & (tokens < tok.velocity_base)] - tok.shift_base + 1
        return float(shifts.sum()) * tok.step_s

    # ------------------------------------------------------------ augmentation

    def pitch_mask(self, tokens: np.ndarray) -> np.ndarray:
        """(N,) bool: the tokens that name a pitch (and so move under transposition)."""
        if self.mode == "performance":
            return tokens < self.tokenizer.shift_base
        return (tokens > 0) & (tokens < self.tokenizer.duration_base) & (np.arange(len(tokens)) % 2 == 0)

    def pitches(self, tokens: np.ndarray) -> np.ndarray:
        mask = self.pitch_mask(tokens)
        if self.mode == "performance":
            return tokens[mask] % 128
        return tokens[mask] - 1 + self.lowest

    def transpose_range(self, tokens: np.ndarray, max_shift: int) -> list[int]:
        """Shifts in ``-max_shift..max_shift`` that keep every pitch in ``lowest..highest`` (0 always)."""
        p = self.pitches(tokens)
        if not len(p):
            return [0]
        return [s for s in range(-max_shift, max_shift + 1) if self.lowest <= p.min() + s and p.max() + s <= self.highest]

    def transpose(self, tokens: np.ndarray, shift: int) -> np.ndarray:
        out = tokens.copy()
        out[self.pitch_mask(tokens)] += shift
        return out

    # -------------------------------------------------------------- generation

    def allowed(self, position: int) -> torch.Tensor:
        """(V,) bool: the tokens that may come at ``position`` of a piece (never bos; melody: a pitch at even
        positions and a duration at odd ones; performance: notes inside lowest..highest only)."""
        ok = torch.zeros(self.vocab_size, dtype=torch.bool)
        tok = self.tokenizer
        if self.mode == "melody":
            ok[:tok.duration_base] = position % 2 == 0
            ok[tok.duration_base:tok.vocab_size] = position % 2 == 1
            return ok
        ok[tok.shift_base:tok.vocab_size] = True
        ok[self.lowest:self.highest + 1] = True
        ok[tok.note_off_base + self.lowest:tok.note_off_base + self.highest + 1] = True
        return ok


# ------------------------------------------------------------------------------ pieces

def load_event_pieces(cfg: MusicDataConfig, seed: int) -> Pieces:
    """The pieces of ``cfg.data`` as token arrays, split as the roll mode splits them."""
    codec = EventCodec.of(cfg)
    if not cfg.data:
        chorales = bach_chorales(cfg.steps_per_quarter, lowest=cfg.lowest, highest=cfg.highest,
                                 limit=cfg.chorales or None, cache_dir=cache_dir(cfg))
        pieces = [codec.roll_tokens(roll, f"music21 chorale {name}") for name, roll in chorales]
        return Pieces(*seeded_split(pieces, cfg, seed, "music21 Bach chorales"), source="music21 Bach chorales")
    path = Path(cfg.data)
    if path.is_dir():
        pieces, skipped = midi_folder_tokens(path, codec, skip_bad=cfg.skip_bad)
        return Pieces(*seeded_split(pieces, cfg, seed, str(path)), source=str(path), skipped=skipped)
    if path.suffix.lower() in POLY_SUFFIXES:
        ps = read_poly_set(path, cfg.lowest, cfg.highest)
        split = {name: [codec.roll_tokens(r, f"{path} {name}[{i}]") for i, r in enumerate(getattr(ps, name))]
                 for name in ("train", "valid", "test")}
        return Pieces(**split, source=str(path))
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    raise DataError(f"{path}: expected a folder of MIDI files or a 2012-format file "
                    f"({', '.join(POLY_SUFFIXES)}), got a {path.suffix or 'suffix-less'} file")


def midi_folder_tokens(folder: Path, codec: EventCodec, *, skip_bad: bool) -> tuple[list[np.ndarray], list]:
    """The tokens of every MIDI file under ``folder`` (sorted); a bad file raises, or with ``skip_bad`` is
    listed with its reason."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no .mid or .midi files")
    pieces, skipped = [], []
    for path in files:
        try:
            pieces.append(codec.file_tokens(path))
        except DataError as err:
            if not skip_bad:
                raise
            skipped.append((str(path), str(err)))
    if not pieces:
        raise DataError(f"{folder}: all {len(files)} MIDI files were bad; first: {skipped[0][1]}")
    return pieces, skipped


def read_scored_events(path: str | Path, cfg: MusicDataConfig, seed: int, split: str) -> tuple[list[np.ndarray], str]:
    """The pieces ``rnnkit evaluate`` scores: one MIDI file whole, else the ``split`` of the data at ``path``."""
    path = Path(path)
    if path.suffix.lower() in MIDI_SUFFIXES:
        return [EventCodec.of(cfg).file_tokens(path)], "file"
    data = MusicDataConfig(**{**cfg.__dict__, "data": str(path)})
    return load_event_pieces(data, seed).split(split), split


# ------------------------------------------------------------------------------ batches

def pad_tokens(seqs: list[np.ndarray]) -> dict:
    """Token windows (N_i + 1,) -> {"inputs": (B, T) w[:-1] padded with 0, "targets": (B, T) w[1:] padded with
    IGNORE_INDEX, "lengths": (B,)}; T = max N_i."""
    T = max(len(s) - 1 for s in seqs)
    inputs = np.zeros((len(seqs), T), dtype=np.int64)
    targets = np.full((len(seqs), T), IGNORE_INDEX, dtype=np.int64)
    for k, s in enumerate(seqs):
        inputs[k, :len(s) - 1], targets[k, :len(s) - 1] = s[:-1], s[1:]
    return {"inputs": torch.from_numpy(inputs), "targets": torch.from_numpy(targets),
            "lengths": torch.tensor([len(s) - 1 for s in seqs], dtype=torch.long)}


def with_bos(tokens: np.ndarray, bos: int) -> np.ndarray:
    return np.concatenate([[bos], tokens]).astype(np.int64)


def eval_token_batches(pieces: list[np.ndarray], bos: int, max_tokens: int = EVAL_TOKENS) -> list[dict]:
    """Whole pieces (every token predicted, the first from bos) in length order, at most ``max_tokens`` a batch."""
    if not pieces:
        raise DataError("no pieces to score")
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    groups, group = [], []
    for i in order:
        if group and (len(group) + 1) * len(pieces[i]) > max_tokens:
            groups.append(group)
            group = []
        group.append(i)
    return [pad_tokens([with_bos(pieces[i], bos) for i in g]) for g in groups + [group]]


class TokenBatches:
    """Training batches drawn afresh each epoch from a generator seeded by ``(seed, epoch)`` (so a resumed run
    replays them): the pieces shuffled, each a random window of ``crop + 1`` tokens of ``[bos] + tokens``,
    transposed by a random shift in ``+-transpose`` semitones that keeps its pitches in range."""

    def __init__(self, pieces: list[np.ndarray], codec: EventCodec, batch_size: int, *, crop: int, transpose: int,
                 seed: int):
        if not pieces:
            raise DataError("no training pieces")
        self.pieces, self.codec, self.batch_size = pieces, codec, batch_size
        self.crop, self.transpose, self.seed = crop, transpose, seed

    def __len__(self) -> int:
        return math.ceil(len(self.pieces) / self.batch_size)

    def epoch(self, epoch: int) -> list[dict]:
        rng = np.random.default_rng([self.seed, epoch])
        chosen = []
        for i in rng.permutation(len(self.pieces)):
            tokens = self.pieces[i]
            if self.transpose:
                tokens = self.codec.transpose(tokens, int(rng.choice(self.codec.transpose_range(tokens, self.transpose))))
            seq = with_bos(tokens, self.codec.bos)
            if self.crop and len(seq) > self.crop + 1:
                start = int(rng.integers(0, len(seq) - self.crop))
                seq = seq[start:start + self.crop + 1]
            chosen.append(seq)
        return [pad_tokens(chosen[i:i + self.batch_size]) for i in range(0, len(chosen), self.batch_size)]

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[dict]:
        yield from self.epoch(epoch)[start:]

    def fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.codec, self.batch_size, self.crop, self.transpose, self.seed)).encode())
        for p in self.pieces:
            h.update(np.ascontiguousarray(p).tobytes() + b"|")
        return h.hexdigest()
