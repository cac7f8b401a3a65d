import math

import numpy as np
import pytest
import torch

from rnnkit.modules.audio_features import (FeatureConfig, FeatureExtractor, FeatureNormalizer, add_deltas,
                                           add_noise, hz_to_mel, mel_filterbank, mel_to_hz, spec_augment,
                                           speed_perturb)


def tone(freq, rate=16000, seconds=0.5):
    t = torch.arange(int(rate * seconds), dtype=torch.float64) / rate
    return (0.5 * torch.sin(2 * math.pi * freq * t)).float()


def peak_hz(wave, rate=16000):
    w = wave.double().numpy()
    spectrum = np.abs(np.fft.rfft(w * np.hanning(len(w))))
    return np.fft.rfftfreq(len(w), 1 / rate)[spectrum.argmax()]


@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_mel_scale_round_trip_and_known_points(scale):
    f = torch.tensor([0.0, 500.0, 1000.0, 4000.0], dtype=torch.float64)
    torch.testing.assert_close(mel_to_hz(hz_to_mel(f, scale), scale), f)
    if scale == "htk":
        assert float(hz_to_mel(torch.tensor(700.0), "htk")) == pytest.approx(2595 * math.log10(2))
    else:
        assert float(hz_to_mel(torch.tensor(1000.0), "slaney")) == pytest.approx(15.0)


@pytest.mark.parametrize("scale", ["htk", "slaney"])
@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_the_tone_s_mel_bin_is_the_maximum(scale, freq):
    config = FeatureConfig(n_mels=40, mel_scale=scale)
    feats, frames = FeatureExtractor(config)(tone(freq)[None])
    assert feats.shape == (1, 51, 40) and int(frames[0]) == 51     # 1 + 8000 // 160 frames
    fb = mel_filterbank(config)                                      # (F, M)
    tone_bin = round(freq * config.n_fft / config.sample_rate)
    expected = int(fb[tone_bin].argmax())                            # the filter that weights the tone's FFT bin most
    mid = feats[0, 10:-10]                                           # frames away from the padded edges
    assert set(mid.argmax(dim=-1).tolist()) == {expected}


def test_mfcc_c0_is_the_scaled_sum_of_log_mels():
    wave = tone(700.0)[None]
    logmel, _ = FeatureExtractor(FeatureConfig(n_mels=24))(wave)
    mfcc, _ = FeatureExtractor(FeatureConfig(n_mels=24, kind="mfcc", n_mfcc=13))(wave)
    torch.testing.assert_close(mfcc[..., 0], logmel.sum(-1) / math.sqrt(24), rtol=1e-4, atol=1e-3)
    # all 24 coefficients of an orthonormal DCT keep the frame's energy
    full, _ = FeatureExtractor(FeatureConfig(n_mels=24, kind="mfcc", n_mfcc=24))(wave)
    torch.testing.assert_close(full.pow(2).sum(-1), logmel.pow(2).sum(-1), rtol=1e-4, atol=1e-2)


def test_deltas_of_a_ramp_are_its_slope():
    ramp = (3.0 * torch.arange(10.0))[None, :, None]              # (1, 10, 1)
    out = add_deltas(ramp, order=2)
    assert out.shape == (1, 10, 3)
    torch.testing.assert_close(out[0, 2:-2, 1], torch.full((6,), 3.0))
    torch.testing.assert_close(out[0, 4:-4, 2], torch.zeros(2))
    assert FeatureConfig(kind="mfcc", deltas=2).num_features == 39


def test_lengths_give_frames_and_padding_is_zero():
    waves = torch.stack([tone(500.0), torch.cat([tone(500.0)[:4000], torch.zeros(4000)])])
    feats, frames = FeatureExtractor(FeatureConfig())(waves, torch.tensor([8000, 4000]))
    assert frames.tolist() == [51, 26]
    assert feats[1, 26:].abs().sum() == 0 and feats[1, :26].abs().sum() > 0


def test_too_short_waveform_is_an_error():
    with pytest.raises(ValueError, match="longer than n_fft/2 = 200 samples"):
        FeatureExtractor(FeatureConfig())(torch.zeros(1, 150))


