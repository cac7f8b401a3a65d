"""Voice matching: F0 statistics and mapping, envelope warping and its estimation, loudness, bad input."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

# not importorskip: a plain `import pyworld` (0.3.5) fails without setuptools' pkg_resources, which
# rnnkit.modules.world's loader does without
if importlib.util.find_spec("pyworld") is None:
    pytest.skip("needs pyworld: pip install 'rnnkit[voice]'", allow_module_level=True)

from rnnkit.modules import voice as V  # noqa: E402
from rnnkit.modules.world import analyze, analyze_with_f0, estimate_f0, resynthesize  # noqa: E402

SR = 16000


def tone(f0: float, seconds: float = 0.8, vibrato: float = 0.0, amplitude: float = 0.3) -> np.ndarray:
    """A harmonic tone (10 partials, 1/k amplitudes) at ``f0`` Hz, optionally with a 5 Hz vibrato of
    ``vibrato`` semitones."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * 2 ** (vibrato * np.sin(2 * np.pi * 5 * t) / 12)
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 11))
    return (amplitude * x / np.abs(x).max()).astype(np.float32)


def test_f0_stats_of_a_known_contour():
    f0 = np.array([0.0, 220.0, 220.0 * 2 ** (1 / 12), 220.0 * 2 ** (-1 / 12), 0.0])
    s = V.f0_stats(f0)
    assert s.voiced_frames == 3
    assert s.median_hz == pytest.approx(220.0)
    assert s.median_semitones == pytest.approx(57.0)        # A3
    assert s.spread_semitones == pytest.approx(1.4826)      # MAD of (0, 1, 1) semitones = 1
    with pytest.raises(V.VoiceError, match="no voiced frame"):
        V.f0_stats(np.zeros(10), "x.wav")


def test_map_f0_moves_median_and_scales_spread_keeping_unvoiced():
    src = np.array([0.0, 100.0, 100.0 * 2 ** (2 / 12), 100.0 * 2 ** (-2 / 12), 0.0])
    target = V.F0Stats(200.0, float(V.hz_to_semitones(200.0)), 2 * V.f0_stats(src).spread_semitones, 3)
    out = V.map_f0(src, target)
    assert out[0] == 0 and out[-1] == 0
    moved = V.f0_stats(out)
    assert moved.median_hz == pytest.approx(200.0)
    assert moved.spread_semitones == pytest.approx(target.spread_semitones)


def test_octave_errors_do_not_move_the_statistics():
    rng = np.random.default_rng(0)
    clean = 150.0 * 2 ** (rng.normal(0, 1.5, 400) / 12)                  # spread 1.5 semitones
    halved = clean.copy()
    halved[::5] /= 2                                                     # a fifth of the frames an octave low
    a, b = V.f0_stats(clean), V.f0_stats(halved)
    assert b.median_semitones == pytest.approx(a.median_semitones, abs=0.05)
    assert b.spread_semitones == pytest.approx(a.spread_semitones, rel=0.05)
    np.testing.assert_allclose(V.fold_octaves(V.hz_to_semitones(halved)), V.hz_to_semitones(clean), atol=1e-9)


def test_a_large_spread_gain_keeps_the_contour_near_the_target_and_the_spread_exact():
    rng = np.random.default_rng(1)
    flat = 120.0 * 2 ** (rng.standard_t(3, 500) * 0.5 / 12)               # a near-monotone voice, heavy tails
    source = V.f0_stats(flat)
    target = V.F0Stats(70.0, float(V.hz_to_semitones(70.0)), 4.0, 1)     # a low, expressive speaker
    out = V.map_f0(flat, target)
    st = V.hz_to_semitones(out)
    assert np.abs(st - target.median_semitones).max() <= V.MAP_LIMIT_ST + 1e-9
    mapped = V.f0_stats(out)
    assert mapped.spread_semitones == pytest.approx(4.0, rel=1e-3)
    assert mapped.median_semitones == pytest.approx(target.median_semitones, abs=1e-6)


def glide_contour() -> np.ndarray:
    """Two voiced runs around 100 Hz (vibrato 0.7 st) between unvoiced frames; in the second, the reading glides
    continuously down to 10 semitones below the median and back (as Harvest reads some voiced consonants)."""
    t = np.arange(120)
    st = V.hz_to_semitones(100.0) + 0.7 * np.sin(2 * np.pi * t / 40)
    st[82:112] -= 10.0 * np.sin(np.pi * np.arange(30) / 29)               # down and back, 0.5-1 st a frame
    f0 = V.semitones_to_hz(st)
    f0[:5] = f0[75:80] = f0[115:] = 0.0
    return f0


