"""Waveforms from log-mel spectrograms: Griffin-Lim (torch STFT / inverse STFT) and a WORLD route (pyworld).

The log-mel frames are those of :class:`~rnnkit.modules.audio_features.FeatureExtractor`
(``log(|STFT|^2 @ mel + floor)``), so the same :class:`~rnnkit.modules.audio_features.FeatureConfig`
describes both directions::

    log-mel (T, M) --exp, - floor--> mel power --non-negative least squares through the filterbank
        (the pseudo-inverse, clamped at 0, refined by multiplicative updates, Lee & Seung 2001)--> |X|^2 (F, T)
        --sqrt, ^ sharpen (1: none)--> |X| --fast Griffin-Lim (Perraudin, Balazs & Sondergaard 2013: momentum 0.99,
        Griffin & Lim 1984)--> wave

The WORLD route (Morise, Yokomori & Ozawa 2016, through ``pyworld``) needs an F0 contour and band
aperiodicities, which the acoustic model does not predict: it analyses the Griffin-Lim waveform (DIO +
StoneMask F0, CheapTrick envelope, D4C aperiodicity) and synthesises again from those parameters. That
replaces Griffin-Lim's phase artefacts by a clean pulse/noise excitation, and a pitch shift becomes a
scaling of F0 that keeps the spectral envelope (formants) in place. Its envelope can be no better than the
Griffin-Lim waveform it analyses; docs/tts.md reports which route scores better.

Speed and pitch: ``speed`` stretches the frames in time (linear interpolation) before vocoding; with
Griffin-Lim a pitch shift of ``s`` semitones stretches by ``k = 2^(s/12)`` and plays the waveform ``k``
times faster (formants move with the pitch); with WORLD it multiplies F0 by ``k``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from rnnkit.modules.audio_features import FeatureConfig, mel_filterbank, speed_perturb
from rnnkit.modules.world import pyworld_module

VOCODERS = ("griffin_lim", "world")
WORLD_FRAME_MS = 5.0


@dataclass
class VocoderConfig:
    method: str = "griffin_lim"
    iterations: int = 32          # Griffin-Lim iterations
    momentum: float = 0.99        # fast Griffin-Lim; 0 = the original algorithm
    sharpen: float = 1.0          # magnitude exponent before phase recovery (> 1: deeper valleys, and a
                                  # recogniser hears worse: docs/tts.md measures 1.0, 1.3 and 1.5)
    refine: int = 20              # non-negative least-squares updates of the mel inverse
    contrast: float = 1.0         # scale of each band's deviation from its utterance mean (1: none), see
                                  # enhance_contrast

    def __post_init__(self):
        if self.method not in VOCODERS:
            raise ValueError(f"vocoder must be one of {VOCODERS}, got {self.method!r}")
        if self.iterations < 1:
            raise ValueError(f"vocoder iterations must be >= 1, got {self.iterations}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"vocoder momentum must be in [0, 1), got {self.momentum}")
        if not self.sharpen > 0:
            raise ValueError(f"vocoder sharpen must be > 0, got {self.sharpen}")
        if not 0.5 <= self.contrast <= 3.0:
            raise ValueError(f"vocoder contrast must be in [0.5, 3], got {self.contrast}")


def mel_to_magnitude(logmel: torch.Tensor, features: FeatureConfig, refine: int = 20) -> torch.Tensor:
    """log-mel (T, M) -> linear magnitude (F, T), F = n_fft // 2 + 1: the non-negative power spectrum whose
    mel projection is closest to the given one (``refine`` multiplicative updates after the clamped
    pseudo-inverse; on speech, 20 updates cut the magnitude error from 0.41 to 0.30 of its norm)."""
    fb = mel_filterbank(features, torch.float32)                                   # (F, M)
    power_mel = (logmel.float().exp() - features.log_floor).clamp(min=0.0)         # (T, M)
    power = (power_mel @ torch.linalg.pinv(fb)).clamp(min=1e-10)                  # (T, F)
    numerator = power_mel @ fb.T                                                   # (T, F)
    gram = fb @ fb.T                                                               # (F, F)
    for _ in range(refine):
        power = power * numerator / (power @ gram + 1e-12)
    return power.sqrt().T                                                          # (F, T)


def enhance_contrast(logmel: torch.Tensor, factor: float) -> torch.Tensor:
    """(T, M) -> (T, M): each band's deviation from its mean over the utterance scaled by ``factor``.

    A regression-trained acoustic model predicts the conditional mean, which flattens the spectral
    and temporal contrast of speech (the over-smoothing statistical parametric synthesis corrects with a
    global-variance postfilter, Toda & Tokuda 2007); ``factor`` > 1 restores part of it. Applied to the
    log-mel frames before the mel inverse; 1.0 is the identity."""
    if factor == 1.0:
        return logmel
    mean = logmel.mean(dim=0, keepdim=True)                                        # (1, M)
    return mean + factor * (logmel - mean)


def _stft(wave: torch.Tensor, f: FeatureConfig, window: torch.Tensor) -> torch.Tensor:
    return torch.stft(wave, f.n_fft, hop_length=f.hop_length, win_length=f.win_length, window=window,
                      center=True, return_complex=True)                            # (F, T)


def griffin_lim(magnitude: torch.Tensor, features: FeatureConfig, iterations: int = 32, momentum: float = 0.99,
                seed: int = 0) -> torch.Tensor:
    """Magnitude (F, T) -> waveform ((T - 1) * hop,) whose STFT magnitude approximates it."""
    window = torch.hann_window(features.win_length, periodic=True, dtype=magnitude.dtype)
    length = (magnitude.shape[1] - 1) * features.hop_length
    gen = torch.Generator().manual_seed(seed)
    phase = torch.exp(2j * math.pi * torch.rand(magnitude.shape, generator=gen, dtype=magnitude.dtype))
    previous = torch.zeros_like(phase)
    for _ in range(iterations):
        wave = torch.istft(magnitude * phase, features.n_fft, hop_length=features.hop_length,
                           win_length=features.win_length, window=window, center=True, length=length)
        rebuilt = _stft(wave, features, window)                                    # (F, T)
        phase = rebuilt - previous * (momentum / (1 + momentum))
        phase = phase / phase.abs().clamp(min=1e-16)
        previous = rebuilt
    return torch.istft(magnitude * phase, features.n_fft, hop_length=features.hop_length,
                       win_length=features.win_length, window=window, center=True, length=length)


def spectral_convergence(wave: torch.Tensor, magnitude: torch.Tensor, features: FeatureConfig) -> float:
    """|| |STFT(wave)| - magnitude ||_F / || magnitude ||_F (Sturmel & Daudet 2011)."""
    window = torch.hann_window(features.win_length, periodic=True, dtype=magnitude.dtype)
    got = _stft(wave, features, window).abs()
    T = min(got.shape[1], magnitude.shape[1])
    return float(torch.linalg.norm(got[:, :T] - magnitude[:, :T]) / torch.linalg.norm(magnitude[:, :T]))


def stretch_time(frames: torch.Tensor, factor: float) -> torch.Tensor:
    """(T, M) -> (round(T * factor), M) by linear interpolation along time."""
    if factor == 1.0:
        return frames
    T = max(2, round(frames.shape[0] * factor))
    return F.interpolate(frames.T[None], size=T, mode="linear", align_corners=True)[0].T


def pad_frames(logmel: torch.Tensor, features: FeatureConfig) -> torch.Tensor:
    """(T, M) -> at least the frames whose waveform is longer than half an STFT window (the inverse STFT
    needs that much), the added frames silent (the log floor)."""
    need = features.n_fft // (2 * features.hop_length) + 2
    if logmel.shape[0] >= need:
        return logmel
    silence = torch.full((need - logmel.shape[0], logmel.shape[1]), math.log(features.log_floor))
    return torch.cat([logmel, silence.to(logmel.dtype)])


def world_resynthesize(wave: np.ndarray, sample_rate: int, f0_scale: float = 1.0) -> np.ndarray:
    """Analyse ``wave`` with WORLD (DIO + StoneMask F0, CheapTrick, D4C) and synthesise it again with F0 x
    ``f0_scale``; float32 (N,)."""
    pw = pyworld_module()
    x = np.ascontiguousarray(wave, dtype=np.float64)
    f0, t = pw.dio(x, sample_rate, frame_period=WORLD_FRAME_MS)
    f0 = pw.stonemask(x, f0, t, sample_rate)
    sp = pw.cheaptrick(x, f0, t, sample_rate)
    ap = pw.d4c(x, f0, t, sample_rate)
    y = pw.synthesize(np.ascontiguousarray(f0 * f0_scale), sp, ap, sample_rate, frame_period=WORLD_FRAME_MS)
    return y[: len(wave)].astype(np.float32)


class Vocoder:
    """``Vocoder(features, config)(logmel (T, M), speed, pitch_shift) -> float32 waveform (N,)``."""

    def __init__(self, features: FeatureConfig, config: VocoderConfig = VocoderConfig()):
        self.features, self.config = features, config
        if config.method == "world":
            pyworld_module()  # fail now, with the install hint, rather than after the acoustic model ran

    def __call__(self, logmel: torch.Tensor, speed: float = 1.0, pitch_shift: float = 0.0) -> np.ndarray:
        if not 0.25 <= speed <= 4.0:
            raise ValueError(f"speed must be in [0.25, 4], got {speed}")
        if not -12.0 <= pitch_shift <= 12.0:
            raise ValueError(f"pitch shift must be in [-12, 12] semitones, got {pitch_shift}")
        c = self.config
        k = 2.0 ** (pitch_shift / 12.0)
        gl_shift = c.method == "griffin_lim" and pitch_shift != 0.0
        frames = enhance_contrast(logmel.float(), c.contrast)
        frames = pad_frames(stretch_time(frames, (k if gl_shift else 1.0) / speed), self.features)
        magnitude = mel_to_magnitude(frames, self.features, c.refine) ** c.sharpen
        wave = griffin_lim(magnitude, self.features, c.iterations, c.momentum)
        if gl_shift:
            # speed_perturb resamples to within 1% of k; the pitch then moves by that factor
            wave = speed_perturb(wave, min(2.0, max(0.5, k)))
        out = wave.numpy().astype(np.float32)
        if c.method == "world":
            out = world_resynthesize(out, self.features.sample_rate, k)
        peak = float(np.abs(out).max()) if out.size else 0.0
        return out * (0.95 / peak) if peak > 0 else out