def test_normalizer_fits_zero_mean_unit_std_and_round_trips_state():
    g = torch.Generator().manual_seed(0)
    feats = 5.0 + 2.0 * torch.randn(4, 30, 6, generator=g)
    lengths = torch.tensor([30, 20, 10, 25])
    feats[1, 20:] = 1e6                                             # padding must be ignored
    norm = FeatureNormalizer(6).fit([(feats, lengths)])
    valid = torch.cat([norm(feats[b, : int(lengths[b])]) for b in range(4)])
    torch.testing.assert_close(valid.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(valid.std(0, unbiased=False), torch.ones(6), atol=1e-4, rtol=0)
    other = FeatureNormalizer(6)
    other.load_state_dict(norm.state_dict())
    torch.testing.assert_close(other(feats), norm(feats))
    with pytest.raises(RuntimeError, match="before fit"):
        FeatureNormalizer(6)(feats)
    with pytest.raises(ValueError, match="width 6, expected 5"):
        FeatureNormalizer(5).fit([(feats, lengths)])


def test_spec_augment_masks_within_length_and_in_every_delta_block():
    config = FeatureConfig(n_mels=10, deltas=1, freq_masks=1, freq_mask_width=3, time_masks=2, time_mask_width=4)
    feats = torch.ones(3, 40, 20)
    lengths = torch.tensor([40, 12, 5])
    out = spec_augment(feats, lengths, config, torch.Generator().manual_seed(1))
    assert torch.equal(feats, torch.ones(3, 40, 20))                 # input untouched
    for b in range(3):
        masked_bands = (out[b, int(lengths[b]):] == 0).all(0) if int(lengths[b]) < 40 else (out[b] == 0).all(0)
        assert torch.equal(masked_bands[:10], masked_bands[10:])      # same band in features and deltas
        assert int(masked_bands[:10].sum()) <= 3
        full_rows = (out[b] == 0).all(-1)
        assert int(full_rows.sum()) <= 8 and not full_rows[int(lengths[b]):].any()


def test_speed_perturbation_scales_length_and_frequency():
    fast = speed_perturb(tone(400.0), 1.1)
    assert abs(len(fast) - 8000 / 1.1) <= 2
    assert abs(peak_hz(fast) - 440.0) < 5.0
    with pytest.raises(ValueError, match="speed factor"):
        speed_perturb(tone(400.0), 3.0)


def test_additive_noise_reaches_the_requested_snr():
    wave = tone(300.0)
    noisy = add_noise(wave, 10.0, generator=torch.Generator().manual_seed(0))
    snr = 10 * torch.log10(wave.pow(2).mean() / (noisy - wave).pow(2).mean())
    assert float(snr) == pytest.approx(10.0, abs=1e-3)
    noisy = add_noise(wave, 0.0, noise=torch.ones(100))             # a short noise is tiled
    assert float((noisy - wave).pow(2).mean()) == pytest.approx(float(wave.pow(2).mean()), rel=1e-4)


@pytest.mark.parametrize("bad,match", [(dict(mel_scale="bark"), "mel_scale"), (dict(kind="plp"), "kind"),
                                       (dict(n_mfcc=50, kind="mfcc"), "n_mfcc"), (dict(deltas=3), "deltas"),
                                       (dict(f_max=9000.0), "f_max"), (dict(win_length=512), "win_length"),
                                       (dict(speed_factors=(3.0,)), "speed_factors"), (dict(hop_length=0), "hop")])
def test_feature_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        FeatureConfig(**bad)


def test_feature_config_round_trips_through_a_dict():
    c = FeatureConfig(kind="mfcc", deltas=1, speed_factors=(0.9, 1.1))
    assert FeatureConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown fields"):
        FeatureConfig.from_dict({"n_mel": 3})


@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_matches_librosa_when_installed(scale):
    librosa = pytest.importorskip("librosa", reason="librosa not installed; the hand-computed checks above stand")
    config = FeatureConfig(n_mels=40, mel_scale=scale)
    ref = librosa.filters.mel(sr=16000, n_fft=400, n_mels=40, htk=scale == "htk",
                              norm="slaney" if scale == "slaney" else None)
    np.testing.assert_allclose(mel_filterbank(config).T.numpy(), ref, rtol=1e-4, atol=1e-6)