def test_the_mapped_contour_stays_continuous_where_the_reading_glides_far_from_the_median():
    f0 = glide_contour()
    target = V.F0Stats(70.0, float(V.hz_to_semitones(70.0)), 2.5, 1)
    out = V.map_f0(f0, target)
    assert np.array_equal(out > 0, f0 > 0)
    steps = np.abs(np.diff(V.hz_to_semitones(np.where(out > 0, out, 1.0))))[(out[1:] > 0) & (out[:-1] > 0)]
    # a frame-by-frame octave fold cut the glide into a jump of 11 semitones between neighbouring frames
    assert steps.max() < 4.0                                               # the gain times the glide's 1 st a frame
    mapped = V.f0_stats(out)
    assert mapped.median_semitones == pytest.approx(target.median_semitones, abs=1e-6)
    assert mapped.spread_semitones == pytest.approx(target.spread_semitones, rel=2e-3)


def test_a_whole_run_read_an_octave_off_is_folded_back_before_mapping():
    f0 = glide_contour()
    f0[82:112] = 100.0 * 2 ** (0.3 * np.sin(np.arange(30) / 5) / 12)     # the second run plain,
    halved = f0.copy()
    halved[80:115] /= 2                                                    # and read an octave low
    target = V.F0Stats(200.0, float(V.hz_to_semitones(200.0)), 1.5, 1)
    np.testing.assert_allclose(V.map_f0(halved, target), V.map_f0(f0, target), rtol=1e-9)
    np.testing.assert_allclose(V.fold_octave_runs(halved), V.hz_to_semitones(f0[f0 > 0]), atol=1e-9)


def test_f0_mapping_moves_a_synthetic_tone_within_a_fifth_of_a_semitone():
    a = analyze(tone(140.0, vibrato=0.5), SR)
    source = V.f0_stats(a.f0)
    target = V.F0Stats(230.0, float(V.hz_to_semitones(230.0)), source.spread_semitones, 1)
    out = resynthesize(a.with_(f0=V.map_f0(a.f0, target)))
    measured = V.f0_stats(analyze(out, SR).f0)
    assert abs(measured.median_semitones - target.median_semitones) < 0.2
    assert abs(source.median_semitones - target.median_semitones) > 8   # it really moved


def test_revoice_onto_given_numbers_moves_pitch_caps_aperiodicity_and_warps():
    a = analyze(tone(140.0, 0.5, vibrato=0.5), SR)
    source = V.f0_stats(a.f0)
    target = V.F0Stats(90.0, float(V.hz_to_semitones(90.0)), 2 * source.spread_semitones, 1)
    wave, f0 = V.revoice(a, target, 1.1)
    assert V.f0_stats(f0).median_semitones == pytest.approx(target.median_semitones, abs=1e-6)
    assert V.f0_stats(f0).spread_semitones == pytest.approx(target.spread_semitones, rel=1e-3)
    back = analyze(wave, SR)
    assert abs(V.f0_stats(back.f0).median_semitones - target.median_semitones) < 0.2
    assert V.estimate_warp(a, back) == pytest.approx(1.1, rel=0.02)
    same, f0_same = V.revoice(a, source, 1.0)     # alpha 1: the envelope is kept; voiced aperiodicity capped
    np.testing.assert_array_equal(f0_same, V.map_f0(a.f0, source))
    capped = np.where(a.voiced[:, None], np.minimum(a.aperiodicity, V.VOICED_APERIODICITY), a.aperiodicity)
    np.testing.assert_allclose(same, resynthesize(a.with_(f0=f0_same, aperiodicity=capped)), atol=1e-6)


def test_warp_by_one_is_the_identity_and_other_factors_are_not():
    env = analyze(tone(150.0, 0.3), SR).envelope
    np.testing.assert_allclose(V.warp_envelope(env, 1.0), env, rtol=1e-12)
    assert not np.allclose(V.warp_envelope(env, 1.05), env, rtol=1e-3)
    with pytest.raises(ValueError, match="> 0"):
        V.warp_envelope(env, 0.0)


@pytest.mark.parametrize("alpha", [0.88, 1.0, 1.15])
def test_estimate_warp_recovers_a_known_factor(alpha):
    a = analyze(tone(120.0, 0.5, vibrato=1.0), SR)
    b = a.with_(envelope=V.warp_envelope(a.envelope, alpha))
    assert V.estimate_warp(a, b) == pytest.approx(alpha, rel=0.005)
    assert V.estimate_warp(b, a) == pytest.approx(1 / alpha, rel=0.005)     # the same answer either way round


