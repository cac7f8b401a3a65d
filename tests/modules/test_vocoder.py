"""Vocoders: Griffin-Lim recovers a known signal's spectrogram, the mel inverse, speed and pitch, WORLD."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from rnnkit.modules.audio_features import FeatureConfig, FeatureExtractor
from rnnkit.modules.vocoder import (Vocoder, VocoderConfig, griffin_lim, mel_to_magnitude, spectral_convergence,
                                    stretch_time, world_resynthesize)

FEATURES = FeatureConfig(sample_rate=16000, n_fft=512, hop_length=128, n_mels=64, mel_scale="slaney", log_floor=1e-5)


def _signal(seconds: float = 0.5) -> torch.Tensor:
    """A gliding 220 Hz tone with a steady 660 Hz partial."""
    t = torch.arange(int(16000 * seconds)) / 16000
    return (0.5 * torch.sin(2 * math.pi * (220 * t + 30 * t * t)) + 0.3 * torch.sin(2 * math.pi * 660 * t)).float()


def _magnitude(x: torch.Tensor) -> torch.Tensor:
    return torch.stft(x, 512, 128, window=torch.hann_window(512), return_complex=True).abs()


def test_griffin_lim_round_trip_recovers_a_known_signal(one_thread):
    """Spectral convergence || |STFT(y)| - |STFT(x)| || / || |STFT(x)| || below 0.15 after 32 fast Griffin-Lim
    iterations (measured 0.114; 0.185 without momentum), from random phases."""
    mag = _magnitude(_signal())
    fast = spectral_convergence(griffin_lim(mag, FEATURES, 32), mag, FEATURES)
    plain = spectral_convergence(griffin_lim(mag, FEATURES, 32, momentum=0.0), mag, FEATURES)
    assert fast < 0.15 and fast < plain


def test_mel_inverse_keeps_the_spectral_shape(one_thread):
    x = _signal()
    logmel, _ = FeatureExtractor(FEATURES)(x)
    mag = _magnitude(x)
    rebuilt = mel_to_magnitude(logmel[0], FEATURES)
    assert rebuilt.shape == mag.shape and float(rebuilt.min()) >= 0.0
    assert float(torch.linalg.norm(rebuilt - mag) / torch.linalg.norm(mag)) < 0.35   # measured 0.25
    # the loudest bin stays where it was (the 220-250 Hz glide: bins 7-8 of 257)
    assert abs(int(rebuilt.sum(1).argmax()) - int(mag.sum(1).argmax())) <= 1


def test_speed_and_pitch(one_thread):
    logmel, _ = FeatureExtractor(FEATURES)(_signal(0.25))
    voc = Vocoder(FEATURES, VocoderConfig(iterations=2))
    n = len(voc(logmel[0]))
    assert abs(len(voc(logmel[0], speed=2.0)) - n / 2) <= 2 * FEATURES.hop_length
    assert abs(len(voc(logmel[0], pitch_shift=5.0)) - n) <= 2 * FEATURES.hop_length  # pitch moves, length stays
    with pytest.raises(ValueError, match="speed must be in"):
        voc(logmel[0], speed=0.0)
    with pytest.raises(ValueError, match="pitch shift must be in"):
        voc(logmel[0], pitch_shift=20)
    assert stretch_time(torch.zeros(10, 3), 1.5).shape == (15, 3)


def test_world_resynthesis_scales_f0():
    if importlib.util.find_spec("pyworld") is None:  # rnnkit loads it even where a plain import fails
        pytest.skip("the WORLD route needs pip install 'rnnkit[tts]'")
    tone = (0.5 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)).astype(np.float32)
    y = world_resynthesize(tone, 16000, f0_scale=2.0)
    peak = np.argmax(np.abs(np.fft.rfft(y))) * 16000 / len(y)
    assert len(y) == len(tone) and abs(peak - 400.0) < 10.0


def test_vocoder_config_is_checked():
    with pytest.raises(ValueError, match="vocoder must be one of"):
        VocoderConfig(method="wavenet")


def test_contrast_scales_each_band_around_its_mean():
    from rnnkit.modules.vocoder import enhance_contrast
    x = torch.randn(20, 6)
    assert enhance_contrast(x, 1.0) is x
    y = enhance_contrast(x, 1.5)
    torch.testing.assert_close(y.mean(0), x.mean(0))
    torch.testing.assert_close(y.std(0), 1.5 * x.std(0))
    with pytest.raises(ValueError, match="contrast must be"):
        VocoderConfig(contrast=0.1)
