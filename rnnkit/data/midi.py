"""MIDI files <-> notes <-> piano rolls, with tempo maps read from every track.

Parsing uses ``mido`` (the library ``pretty_midi`` is built on).  ``pretty_midi`` itself reads
tempo changes only from track 0 of a type-1 file and warns about (then ignores) ones elsewhere;
here the tempo map is the union of the ``set_tempo`` events of *all* tracks, so a file whose
tempo changes sit on a note track still gets correct note times in seconds.

Two time bases:

* ticks / beats: a piano roll is quantised in steps per quarter note
  (``step = round(tick * steps_per_quarter / ticks_per_beat)``), which does not depend on tempo;
* seconds: :class:`Note` also carries ``start_s``/``end_s`` from the tempo map, for
  performance-style event tokens (:mod:`rnnkit.data.music_tokens`) and audio rendering.

A piano roll is a boolean array ``(T, P)`` for the pitches ``lowest .. lowest + P - 1``
(:class:`PianoRoll`), plus an ``onsets`` array of the same shape marking the frames where a
note starts, so that two repeated notes of one pitch stay two notes through a round trip.

Drums (MIDI channel 10, ``channel == 9`` here) are excluded.  Bad input raises
:class:`~rnnkit.data.readers.DataError` naming the file: a file mido cannot parse, a file with
no notes, a file with drum notes only, notes outside the configured pitch range.
:func:`load_midi_folder` can instead skip such files and count them (``skip_bad=True``), and
caches each file's piano roll on disk (keyed by path, mtime, size and the roll settings).
"""
from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rnnkit.atomic import atomic_save, save_npz
from .readers import DataError

DRUM_CHANNEL = 9            # MIDI channel 10, counted from zero
DEFAULT_TEMPO = 500_000     # microseconds per quarter note (120 bpm), as the MIDI standard says
CACHE_VERSION = 1


def _mido():
    try:
        import mido
    except ImportError as err:  # the optional "music" extra
        raise ImportError("MIDI support needs mido: pip install 'rnnkit[music]' (or pip install mido)") from err
    return mido


@dataclass(frozen=True)
class RollConfig:
    """How notes become a piano roll.

    steps_per_quarter: frames per quarter note (4 = sixteenth-note steps).
    lowest, highest: the MIDI pitch range kept, inclusive (21..108 is the 88-key piano).
    """
    steps_per_quarter: int = 4
    lowest: int = 21
    highest: int = 108

    def __post_init__(self):
        if not isinstance(self.steps_per_quarter, int) or self.steps_per_quarter < 1:
            raise ValueError(f"steps_per_quarter must be a positive integer, got {self.steps_per_quarter!r}")
        if not (0 <= self.lowest <= self.highest <= 127):
            raise ValueError(f"need 0 <= lowest <= highest <= 127, got lowest={self.lowest}, highest={self.highest}")

    @property
    def n_pitches(self) -> int:
        return self.highest - self.lowest + 1


@dataclass(frozen=True)
class Note:
    """One note: MIDI pitch and velocity, start/end in ticks and in seconds."""
    pitch: int
    velocity: int
    start_tick: int
    end_tick: int
    start_s: float
    end_s: float
    channel: int = 0
    program: int = 0


@dataclass
class TempoMap:
    """Tick -> seconds for a file: ``changes`` is ``[(tick, microseconds per quarter), ...]``."""
    ticks_per_beat: int
    changes: list[tuple[int, int]] = field(default_factory=lambda: [(0, DEFAULT_TEMPO)])

    def __post_init__(self):
        self._ticks = [t for t, _ in self.changes]
        # seconds elapsed at each change, accumulated segment by segment
        self._secs = [0.0]
        for (t0, tempo0), (t1, _) in zip(self.changes, self.changes[1:]):
            self._secs.append(self._secs[-1] + (t1 - t0) * tempo0 / 1e6 / self.ticks_per_beat)

    def seconds(self, tick: int) -> float:
        i = bisect.bisect_right(self._ticks, tick) - 1
        t0, tempo = self.changes[i]
        return self._secs[i] + (tick - t0) * tempo / 1e6 / self.ticks_per_beat


@dataclass
class MidiNotes:
    """Every pitched note of a file (drums dropped), sorted by start then pitch."""
    source: str
    notes: list[Note]
    tempo: TempoMap
    n_drum_notes: int = 0


