"""Audio files in and out: read through ``soundfile``, resample, mix down to mono, write atomically.

``read_audio(path, sample_rate)`` returns a float32 mono waveform (N,) at ``sample_rate`` Hz in
[-1, 1]; WAV, FLAC and OGG/Vorbis are read (whatever libsndfile reads).  ``read_waves`` reads the
files a manifest names, one at a time, naming the manifest line on failure (or skipping, with
``--skip-bad``); the tasks' audio loaders go through it.  Resampling is
polyphase filtering with a Kaiser-windowed FIR (``scipy.signal.resample_poly``), the rational
factor reduced by the gcd of the two rates.  Bad files raise :class:`DataError` naming the
file and what was expected.  ``write_wav`` writes 16-bit PCM (standard library ``wave``) through a temporary file and
``os.replace`` so a reader never sees half a file.
"""
from __future__ import annotations

import io
import wave as wavefile
from math import gcd
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from rnnkit.atomic import atomic_save
from rnnkit.data.readers import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
#: a waveform whose peak absolute value is below this is treated as silence
SILENCE_PEAK = 1e-4


def _soundfile():
    try:
        import soundfile
    except ImportError as err:
        raise ImportError("reading audio needs the 'soundfile' package: pip install 'rnnkit[speech]' "
                          "(or pip install soundfile)") from err
    return soundfile


def resample(wave: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """``wave`` (N,) or (N, C) at ``orig_rate`` Hz -> the same signal at ``target_rate`` Hz (float32)."""
    if orig_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {target_rate}")
    if orig_rate == target_rate:
        return np.asarray(wave, dtype=np.float32)
    from scipy.signal import resample_poly
    g = gcd(int(orig_rate), int(target_rate))
    up, down = int(target_rate) // g, int(orig_rate) // g
    return resample_poly(np.asarray(wave, dtype=np.float64), up, down, axis=0).astype(np.float32)


def to_mono(wave: np.ndarray) -> np.ndarray:
    """(N,) or (N, C) -> (N,) by averaging the channels."""
    wave = np.asarray(wave, dtype=np.float32)
    return wave.mean(axis=1) if wave.ndim == 2 else wave


def read_audio(path: str | Path, sample_rate: int, *, allow_silence: bool = False) -> np.ndarray:
    """The mono float32 waveform (N,) of ``path`` at ``sample_rate`` Hz.

    Raises DataError for a missing, empty, non-audio, zero-length or (unless allow_silence)
    all-silent file.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such audio file (expected a WAV, FLAC or OGG file)")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a WAV, FLAC or OGG file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty, expected a WAV, FLAC or OGG file")
    soundfile = _soundfile()
    try:
        wave, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise DataError(f"{path}: not a readable audio file ({err}); expected WAV, FLAC or OGG") from err
    if wave.shape[0] == 0:
        raise DataError(f"{path}: audio has zero samples, expected a non-empty recording")
    wave = to_mono(wave)
    if not allow_silence and float(np.abs(wave).max()) < SILENCE_PEAK:
        raise DataError(f"{path}: audio is all silence (peak below {SILENCE_PEAK}), expected speech")
    return resample(wave, int(rate), sample_rate)


def read_waves(paths: Sequence[str | Path], sample_rate: int, *, wheres: Sequence[str] | None = None,
               problems: list[str] | None = None, min_samples: int = 1,
               check: Callable[[np.ndarray], str | None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(i, wave)`` for each readable ``paths[i]``: :func:`read_audio` at ``sample_rate`` (mono float32 (N,)).

    A file that cannot be read, has fewer than ``min_samples`` samples, or whose wave ``check`` finds wrong
    (``check(wave)`` returns what is wrong, e.g. a length limit, or None) is a :class:`DataError` whose
    message starts with ``wheres[i]`` (the manifest line that named the file) when that is not the file
    itself.  Given a ``problems`` list (the ``--skip-bad`` mode), the file is skipped instead and the
    message appended there.  One file is decoded at a time, so callers can featurise as they go.
    """
    if wheres is not None and len(wheres) != len(paths):
        raise ValueError(f"wheres has {len(wheres)} entries for {len(paths)} paths")
    for i, path in enumerate(paths):
        try:
            wave = read_audio(path, sample_rate)
            if wave.shape[0] < min_samples:
                raise DataError(f"{path}: only {wave.shape[0]} samples at {sample_rate} Hz, expected at least "
                                f"{min_samples}")
            problem = check(wave) if check is not None else None
            if problem:
                raise DataError(f"{path}: {problem}")
        except DataError as err:
            where = str(path) if wheres is None else wheres[i]
            message = str(err) if where == str(path) else f"{where}: {err}"
            if problems is None:
                raise DataError(message) from None
            problems.append(message)
            continue
        yield i, wave


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file header (no decoding)."""
    seconds, _, _ = audio_format(path)
    return seconds


def audio_format(path: str | Path) -> tuple[float, int, int]:
    """``(seconds, sample rate, channels)`` from the file header (no decoding)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such audio file")
    soundfile = _soundfile()
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise DataError(f"{path}: not a readable audio file ({err}); expected WAV, FLAC or OGG") from err
    return info.frames / info.samplerate, int(info.samplerate), int(info.channels)


def _pcm16(wave: np.ndarray) -> tuple[bytes, int]:
    """``wave`` (N,) or (N, C) float in [-1, 1] -> (little-endian 16-bit PCM frames, channel count)."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim not in (1, 2) or wave.shape[0] == 0:
        raise ValueError(f"wave must be a non-empty (N,) or (N, C) array, got shape {wave.shape}")
    channels = 1 if wave.ndim == 1 else wave.shape[1]
    pcm = np.round(np.clip(wave, -1.0, 1.0) * 32767).astype("<i2")  # (N,) or (N, C), interleaved by row
    return pcm.tobytes(), channels


def _write_pcm16(target, wave: np.ndarray, sample_rate: int) -> None:
    frames, channels = _pcm16(wave)
    with wavefile.open(target, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(frames)


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """``wave`` (N,) or (N, C) float in [-1, 1] as the bytes of a 16-bit PCM WAV file (for HTTP answers)."""
    buf = io.BytesIO()
    _write_pcm16(buf, wave, sample_rate)
    return buf.getvalue()


def write_wav(path: str | Path, wave: np.ndarray, sample_rate: int) -> Path:
    """Write ``wave`` (N,) or (N, C) float in [-1, 1] as 16-bit PCM WAV, atomically. Writing needs only the
    standard library's ``wave`` module, so tasks that only write audio (music) need no audio extra."""
    path = Path(path)
    _pcm16(wave)  # a bad shape fails before any file is touched
    atomic_save(path, lambda tmp: _write_pcm16(str(tmp), wave, sample_rate))
    return path
