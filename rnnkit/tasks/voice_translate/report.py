"""What ``rnnkit voice-translate`` writes beside ``out.wav``: ``out.json`` (texts, stage times, F0 statistics,
warping factors, warnings) and ``out.png`` (input and output pitch contours and spectrograms)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.modules.world import FRAME_MS
from rnnkit.tasks.runs import write_json

from .cascade import Translation


def report_dict(t: Translation, audio: dict, runs: dict, wav: Path, png: Path | None, decoding: str = "greedy") -> dict:
    """The JSON report: every field a user (or a benchmark) reads. ``output_f0``: the statistics of the F0 contour
    the output was synthesised on (WORLD reproduces it; bench/voice_translation.py measures it by Harvest)."""
    m = t.match
    return {
        "input": audio,
        "english": t.english,
        "transcript_source": t.transcript_source,
        "recognition_decoding": decoding,
        "transcript_confidence": None if t.confidence is None else round(t.confidence, 4),
        "french": t.french,
        "pieces": [{"start": s, "end": e, "english": en, "french": fr} for s, e, en, fr in t.pieces],
        "times": t.times,
        "input_f0": m.speaker.to_dict(),
        "synth_f0": m.synthesised.to_dict(),
        "output_f0": t.output_f0,
        "warp": round(m.warp, 4),
        "output_warp": round(t.output_warp, 4),
        "gain": round(m.loudness.gain, 4),
        "gain_limited": m.loudness.limited,
        "warnings": t.warnings,
        "runs": runs,
        "output": {"wav": str(wav), "png": None if png is None else str(png), "sample_rate": t.sample_rate,
                   "seconds": round(len(t.wave) / t.sample_rate, 3)},
    }


def write_report(path: Path, report: dict) -> Path:
    write_json(path, report)
    return path


def _spectrogram(ax, wave: np.ndarray, rate: int, title: str) -> None:
    from scipy.signal import spectrogram
    f, times, s = spectrogram(wave, rate, nperseg=512, noverlap=384)
    ax.pcolormesh(times, f, 10 * np.log10(s + 1e-10), shading="auto", cmap="magma")
    ax.set_ylim(0, min(5000, rate / 2))
    ax.set_ylabel("Hz")
    ax.set_title(title, fontsize=9, loc="left")


def plot_voices(path: Path, speaker: np.ndarray, out: np.ndarray, rate: int, contours: dict,
                title: str = "", frame_ms: float = FRAME_MS) -> Path:
    """Pitch contours (both on one axis, log frequency) above the input's and the output's spectrograms.
    ``contours``: the cascade's F0 of the ``input`` and the ``output`` (T,) Hz every ``frame_ms`` (the analyses
    it measured with, not repeated here: Harvest on a 3 s input costs about half a second)."""
    from rnnkit.train.plots import plt, save_figure  # matplotlib (Agg backend), imported only when plotting

    fig, (pitch, top, bottom) = plt.subplots(3, 1, figsize=(9, 7.5))
    for key, label, colour in (("input", "input (English)", "#1f77b4"), ("output", "output (French)", "#d62728")):
        f0 = np.asarray(contours[key], dtype=np.float64)
        t = np.arange(len(f0)) * frame_ms / 1000
        f0 = np.where(f0 > 0, f0, np.nan)
        pitch.plot(t, f0, ".", ms=2, color=colour, label=label)
        if np.isfinite(f0).any():
            pitch.axhline(float(np.nanmedian(f0)), color=colour, lw=0.8, ls="--")
    pitch.set_yscale("log")
    pitch.set_ylabel("F0 (Hz)")
    pitch.set_xlabel("seconds")
    pitch.legend(fontsize=8, loc="upper right")
    if title:
        pitch.set_title(title, fontsize=9, loc="left")
    _spectrogram(top, speaker, rate, "input")
    _spectrogram(bottom, out, rate, "output")
    bottom.set_xlabel("seconds")
    return save_figure(fig, path, dpi=90)