@dataclass
class PianoRoll:
    """``frames`` (T, P) bool: pitch ``lowest + p`` sounds in frame t; ``onsets`` (T, P) bool: starts there."""
    frames: np.ndarray
    onsets: np.ndarray
    lowest: int
    steps_per_quarter: int

    def __post_init__(self):
        if self.frames.shape != self.onsets.shape or self.frames.ndim != 2:
            raise ValueError(f"frames and onsets must be equal (T, P) arrays, got {self.frames.shape} "
                             f"and {self.onsets.shape}")
        if np.any(self.onsets & ~self.frames):
            raise ValueError("an onset marks a frame where its pitch does not sound")


# -- reading --------------------------------------------------------------------------------------
def read_midi_notes(path: str | Path) -> MidiNotes:
    """Notes of a type-0 or type-1 MIDI file, timed with the tempo map of all its tracks."""
    mido = _mido()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such MIDI file")
    try:
        mid = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as err:
        raise DataError(f"{path}: not a readable MIDI file ({type(err).__name__}: {err})") from err
    if mid.type == 2:
        raise DataError(f"{path}: MIDI type 2 (independent sequences) is not supported; expected type 0 or 1")
    tpb = mid.ticks_per_beat
    if not isinstance(tpb, int) or tpb <= 0:
        raise DataError(f"{path}: unsupported time division {tpb!r}; expected ticks per quarter note")

    events = []   # (abs tick, track index, message), all tracks on one time line (types 0 and 1)
    for ti, track in enumerate(mid.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            events.append((tick, ti, msg))
    tempo_at = {}   # tick -> tempo; at one tick the event read last (the later track's) wins
    for t, _, m in events:
        if m.type == "set_tempo":
            tempo_at[t] = m.tempo
    tempo = TempoMap(tpb, [(0, tempo_at.pop(0, DEFAULT_TEMPO))] + sorted(tempo_at.items()))
    end_tick = max((t for t, _, _ in events), default=0)
    notes, n_drums = _pair_notes(events, tempo, end_tick)
    return MidiNotes(str(path), notes, tempo, n_drums)


def _pair_notes(events, tempo: TempoMap, end_tick: int) -> tuple[list[Note], int]:
    """note_on/note_off pairs, first-in first-out per (track, channel, pitch).

    A note never switched off ends at the file's last event.  ``note_on`` with velocity 0 is a
    note-off, as the MIDI standard says.
    """
    events = sorted(events, key=lambda e: (e[0], 0 if _is_off(e[2]) else 1))  # offs first at a tick
    open_notes: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    programs: dict[tuple[int, int], int] = {}
    notes, n_drums = [], 0
    for tick, ti, msg in events:
        if msg.type == "program_change":
            programs[(ti, msg.channel)] = msg.program
        elif msg.type in ("note_on", "note_off"):
            key = (ti, msg.channel, msg.note)
            if _is_off(msg):
                if open_notes.get(key):
                    start, vel = open_notes[key].pop(0)
                    n_drums += _add(notes, msg.channel, msg.note, vel, start, tick, tempo, programs, ti)
            else:
                open_notes.setdefault(key, []).append((tick, msg.velocity))
    for (ti, ch, pitch), starts in open_notes.items():
        for start, vel in starts:
            n_drums += _add(notes, ch, pitch, vel, start, max(end_tick, start), tempo, programs, ti)
    notes.sort(key=lambda n: (n.start_tick, n.pitch, n.end_tick))
    return notes, n_drums


def _is_off(msg) -> bool:
    return msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0)


def _add(notes, channel, pitch, vel, start, end, tempo, programs, track) -> int:
    if channel == DRUM_CHANNEL:
        return 1
    notes.append(Note(pitch, vel, start, end, tempo.seconds(start), tempo.seconds(end), channel,
                      programs.get((track, channel), 0)))
    return 0


def notes_to_roll(midi: MidiNotes, cfg: RollConfig) -> PianoRoll:
    """Quantise ``midi``'s notes to ``cfg.steps_per_quarter``; every note lasts at least one step."""
    if not midi.notes:
        what = "drum notes only (channel 10 is excluded)" if midi.n_drum_notes else "no notes"
        raise DataError(f"{midi.source}: {what}; expected pitched notes")
    outside = sorted({n.pitch for n in midi.notes if not cfg.lowest <= n.pitch <= cfg.highest})
    if outside:
        raise DataError(f"{midi.source}: pitches {outside} lie outside the configured range "
                        f"{cfg.lowest}..{cfg.highest}; widen lowest/highest or transpose the file")
    scale = cfg.steps_per_quarter / midi.tempo.ticks_per_beat
    spans = []
    for n in midi.notes:
        start = int(round(n.start_tick * scale))
        end = max(int(round(n.end_tick * scale)), start + 1)
        spans.append((n.pitch - cfg.lowest, start, end))
    T = max(end for _, _, end in spans)
    frames = np.zeros((T, cfg.n_pitches), dtype=bool)
    onsets = np.zeros_like(frames)
    for p, start, end in spans:
        frames[start:end, p] = True
    for p, start, _ in spans:
        onsets[start, p] = True
    return PianoRoll(frames, onsets, cfg.lowest, cfg.steps_per_quarter)


