"""Bay et al. frame accuracy, NLL per frame and piece statistics on hand cases."""
import numpy as np
import pytest

from rnnkit.metrics.music import frame_accuracy, frame_counts, histogram_distance, nll_per_frame, roll_stats


def test_bay_accuracy_hand_case():
    target = np.array([[1, 1, 0, 0],
                       [1, 0, 0, 0],
                       [0, 0, 0, 0],
                       [0, 0, 1, 1]])
    pred = np.array([[1, 0, 0, 0],      # TP 1, FN 1
                     [1, 0, 1, 0],      # TP 1, FP 1
                     [0, 0, 0, 0],      # nothing: adds nothing
                     [0, 0, 1, 1]])     # TP 2
    assert frame_counts(pred, target) == (4, 1, 1)
    assert frame_accuracy(pred, target) == pytest.approx(4 / 6)
    assert frame_accuracy(target, target) == 1.0
    with pytest.raises(ValueError, match="undefined"):
        frame_accuracy(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one shape"):
        frame_accuracy(np.zeros((2, 3)), np.zeros((3, 2)))


def test_nll_per_frame_counts_only_valid_frames():
    nll = np.array([[1.0, 2.0, 3.0], [4.0, 100.0, 100.0]])
    assert nll_per_frame(nll, lengths=[3, 1]) == pytest.approx((1 + 2 + 3 + 4) / 4)
    assert nll_per_frame(nll) == pytest.approx(210 / 6)
    with pytest.raises(ValueError, match="lengths must be"):
        nll_per_frame(nll, lengths=[4, 1])


def test_roll_stats_hand_case():
    frames = np.zeros((5, 13), dtype=bool)     # pitches 60..72
    frames[0:2, [0, 4, 7]] = True              # a C major chord for two frames
    frames[3, 12] = True                       # C5
    s = roll_stats(frames, lowest=60)
    expected = np.zeros(12)
    expected[[0, 4, 7]] = [3, 2, 2]            # note-frames: C 2 + 1, E 2, G 2
    np.testing.assert_allclose(s.pitch_class_histogram, expected / 7)
    assert s.polyphony == pytest.approx(7 / 3)
    assert s.note_density == pytest.approx(4 / 5)
    assert (s.lowest, s.highest, s.pitch_range) == (60, 72, 12)
    assert s.empty_frame_ratio == pytest.approx(2 / 5)
    silent = roll_stats(np.zeros((3, 4)), lowest=60)
    assert silent.lowest is None and silent.empty_frame_ratio == 1.0 and silent.pitch_range == 0
    assert histogram_distance(expected, expected) == 0.0
    assert histogram_distance([1, 0], [0, 1]) == 1.0
