"""Acoustic features in torch: log-mel filterbanks, MFCCs, deltas, normalisation and augmentation.

Pipeline (one :class:`FeatureConfig` describes it; it is saved with a run)::

    wave (B, N) --STFT (Hann, centred)--> |X|^2 (B, F, T) --mel filters--> (B, T, n_mels)
        --log(. + floor)--> log-mel  [--DCT-II orthonormal, first n_mfcc--> MFCC]
        [--deltas (regression over +-2 frames), order 1 or 2, concatenated]

Mel scales: ``htk`` (mel = 2595 log10(1 + f/700)) with unnormalised triangles, or ``slaney``
(linear below 1 kHz, logarithmic above, as in the Auditory Toolbox) with area-normalised triangles
-- the same filters as librosa's ``mel(htk=..., norm=...)`` defaults for each scale.

Augmentation: :func:`spec_augment` (Park et al. 2019, time and frequency masks),
:func:`speed_perturb` (Ko et al. 2015, resampling by a speed factor) and :func:`add_noise`
(additive noise at a given SNR in dB).  :class:`FeatureNormalizer` holds per-feature mean and
standard deviation fitted on a training set, as buffers so they travel in the state_dict.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Iterable, Optional, Tuple

import torch
from torch import nn

MEL_SCALES = ("htk", "slaney")
FEATURE_KINDS = ("logmel", "mfcc")


@dataclass
class FeatureConfig:
    """How waveforms become feature frames, and how training batches are augmented."""

    sample_rate: int = 16000
    n_fft: int = 400              # 25 ms at 16 kHz
    hop_length: int = 160         # 10 ms at 16 kHz
    win_length: Optional[int] = None   # None: n_fft
    n_mels: int = 40
    f_min: float = 0.0
    f_max: Optional[float] = None      # None: sample_rate / 2
    mel_scale: str = "htk"
    kind: str = "logmel"
    n_mfcc: int = 13
    deltas: int = 0               # 0, 1 (add deltas) or 2 (add deltas and delta-deltas)
    log_floor: float = 1e-6
    # SpecAugment (applied by spec_augment to training batches only)
    freq_masks: int = 0
    freq_mask_width: int = 8
    time_masks: int = 0
    time_mask_width: int = 20
    # waveform augmentation
    speed_factors: Tuple[float, ...] = ()   # e.g. (0.9, 1.0, 1.1)
    noise_snr_db: Optional[float] = None

    def __post_init__(self):
        self.speed_factors = tuple(float(s) for s in self.speed_factors)
        if self.win_length is None:
            self.win_length = self.n_fft
        if self.f_max is None:
            self.f_max = self.sample_rate / 2
        for name in ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "n_mfcc"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"FeatureConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.win_length > self.n_fft:
            raise ValueError(f"FeatureConfig.win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"FeatureConfig needs 0 <= f_min < f_max <= sample_rate/2, got f_min={self.f_min}, "
                             f"f_max={self.f_max}, sample_rate={self.sample_rate}")
        if self.mel_scale not in MEL_SCALES:
            raise ValueError(f"FeatureConfig.mel_scale must be one of {MEL_SCALES}, got {self.mel_scale!r}")
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"FeatureConfig.kind must be one of {FEATURE_KINDS}, got {self.kind!r}")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise ValueError(f"FeatureConfig.n_mfcc ({self.n_mfcc}) must be <= n_mels ({self.n_mels})")
        if self.deltas not in (0, 1, 2):
            raise ValueError(f"FeatureConfig.deltas must be 0, 1 or 2, got {self.deltas!r}")
        if not self.log_floor > 0:
            raise ValueError(f"FeatureConfig.log_floor must be > 0, got {self.log_floor}")
        for name in ("freq_masks", "freq_mask_width", "time_masks", "time_mask_width"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"FeatureConfig.{name} must be a non-negative integer, got {getattr(self, name)!r}")
        if any(not 0.5 <= s <= 2.0 for s in self.speed_factors):
            raise ValueError(f"FeatureConfig.speed_factors must lie in [0.5, 2], got {self.speed_factors}")

    @property
    def num_features(self) -> int:
        """Width of one feature frame."""
        base = self.n_mfcc if self.kind == "mfcc" else self.n_mels
        return base * (1 + self.deltas)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["speed_factors"] = list(self.speed_factors)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"FeatureConfig: unknown fields {sorted(unknown)}")
        return cls(**d)


# ---- mel filterbank and DCT -------------------------------------------------------------------

def hz_to_mel(f: torch.Tensor, scale: str) -> torch.Tensor:
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return torch.where(f >= min_log_hz, min_log_mel + torch.log(f.clamp(min=1e-10) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m: torch.Tensor, scale: str) -> torch.Tensor:
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(config: FeatureConfig, dtype=torch.float64) -> torch.Tensor:
    """Triangular filters (n_fft//2 + 1, n_mels); slaney triangles are normalised to equal area."""
    n_freqs = config.n_fft // 2 + 1
    fft_hz = torch.linspace(0, config.sample_rate / 2, n_freqs, dtype=torch.float64)      # (F,)
    lo, hi = (hz_to_mel(torch.tensor(f, dtype=torch.float64), config.mel_scale) for f in (config.f_min, config.f_max))
    edges_hz = mel_to_hz(torch.linspace(float(lo), float(hi), config.n_mels + 2, dtype=torch.float64),
                         config.mel_scale)                                                  # (M+2,)
    width = edges_hz.diff()                                                                 # (M+1,)
    slopes = edges_hz[None, :] - fft_hz[:, None]                                            # (F, M+2)
    rising = -slopes[:, :-2] / width[:-1]                                                   # (F, M)
    falling = slopes[:, 2:] / width[1:]                                                     # (F, M)
    fb = torch.clamp(torch.minimum(rising, falling), min=0.0)                              # (F, M)
    if config.mel_scale == "slaney":
        fb = fb * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[None, :]
    return fb.to(dtype)


def dct_matrix(n_mels: int, n_out: int, dtype=torch.float64) -> torch.Tensor:
    """Orthonormal DCT-II as a (n_mels, n_out) matrix: mfcc = logmel @ D."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)
    d = torch.cos(math.pi / n_mels * (n[:, None] + 0.5) * k[None, :]) * math.sqrt(2.0 / n_mels)   # (M, K)
    d[:, 0] *= 1.0 / math.sqrt(2.0)
    return d.to(dtype)


def add_deltas(feats: torch.Tensor, order: int, window: int = 2) -> torch.Tensor:
    """(B, T, C) -> (B, T, C * (1 + order)): features, deltas, delta-deltas (regression over +-window)."""
    out, cur = [feats], feats
    denom = 2 * sum(n * n for n in range(1, window + 1))
    for _ in range(order):
        padded = torch.cat([cur[:, :1].expand(-1, window, -1), cur, cur[:, -1:].expand(-1, window, -1)], dim=1)
        T = cur.shape[1]
        cur = sum(n * (padded[:, window + n:window + n + T] - padded[:, window - n:window - n + T])
                  for n in range(1, window + 1)) / denom
        out.append(cur)
    return torch.cat(out, dim=-1)


class FeatureExtractor(nn.Module):
    """Waveforms (B, N) with lengths (B,) -> features (B, T, num_features) with frame lengths (B,)."""

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config
        self.register_buffer("window", torch.hann_window(config.win_length, periodic=True), persistent=False)
        self.register_buffer("mel", mel_filterbank(config, torch.float32), persistent=False)      # (F, M)
        self.register_buffer("dct", dct_matrix(config.n_mels, config.n_mfcc, torch.float32), persistent=False)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames of a centred STFT for each waveform length."""
        return 1 + torch.div(lengths, self.config.hop_length, rounding_mode="floor")

    def forward(self, waves: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        c = self.config
        if waves.dim() == 1:
            waves = waves[None]
        if lengths is None:
            lengths = torch.full((waves.shape[0],), waves.shape[1], dtype=torch.long, device=waves.device)
        if waves.shape[-1] <= c.n_fft // 2:
            raise ValueError(f"waveforms must be longer than n_fft/2 = {c.n_fft // 2} samples "
                             f"({c.n_fft / 2 / c.sample_rate * 1000:.1f} ms), got {waves.shape[-1]}")
        spec = torch.stft(waves.float(), c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                          window=self.window, center=True, return_complex=True)                # (B, F, T)
        power = spec.real ** 2 + spec.imag ** 2                                                 # (B, F, T)
        feats = torch.log(power.transpose(1, 2) @ self.mel + c.log_floor)                       # (B, T, M)
        if c.kind == "mfcc":
            feats = feats @ self.dct                                                            # (B, T, n_mfcc)
        if c.deltas:
            feats = add_deltas(feats, c.deltas)
        frames = self.frame_lengths(lengths.to(feats.device)).clamp(max=feats.shape[1])
        mask = torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]     # (B, T)
        return feats * mask[..., None], frames


class FeatureNormalizer(nn.Module):
    """Per-feature mean/variance normalisation fitted on training features; state in buffers."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def fit(self, batches: Iterable[Tuple[torch.Tensor, torch.Tensor]]) -> "FeatureNormalizer":
        """Statistics over the valid frames of (feats (B, T, C), frame_lengths (B,)) batches."""
        total, total_sq, n = 0.0, 0.0, 0
        for feats, lengths in batches:
            mask = (torch.arange(feats.shape[1])[None, :] < lengths[:, None]).to(torch.float64)[..., None]
            f = feats.to(torch.float64) * mask
            total = total + f.sum((0, 1))
            total_sq = total_sq + (f * f).sum((0, 1))
            n += int(lengths.sum())
        if n == 0:
            raise ValueError("FeatureNormalizer.fit: no frames to fit on")
        if total.shape[0] != self.mean.shape[0]:
            raise ValueError(f"FeatureNormalizer.fit: features have width {total.shape[0]}, "
                             f"expected {self.mean.shape[0]}")
        mean = total / n
        var = (total_sq / n - mean * mean).clamp(min=0.0)
        self.mean.copy_(mean)
        self.std.copy_(var.sqrt().clamp(min=self.eps))
        self.count.fill_(n)
        return self

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        # exporting, the buffer's value is data the graph cannot branch on: the exporter checks it beforehand
        if not torch.compiler.is_exporting() and int(self.count) == 0:
            raise RuntimeError("FeatureNormalizer used before fit(); fit it on training features first")
        return (feats - self.mean) / self.std


# ---- augmentation -------------------------------------------------------------------------------

def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, config: FeatureConfig,
                 generator: Optional[torch.Generator] = None, mask_value: float = 0.0) -> torch.Tensor:
    """Copy of (B, T, C) with config.freq_masks frequency bands and config.time_masks time spans masked.

    Each mask's width is uniform in [0, width]; time masks stay inside each utterance's length.
    With deltas the same band is masked in every delta block.
    """
    out = feats.clone()
    B, _, C = feats.shape
    base = C // (1 + config.deltas)
    for b in range(B):
        for _ in range(config.freq_masks):
            w = int(torch.randint(0, min(config.freq_mask_width, base) + 1, (), generator=generator))
            f0 = int(torch.randint(0, base - w + 1, (), generator=generator))
            for block in range(1 + config.deltas):
                out[b, :, block * base + f0:block * base + f0 + w] = mask_value
        T = int(lengths[b])
        for _ in range(config.time_masks):
            w = int(torch.randint(0, min(config.time_mask_width, T) + 1, (), generator=generator))
            t0 = int(torch.randint(0, T - w + 1, (), generator=generator))
            out[b, t0:t0 + w] = mask_value
    return out


def speed_perturb(wave: torch.Tensor, factor: float) -> torch.Tensor:
    """(N,) -> about (N / factor,): the waveform played ``factor`` times faster (pitch moves too).

    Polyphase resampling (scipy.signal.resample_poly, Kaiser window) by the rational approximation
    of 1/factor with denominator <= 100.
    """
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor must lie in [0.5, 2], got {factor}")
    if factor == 1.0:
        return wave.clone()
    from scipy.signal import resample_poly
    ratio = Fraction(factor).limit_denominator(100)
    out = resample_poly(wave.detach().cpu().double().numpy(), ratio.denominator, ratio.numerator)
    return torch.from_numpy(out).to(wave.dtype)


def add_noise(wave: torch.Tensor, snr_db: float, noise: Optional[torch.Tensor] = None,
              generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """wave (N,) plus noise scaled so that 10 log10(P_wave / P_noise) = snr_db (white Gaussian by default)."""
    if noise is None:
        noise = torch.randn(wave.shape, generator=generator, dtype=wave.dtype)
    elif noise.shape[-1] < wave.shape[-1]:
        reps = -(-wave.shape[-1] // noise.shape[-1])
        noise = noise.repeat(reps)[: wave.shape[-1]]
    else:
        noise = noise[: wave.shape[-1]]
    p_signal = wave.pow(2).mean()
    p_noise = noise.pow(2).mean()
    if p_noise <= 0:
        raise ValueError("add_noise: the noise is all zeros")
    scale = torch.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return wave + scale * noise
