"""Music as token sequences, for a language model over events.

:class:`PerformanceTokenizer`: the event vocabulary of Performance RNN (Oore, Simon, Dieleman, Eck
and Simonyan, "This time with feeling", 2018): 128 NOTE_ON, 128 NOTE_OFF, 100 TIME_SHIFT (10 ms
to 1 s in 10 ms steps) and 32 VELOCITY events, 388 tokens.  Input and output are
:class:`PerfNote` ``(pitch, velocity, start_s, end_s)``; times are quantised to the 10 ms grid and
velocities to 32 bins of 4, so ``decode(encode(notes))`` equals the notes on that grid and
``encode(decode(tokens)) == tokens`` for tokens made by ``encode``.

:class:`MelodyTokenizer`: a monophonic melody as alternating pitch and duration tokens
``[P, D, P, D, ...]``; a pitch token is a rest or a MIDI pitch in ``lowest..highest`` and a
duration token counts grid steps ``1..max_steps``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_PITCHES = 128


@dataclass(frozen=True)
class PerfNote:
    pitch: int
    velocity: int
    start_s: float
    end_s: float


def perf_notes(notes) -> list[PerfNote]:
    """Notes timed in seconds (e.g. ``read_midi_notes(path).notes``) as :class:`PerfNote`."""
    return [PerfNote(n.pitch, n.velocity, n.start_s, n.end_s) for n in notes]


@dataclass(frozen=True)
class PerformanceTokenizer:
    """NOTE_ON 0..127 | NOTE_OFF 128..255 | TIME_SHIFT 256..355 (1..100 steps) | VELOCITY 356..387 (bins 0..31)."""
    step_s: float = 0.01
    max_shift_steps: int = 100
    velocity_bins: int = 32

    def __post_init__(self):
        if self.step_s <= 0 or self.max_shift_steps < 1 or not 1 <= self.velocity_bins <= 128:
            raise ValueError(f"need step_s > 0, max_shift_steps >= 1, 1 <= velocity_bins <= 128; got {self}")

    # token layout
    @property
    def note_off_base(self) -> int:
        return N_PITCHES

    @property
    def shift_base(self) -> int:
        return 2 * N_PITCHES

    @property
    def velocity_base(self) -> int:
        return 2 * N_PITCHES + self.max_shift_steps

    @property
    def vocab_size(self) -> int:
        return self.velocity_base + self.velocity_bins

    def velocity_bin(self, velocity: int) -> int:
        return min(self.velocity_bins - 1, velocity * self.velocity_bins // 128)

    def bin_velocity(self, b: int) -> int:
        """A velocity inside bin ``b`` (its middle), so that binning it again gives ``b``."""
        lo = -(-b * 128 // self.velocity_bins)
        hi = -(-(b + 1) * 128 // self.velocity_bins) - 1
        return max(1, min(127, (lo + hi) // 2))

    def quantise(self, notes: list[PerfNote]) -> list[PerfNote]:
        """The notes as ``decode(encode(notes))`` gives them back: on the grid, at bin velocities,
        at least one step long, a same-pitch note cut where the next one starts."""
        grid = sorted((round(n.start_s / self.step_s), n.pitch, round(n.end_s / self.step_s), n.velocity)
                      for n in notes)
        out, last = [], {}
        for start, pitch, end, vel in grid:
            if not 0 <= pitch < N_PITCHES or not 1 <= vel <= 127 or start < 0:
                raise ValueError(f"bad note pitch={pitch} velocity={vel} start_step={start}: "
                                 "need pitch 0..127, velocity 1..127, start >= 0")
            # a note of this pitch still sounds: cut it here (or drop it if it starts here too)
            if pitch in last and out[last[pitch]] is not None and out[last[pitch]][2] > start:
                p, s, _, v = out[last[pitch]]
                if s == start:
                    out[last[pitch]] = None                         # same onset: the later note wins
                else:
                    out[last[pitch]] = (p, s, start, v)
            last[pitch] = len(out)
            out.append((pitch, start, max(end, start + 1), self.bin_velocity(self.velocity_bin(vel))))
        return [PerfNote(p, v, s * self.step_s, e * self.step_s) for p, s, e, v in filter(None, out)]

    def encode(self, notes: list[PerfNote]) -> list[int]:
        events = []   # (step, 0 = off | 1 = on, pitch, velocity)
        for n in self.quantise(notes):
            s, e = round(n.start_s / self.step_s), round(n.end_s / self.step_s)
            events += [(s, 1, n.pitch, n.velocity), (e, 0, n.pitch, 0)]
        events.sort()
        tokens, now, vel_bin = [], 0, None
        for step, is_on, pitch, vel in events:
            gap = step - now
            while gap > 0:
                shift = min(gap, self.max_shift_steps)
                tokens.append(self.shift_base + shift - 1)
                gap -= shift
            now = step
            if is_on:
                b = self.velocity_bin(vel)
                if b != vel_bin:
                    tokens.append(self.velocity_base + b)
                    vel_bin = b
                tokens.append(pitch)
            else:
                tokens.append(self.note_off_base + pitch)
        return tokens

    def decode(self, tokens, *, strict: bool = False) -> list[PerfNote]:
        """Notes from tokens.  Generated tokens may switch off a silent pitch or leave a note on:
        with ``strict`` that raises; otherwise the stray NOTE_OFF is ignored, an unfinished note
        ends at the last time step (one step after its start at least), and a NOTE_ON of a
        sounding pitch first ends it."""
        now, vel, sounding, out = 0, self.bin_velocity(self.velocity_bins // 2), {}, []
        for i, tok in enumerate(int(t) for t in tokens):
            if not 0 <= tok < self.vocab_size:
                raise ValueError(f"token {i} is {tok}; expected 0..{self.vocab_size - 1}")
            if tok < self.note_off_base:
                if tok in sounding:
                    if strict:
                        raise ValueError(f"token {i}: NOTE_ON {tok} while that pitch sounds")
                    out.append(self._note(tok, *sounding.pop(tok), now))
                sounding[tok] = (now, vel)
            elif tok < self.shift_base:
                pitch = tok - self.note_off_base
                if pitch in sounding:
                    out.append(self._note(pitch, *sounding.pop(pitch), now))
                elif strict:
                    raise ValueError(f"token {i}: NOTE_OFF {pitch} for a pitch not sounding")
            elif tok < self.velocity_base:
                now += tok - self.shift_base + 1
            else:
                vel = self.bin_velocity(tok - self.velocity_base)
        if sounding and strict:
            raise ValueError(f"pitches {sorted(sounding)} never switched off")
        out += [self._note(p, s, v, max(now, s + 1)) for p, (s, v) in sounding.items()]
        return sorted(out, key=lambda n: (n.start_s, n.pitch))

    def _note(self, pitch, start, vel, end) -> PerfNote:
        return PerfNote(pitch, vel, start * self.step_s, max(end, start + 1) * self.step_s)

    def describe(self, tok: int) -> str:
        """``NOTE_ON 60``, ``TIME_SHIFT 25`` (steps), ``VELOCITY 20`` (bin) for one token."""
        if tok < self.note_off_base:
            return f"NOTE_ON {tok}"
        if tok < self.shift_base:
            return f"NOTE_OFF {tok - self.note_off_base}"
        if tok < self.velocity_base:
            return f"TIME_SHIFT {tok - self.shift_base + 1}"
        return f"VELOCITY {tok - self.velocity_base}"


@dataclass(frozen=True)
class MelodyTokenizer:
    """Token 0 = rest, 1.. = pitches ``lowest..highest``; then durations ``1..max_steps`` steps.

    A melody is ``[(pitch or None, steps), ...]``; its tokens alternate pitch and duration.  A rest
    longer than ``max_steps`` becomes several rests; a longer note is an error (it has no token).
    """
    lowest: int = 36
    highest: int = 96
    max_steps: int = 32

    def __post_init__(self):
        if not 0 <= self.lowest <= self.highest <= 127 or self.max_steps < 1:
            raise ValueError(f"need 0 <= lowest <= highest <= 127 and max_steps >= 1; got {self}")

    @property
    def rest(self) -> int:
        return 0

    @property
    def duration_base(self) -> int:
        return self.highest - self.lowest + 2

    @property
    def vocab_size(self) -> int:
        return self.duration_base + self.max_steps

    def encode(self, melody: list[tuple[int | None, int]]) -> list[int]:
        tokens = []
        for i, (pitch, steps) in enumerate(melody):
            if steps < 1:
                raise ValueError(f"note {i}: duration {steps} steps; expected >= 1")
            if pitch is None:
                while steps > 0:
                    d = min(steps, self.max_steps)
                    tokens += [self.rest, self.duration_base + d - 1]
                    steps -= d
                continue
            if not self.lowest <= pitch <= self.highest:
                raise ValueError(f"note {i}: pitch {pitch} outside {self.lowest}..{self.highest}")
            if steps > self.max_steps:
                raise ValueError(f"note {i}: {steps} steps is longer than max_steps={self.max_steps}")
            tokens += [pitch - self.lowest + 1, self.duration_base + steps - 1]
        return tokens

    def decode(self, tokens) -> list[tuple[int | None, int]]:
        tokens = [int(t) for t in tokens]
        if len(tokens) % 2:
            raise ValueError(f"{len(tokens)} tokens; a melody alternates pitch and duration, so the count is even")
        out = []
        for i in range(0, len(tokens), 2):
            p, d = tokens[i], tokens[i + 1]
            if not 0 <= p < self.duration_base:
                raise ValueError(f"token {i} is {p}; expected a pitch token 0..{self.duration_base - 1}")
            if not self.duration_base <= d < self.vocab_size:
                raise ValueError(f"token {i + 1} is {d}; expected a duration token "
                                 f"{self.duration_base}..{self.vocab_size - 1}")
            out.append((None if p == self.rest else p - 1 + self.lowest, d - self.duration_base + 1))
        return out


def melody_from_roll(frames: np.ndarray, lowest: int, onsets: np.ndarray | None = None,
                     policy: str = "error") -> list[tuple[int | None, int]]:
    """``[(pitch or None, steps), ...]`` from a roll (T, P).  A frame with several notes raises
    (``policy="error"``) or keeps its highest (``policy="highest"``, the skyline melody)."""
    if policy not in ("error", "highest"):
        raise ValueError(f"policy must be 'error' or 'highest', got {policy!r}")
    frames = np.asarray(frames, dtype=bool)
    onsets = np.zeros_like(frames) if onsets is None else np.asarray(onsets, dtype=bool)
    line = []
    for t, frame in enumerate(frames):
        active = np.flatnonzero(frame)
        if len(active) > 1 and policy == "error":
            raise ValueError(f"frame {t} has {len(active)} notes {(active + lowest).tolist()}; a melody has one "
                             "(policy='highest' keeps the top note)")
        p = int(active[-1]) if len(active) else None
        line.append((None if p is None else p + lowest, p is not None and bool(onsets[t, p])))
    out = []
    for t, (pitch, onset) in enumerate(line):
        if out and out[-1][0] == pitch and not onset:
            out[-1][1] += 1
        else:
            out.append([pitch, 1])
    return [(p, d) for p, d in out]
