"""Hear and see piano rolls: a small additive synthesiser to WAV, FluidSynth when given a SoundFont,
and a piano-roll picture (PNG).

The synthesiser sums a few harmonics per note (``HARMONICS``: amplitude of partial k+1) under a
linear attack, an exponential decay and a linear release after the note ends, scales by velocity
and normalises the peak to 0.9.  It needs numpy only.  ``soundfont=...`` renders with FluidSynth
instead; that needs the ``pyfluidsynth`` package (and the FluidSynth library) and raises if they
are missing rather than falling back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.atomic import atomic_save
from .audio import write_wav
from .midi import PianoRoll, read_midi_notes, roll_to_notes
from .readers import DataError

HARMONICS = (1.0, 0.5, 0.3, 0.15)


@dataclass(frozen=True)
class Tone:
    """A note to sound: MIDI pitch, velocity 1..127, start and end in seconds."""
    pitch: int
    velocity: int
    start_s: float
    end_s: float


def pitch_hz(pitch: int) -> float:
    """Equal temperament, A4 (MIDI 69) = 440 Hz."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def synthesize(tones: list[Tone], sample_rate: int = 22050, *, attack_s: float = 0.01, decay_s: float = 1.0,
               release_s: float = 0.08, tail_s: float = 0.1) -> np.ndarray:
    """Mono float32 audio (N,) in [-1, 1]: every tone's harmonics under its envelope."""
    end = max((t.end_s for t in tones), default=0.0) + release_s + tail_s
    audio = np.zeros(int(np.ceil(end * sample_rate)), dtype=np.float64)
    for t in tones:
        if t.end_s <= t.start_s or not 0 <= t.pitch <= 127:
            raise ValueError(f"bad tone {t}: need end after start and pitch 0..127")
        n_on = int(round((t.end_s - t.start_s) * sample_rate))
        n = n_on + int(release_s * sample_rate)
        time = np.arange(n) / sample_rate                                     # (n,)
        env = np.minimum(1.0, time / attack_s) * np.exp(-time / decay_s)
        env[n_on:] *= np.linspace(1.0, 0.0, n - n_on, endpoint=False)         # release
        f0 = pitch_hz(t.pitch)
        wave_ = sum(a * np.sin(2 * np.pi * f0 * (k + 1) * time)
                    for k, a in enumerate(HARMONICS) if f0 * (k + 1) < sample_rate / 2)
        start = int(round(t.start_s * sample_rate))
        audio[start:start + n] += (t.velocity / 127) * env * wave_
    peak = np.abs(audio).max(initial=0.0)
    return (audio * (0.9 / peak) if peak > 0.9 else audio).astype(np.float32)


def roll_tones(roll: PianoRoll, bpm: float = 120.0, velocity: int = 80) -> list[Tone]:
    """The notes of a piano roll (split at its onsets), timed at ``bpm``."""
    step_s = 60.0 / bpm / roll.steps_per_quarter
    notes = roll_to_notes(roll.frames, roll.lowest, roll.onsets)
    return [Tone(p, velocity, s * step_s, e * step_s) for p, s, e in notes]


def midi_tones(path: str | Path) -> list[Tone]:
    """The pitched notes of a MIDI file, timed by its tempo map."""
    return [Tone(n.pitch, max(1, n.velocity), n.start_s, n.end_s) for n in read_midi_notes(path).notes]


def render_wav(tones: list[Tone], path: str | Path, *, sample_rate: int = 22050,
               soundfont: str | Path | None = None) -> np.ndarray:
    """Render tones to a WAV file (the built-in synthesiser, or FluidSynth with ``soundfont``)."""
    audio = synthesize(tones, sample_rate) if soundfont is None else fluidsynth_render(tones, soundfont, sample_rate)
    write_wav(path, audio, sample_rate)
    return audio


def fluidsynth_available() -> bool:
    """Whether pyfluidsynth imports, which needs the FluidSynth shared library too."""
    try:
        import fluidsynth  # noqa: F401
    except ImportError:
        return False
    return True


def fluidsynth_render(tones: list[Tone], soundfont: str | Path, sample_rate: int = 44100,
                      program: int = 0) -> np.ndarray:
    """Stereo float32 audio (N, 2) from FluidSynth with the given SoundFont (General MIDI ``program``)."""
    soundfont = Path(soundfont)
    if not soundfont.is_file():
        raise DataError(f"{soundfont}: no such SoundFont file")
    try:
        import fluidsynth
    except ImportError as err:
        raise ImportError("rendering with a SoundFont needs pyfluidsynth and the FluidSynth library "
                          "(pip install pyfluidsynth; Debian/Ubuntu: apt install libfluidsynth3); without soundfont= the built-in synthesiser is used") from err
    synth = fluidsynth.Synth(samplerate=float(sample_rate))
    try:
        sfid = synth.sfload(str(soundfont))
        if sfid < 0:
            raise DataError(f"{soundfont}: FluidSynth could not load this SoundFont")
        synth.program_select(0, sfid, 0, program)
        events = sorted([(t.start_s, 1, t.pitch, t.velocity) for t in tones] +
                        [(t.end_s, 0, t.pitch, 0) for t in tones])
        chunks, now = [], 0
        for sec, is_on, pitch, vel in events + [(events[-1][0] + 1.0 if events else 1.0, -1, 0, 0)]:
            frames = int(round(sec * sample_rate)) - now
            if frames > 0:
                chunks.append(np.asarray(synth.get_samples(frames), dtype=np.float32).reshape(-1, 2) / 32768)
                now += frames
            if is_on == 1:
                synth.noteon(0, pitch, vel)
            elif is_on == 0:
                synth.noteoff(0, pitch)
    finally:
        synth.delete()
    return np.concatenate(chunks) if chunks else np.zeros((0, 2), dtype=np.float32)


def save_roll_png(frames: np.ndarray, path: str | Path, lowest: int, *, steps_per_quarter: int | None = None,
                  title: str | None = None) -> None:
    """A piano-roll picture: time across, pitch up, written atomically (matplotlib, Agg backend)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    frames = np.asarray(frames).astype(bool)
    if frames.ndim != 2:
        raise ValueError(f"frames must be (T, P), got shape {frames.shape}")
    T, P = frames.shape
    fig = Figure(figsize=(min(16, 2 + T / 16), min(8, 1.5 + P / 16)))
    ax = fig.add_subplot()
    ax.imshow(frames.T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(-0.5, T - 0.5, lowest - 0.5, lowest + P - 0.5))
    ax.set_xlabel("step" if steps_per_quarter is None else f"step ({steps_per_quarter} per quarter note)")
    ax.set_ylabel("MIDI pitch")
    cs = [p for p in range(lowest, lowest + P) if p % 12 == 0]
    ax.set_yticks(cs, [f"C{p // 12 - 1}" for p in cs])
    if title:
        ax.set_title(title)
    fig.tight_layout()
    atomic_save(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=80))
