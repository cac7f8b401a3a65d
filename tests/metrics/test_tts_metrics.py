"""Speech synthesis scores: mel cepstral distortion with DTW, and the monotonic-alignment check."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.metrics.tts import check_alignment, dtw_path, mel_cepstral_distortion, word_of_symbol


def test_mcd_is_zero_on_itself_and_ignores_a_time_stretch():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(20, 16))
    assert mel_cepstral_distortion(ref, ref, 8) == pytest.approx(0.0, abs=1e-9)
    assert mel_cepstral_distortion(ref, np.repeat(ref, 2, axis=0), 8) == pytest.approx(0.0, abs=1e-9)  # DTW
    assert mel_cepstral_distortion(ref, ref + 5.0, 8) == pytest.approx(0.0, abs=1e-9)  # loudness (c0) left out
    other = rng.normal(size=(25, 16))
    assert mel_cepstral_distortion(ref, other, 8) > 1.0
    # a known case: log power differing by a cosine of amplitude a at quefrency 3 -> c_3 differs by a / 4
    m = np.arange(16)
    shifted = ref + 2.0 * np.cos(np.pi * 3 * (m + 0.5) / 16)[None]
    assert mel_cepstral_distortion(ref, shifted, n_ceps=8) == pytest.approx(10 / np.log(10) * np.sqrt(2) * 0.5)
    with pytest.raises(ValueError, match="same M"):
        mel_cepstral_distortion(ref, other[:, :8])


def test_dtw_path_is_monotonic_and_complete():
    cost = np.abs(np.arange(5)[:, None] - np.arange(0, 10, 2)[None, :] / 2.0)
    i, j = dtw_path(cost)
    assert (i[0], j[0]) == (0, 0) and (i[-1], j[-1]) == (4, 4)
    assert np.all(np.diff(i) >= 0) and np.all(np.diff(j) >= 0)


def _alignment(positions, n):
    w = np.zeros((len(positions), n))
    w[np.arange(len(positions)), positions] = 1.0
    return w


def test_words_of_symbols():
    index, words = word_of_symbol("hi, you.", 10)   # 8 symbols and two end symbols
    assert words == ["hi,", "you."] and index.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]


def test_alignment_checks():
    text = "ab cd ef"                                   # symbols 0-7, the end symbol 8
    good = check_alignment(_alignment([0, 1, 1, 2, 3, 4, 5, 6, 7, 8], 9), text, stopped=True)
    assert good.monotonic and good.reason == "" and good.max_jump == 1
    again = check_alignment(_alignment([0, 1, 3, 4, 1, 3, 4, 6, 7, 8], 9), text, stopped=True)
    assert not again.monotonic and again.repeated == ["ab"] and "repeated ['ab']" in again.reason
    skip = check_alignment(_alignment([0, 1, 1, 6, 7, 8], 9), text, stopped=True)
    assert not skip.monotonic and skip.skipped == ["cd"] and skip.max_jump == 5
    early = check_alignment(_alignment([0, 1, 3, 4], 9), text, stopped=True)
    assert not early.monotonic and not early.reached_end and "stopped at word 'cd' of 3" in early.reason
    assert "never fired" in check_alignment(_alignment([0, 3, 6, 8], 9), text, stopped=False).reason