def test_loudness_is_matched_on_active_frames():
    quiet, loud = tone(150.0, 0.5, amplitude=0.05), tone(200.0, 0.5, amplitude=0.4)
    padded = np.concatenate([np.zeros(SR // 2, np.float32), loud])       # a pause does not count
    out, how = V.match_loudness(quiet, padded, SR)
    assert V.active_rms(out, SR) == pytest.approx(V.active_rms(loud, SR), rel=1e-3)
    assert not how.limited and how.gain > 1
    out, how = V.match_loudness(quiet, tone(150.0, 0.5, amplitude=1.0) * 3, SR)
    assert how.limited and np.abs(out).max() <= V.PEAK_LIMIT + 1e-6


def test_silence_and_noise_only_are_refused_by_name():
    with pytest.raises(V.VoiceError, match="in.wav: the audio is silent"):
        V.check_speech(np.zeros(SR, np.float32), SR, "in.wav")
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    with pytest.raises(V.VoiceError, match="in.wav: no voiced speech found.*noise only"):
        V.check_speech(noise, SR, "in.wav")
    assert V.check_speech(tone(150.0, 0.5), SR).voiced.mean() > 0.8


def test_long_audio_is_split_at_its_pauses_and_nothing_is_dropped():
    burst, gap = tone(150.0, 0.6), np.zeros(int(0.2 * SR), np.float32)
    wave = np.concatenate([burst, gap, burst, gap, burst, gap, burst])      # 3.0 s, pauses at 0.7, 1.5, 2.3 s
    pieces = V.split_at_pauses(wave, SR, max_seconds=1.0)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(wave)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))          # contiguous: nothing cut out
    assert all(e - s <= SR for s, e in pieces)
    for s, _ in pieces[1:]:                                                 # every cut inside a pause
        assert np.abs(wave[s - 100: s + 100]).max() == 0
    assert V.split_at_pauses(wave, SR, max_seconds=5.0) == [(0, len(wave))]
    with pytest.raises(V.VoiceError, match="no pause between"):
        V.split_at_pauses(tone(150.0, 3.0), SR, max_seconds=1.0, what="long.wav")


def test_an_analysis_on_a_known_f0_matches_the_estimated_one_and_skips_d4c_when_asked():
    x = tone(150.0, vibrato=0.3)
    a = analyze(x, SR)
    b = analyze_with_f0(x, SR, a.f0)
    np.testing.assert_array_equal(b.envelope, a.envelope)
    np.testing.assert_array_equal(b.aperiodicity, a.aperiodicity)
    measured = analyze(x, SR, aperiodicity=False)
    assert measured.aperiodicity is None
    np.testing.assert_array_equal(measured.envelope, a.envelope)
    with pytest.raises(ValueError, match="aperiodicity=True"):
        resynthesize(measured)


def test_f0_estimated_at_a_lower_rate_agrees_and_keeps_the_full_rate_frames():
    x = tone(180.0, vibrato=0.5)
    full, low = estimate_f0(x, SR), estimate_f0(x, SR, f0_rate=4000)
    assert len(low) == len(full) == len(analyze(x, SR, aperiodicity=False).f0)
    a, b = V.f0_stats(full), V.f0_stats(low)
    assert abs(a.median_semitones - b.median_semitones) < 0.05
    assert b.spread_semitones == pytest.approx(a.spread_semitones, rel=0.1)
    assert analyze(x, SR, f0_rate=4000).envelope.shape == analyze(x, SR).envelope.shape


def syllables_around_a_fricative() -> tuple[np.ndarray, slice]:
    """Two harmonic syllables (0.3 s each) with 0.08 s of white noise between them, and the frames inside the
    noise (5 ms frames, two kept clear of each edge)."""
    noise = (0.05 * np.random.default_rng(1).standard_normal(int(0.08 * SR))).astype(np.float32)
    return np.concatenate([tone(150.0, 0.3), noise, tone(170.0, 0.3)]), slice(62, 74)


def test_d4c_voicing_leaves_a_noise_stretch_between_syllables_unvoiced():
    x, inside = syllables_around_a_fricative()
    tracker, d4c = analyze(x, SR), analyze(x, SR, voicing="d4c")
    assert tracker.voiced[inside].mean() > 0.5        # Harvest carries its contour across the noise
    assert not d4c.voiced[inside].any()
    assert d4c.voiced[5:58].all() and d4c.voiced[80:130].all()                      # the syllables stay voiced
    with pytest.raises(ValueError, match="voicing must be one of"):
        analyze(x, SR, voicing="pyin")


def test_revoice_of_a_d4c_voiced_analysis_keeps_the_noise_between_syllables_unvoiced():
    x, inside = syllables_around_a_fricative()
    a = analyze(x, SR, voicing="d4c")
    target = V.F0Stats(80.0, float(V.hz_to_semitones(80.0)), 1.0, 1)
    wave, f0 = V.revoice(a, target, 1.0)
    # with the tracker's voicing, these frames are synthesised as pulses (their aperiodicity capped at 0.3)
    assert not (f0[inside] > 0).any()
    assert (V.revoice(analyze(x, SR), target, 1.0)[1][inside] > 0).all()
    assert not analyze(wave, SR, voicing="d4c").voiced[inside].any()
