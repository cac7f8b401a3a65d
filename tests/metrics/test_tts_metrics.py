"""Speech synthesis scores: mel cepstral distortion with DTW, and the monotonic-alignment check."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.metrics.tts import check_alignment, dtw_path, mel_cepstral_distortion


def test_mcd_is_zero_on_itself_and_ignores_a_time_stretch():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(20, 16))
    assert mel_cepstral_distortion(ref, ref) == pytest.approx(0.0, abs=1e-9)
    assert mel_cepstral_distortion(ref, np.repeat(ref, 2, axis=0)) == pytest.approx(0.0, abs=1e-9)  # DTW
    assert mel_cepstral_distortion(ref, ref + 5.0) == pytest.approx(0.0, abs=1e-9)  # loudness (c0) left out
    other = rng.normal(size=(25, 16))
    assert mel_cepstral_distortion(ref, other) > 5.0
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


def test_alignment_checks():
    assert check_alignment(_alignment([0, 0, 1, 2, 3, 4, 5], 6), stopped=True).monotonic
    back = check_alignment(_alignment([0, 1, 2, 3, 1, 2, 5], 6), stopped=True)
    assert not back.monotonic and back.max_back == 2 and "moves back" in back.reason
    skip = check_alignment(_alignment([0, 1, 6, 7, 8, 9], 10), stopped=True)
    assert not skip.monotonic and "skips 5" in skip.reason
    early = check_alignment(_alignment([0, 1, 2, 3], 10), stopped=True)
    assert not early.monotonic and "before the end" in early.reason
    assert "never fired" in check_alignment(_alignment([0, 1, 2], 3), stopped=False).reason