def read_midi_roll(path: str | Path, cfg: RollConfig = RollConfig()) -> PianoRoll:
    """The piano roll of one MIDI file (raises DataError for bad input)."""
    return notes_to_roll(read_midi_notes(path), cfg)


# -- writing --------------------------------------------------------------------------------------
def roll_to_notes(frames: np.ndarray, lowest: int, onsets: np.ndarray | None = None) -> list[tuple[int, int, int]]:
    """``[(pitch, start_step, end_step), ...]``: each run of sounding frames, split at ``onsets``."""
    frames = np.asarray(frames, dtype=bool)                       # (T, P)
    if frames.ndim != 2:
        raise ValueError(f"frames must be (T, P), got shape {frames.shape}")
    onsets = np.zeros_like(frames) if onsets is None else np.asarray(onsets, dtype=bool)
    silent = np.zeros((1, frames.shape[1]), dtype=bool)
    before = np.vstack([silent, frames[:-1]])                     # (T, P) sounding one frame earlier
    after = np.vstack([frames[1:], silent])                       # (T, P) sounding one frame later
    next_onset = np.vstack([onsets[1:], silent])
    starts = frames & (~before | onsets)
    ends = frames & (~after | next_onset)                         # last frame of each note
    out = []
    for p in range(frames.shape[1]):
        s_t, e_t = np.flatnonzero(starts[:, p]), np.flatnonzero(ends[:, p])
        out += [(lowest + p, int(s), int(e) + 1) for s, e in zip(s_t, e_t)]
    out.sort(key=lambda n: (n[1], n[0]))
    return out


def write_midi(notes: list, path: str | Path, *, steps_per_quarter: int = 4,
               bpm: float = 120.0, velocity: int = 80, program: int = 0, ticks_per_beat: int = 480) -> None:
    """Write a type-1 file (tempo on track 0, notes on track 1), atomically.

    ``notes`` are ``(pitch, start_step, end_step)`` triples in steps of ``1/steps_per_quarter``
    quarter notes, or notes with ``pitch``, ``velocity``, ``start_s``, ``end_s`` (:class:`Note`,
    ``music_tokens.PerfNote``), timed by their seconds at ``bpm``, with their velocity.
    """
    mido = _mido()
    if ticks_per_beat % steps_per_quarter:
        raise ValueError(f"ticks_per_beat={ticks_per_beat} must be a multiple of steps_per_quarter={steps_per_quarter}")
    ticks = []   # (tick, is_on, pitch, velocity)
    for n in notes:
        if hasattr(n, "start_s"):   # a Note, or any note timed in seconds (music_tokens.PerfNote)
            start = int(round(n.start_s * bpm / 60 * ticks_per_beat))
            end = max(int(round(n.end_s * bpm / 60 * ticks_per_beat)), start + 1)
            pitch, vel = n.pitch, n.velocity
        else:
            pitch, s, e = n
            step = ticks_per_beat // steps_per_quarter
            start, end, vel = s * step, e * step, velocity
        if not 0 <= pitch <= 127 or not 1 <= vel <= 127 or end <= start:
            raise ValueError(f"bad note {n!r}: need pitch 0..127, velocity 1..127, end after start")
        ticks += [(start, True, pitch, vel), (end, False, pitch, 0)]
    ticks.sort(key=lambda e: (e[0], e[1]))   # note-offs before note-ons at one tick
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    track = mido.MidiTrack([mido.Message("program_change", program=program, channel=0, time=0)])
    now = 0
    for tick, is_on, pitch, vel in ticks:
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=vel, channel=0, time=tick - now))
        now = tick
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat, tracks=[meta, track])
    atomic_save(path, mid.save)


def write_roll_midi(roll: PianoRoll, path: str | Path, *, bpm: float = 120.0, velocity: int = 80) -> None:
    """A piano roll to a MIDI file (every run of frames, split at onsets, is one note)."""
    write_midi(roll_to_notes(roll.frames, roll.lowest, roll.onsets), path,
               steps_per_quarter=roll.steps_per_quarter, bpm=bpm, velocity=velocity)


# -- augmentation ---------------------------------------------------------------------------------
def transpose(roll: PianoRoll, semitones: int) -> PianoRoll:
    """Shift every note by ``semitones`` inside the same pitch range; raises if a note would fall off."""
    T, P = roll.frames.shape
    used = np.flatnonzero(roll.frames.any(axis=0))
    if used.size and (used[0] + semitones < 0 or used[-1] + semitones >= P):
        raise ValueError(f"transposing by {semitones} moves pitches {roll.lowest + used[0]}.."
                         f"{roll.lowest + used[-1]} outside {roll.lowest}..{roll.lowest + P - 1}")
    frames, onsets = np.zeros_like(roll.frames), np.zeros_like(roll.onsets)
    lo, hi = max(0, -semitones), min(P, P - semitones)
    frames[:, lo + semitones:hi + semitones] = roll.frames[:, lo:hi]
    onsets[:, lo + semitones:hi + semitones] = roll.onsets[:, lo:hi]
    return PianoRoll(frames, onsets, roll.lowest, roll.steps_per_quarter)


def transpose_range(frames: np.ndarray, max_shift: int) -> list[int]:
    """The shifts in ``-max_shift..max_shift`` that keep every note of ``frames`` (T, P) in range."""
    used = np.flatnonzero(np.asarray(frames).any(axis=0))
    P = frames.shape[1]
    if not used.size:
        return list(range(-max_shift, max_shift + 1))
    return [s for s in range(-max_shift, max_shift + 1) if used[0] + s >= 0 and used[-1] + s < P]


def random_transpose(roll: PianoRoll, max_shift: int, rng: np.random.Generator) -> tuple[PianoRoll, int]:
    """Transposition augmentation: a uniformly drawn shift among those that keep all notes in range."""
    shift = int(rng.choice(transpose_range(roll.frames, max_shift)))
    return transpose(roll, shift), shift


# -- folders and the parse-once cache -------------------------------------------------------------
@dataclass
class MidiFolder:
    """The rolls of a folder's MIDI files and the files skipped as bad, with the reason for each."""
    rolls: list[tuple[str, PianoRoll]]
    skipped: list[tuple[str, str]]


def load_midi_folder(folder: str | Path, cfg: RollConfig = RollConfig(), *, cache_dir: str | Path | None = None,
                     skip_bad: bool = False) -> MidiFolder:
    """Every ``*.mid``/``*.midi`` file under ``folder`` (sorted) as a piano roll.

    A bad file raises DataError unless ``skip_bad``; then it is listed in ``skipped``.  With
    ``cache_dir`` each file is parsed once: its roll (or its error) is stored under a key made of
    the file's absolute path, mtime, size and ``cfg``, written atomically.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".mid", ".midi"))
    if not files:
        raise DataError(f"{folder}: no .mid or .midi files")
    rolls, skipped = [], []
    for path in files:
        try:
            roll = _cached_roll(path, cfg, cache_dir)
        except DataError as err:
            if not skip_bad:
                raise
            skipped.append((str(path), str(err)))
            continue
        rolls.append((str(path), roll))
    if not rolls:
        raise DataError(f"{folder}: all {len(files)} MIDI files were bad; first: {skipped[0][1]}")
    return MidiFolder(rolls, skipped)


def cache_key(path: Path, cfg: RollConfig) -> str:
    st = path.stat()
    ident = {"path": str(path.resolve()), "mtime_ns": st.st_mtime_ns, "size": st.st_size,
             "cfg": asdict(cfg), "version": CACHE_VERSION}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def _cached_roll(path: Path, cfg: RollConfig, cache_dir) -> PianoRoll:
    if cache_dir is None:
        return read_midi_roll(path, cfg)
    entry = Path(cache_dir) / f"{cache_key(path, cfg)}.npz"
    if entry.exists():
        with np.load(entry, allow_pickle=False) as z:
            if "error" in z:
                raise DataError(str(z["error"]))
            return PianoRoll(z["frames"], z["onsets"], cfg.lowest, cfg.steps_per_quarter)
    try:
        roll = read_midi_roll(path, cfg)
    except DataError as err:
        save_npz(entry, error=np.array(str(err)))
        raise
    save_npz(entry, frames=roll.frames, onsets=roll.onsets)
    return roll
