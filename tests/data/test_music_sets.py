"""The 2012 polyphonic benchmark format from pickle, JSON and .mat; the music21 Bach chorales."""
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import music_sets
from rnnkit.data.readers import DataError

SET = {"train": [[[60, 64, 67], [], [62]], [[21], [108, 21]]],
       "valid": [[[70]]],
       "test": [[[48, 55], [48]]]}
SHARED = Path("/work/shared/data/music/boulanger2012_pianoroll_mat")


def _check(ps):
    assert (len(ps.train), len(ps.valid), len(ps.test)) == (2, 1, 1)
    assert ps.lowest == 21 and ps.n_pitches == 88
    first = ps.train[0]
    assert first.shape == (3, 88) and first.dtype == bool
    assert [list(np.flatnonzero(f) + 21) for f in first] == [[60, 64, 67], [], [62]]
    assert [list(np.flatnonzero(f) + 21) for f in ps.train[1]] == [[21], [21, 108]]


def test_pickle_and_json(tmp_path):
    (tmp_path / "s.pickle").write_bytes(pickle.dumps(SET, protocol=2))
    (tmp_path / "s.json").write_text(json.dumps(SET))
    _check(music_sets.read_poly_set(tmp_path / "s.pickle"))
    _check(music_sets.read_poly_set(tmp_path / "s.json"))


def test_pickle_with_code_is_refused(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("hi",))
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"train": Boom()}))
    with pytest.raises(DataError, match="evil.pkl: not a readable data pickle.*builtins.print"):
        music_sets.read_poly_set(tmp_path / "evil.pkl")


def test_mat_nested_cell_arrays_and_matrices(tmp_path):
    savemat = pytest.importorskip("scipy.io").savemat

    def cell(items):
        arr = np.empty((1, len(items)), dtype=object)
        for i, x in enumerate(items):
            arr[0, i] = x
        return arr
    nested = {s: cell([cell([np.array(step, dtype=float).reshape(1, -1) for step in seq]) for seq in seqs])
              for s, seqs in SET.items()}
    savemat(tmp_path / "nested.mat", nested)
    _check(music_sets.read_poly_set(tmp_path / "nested.mat"))

    def matrix(seq):
        m = np.zeros((len(seq), 88), dtype=np.uint8)
        for t, step in enumerate(seq):
            m[t, [p - 21 for p in step]] = 1
        return m
    as_matrices = {music_sets.MAT_KEYS[s]: cell([matrix(seq) for seq in seqs]) for s, seqs in SET.items()}
    savemat(tmp_path / "matrices.mat", as_matrices)
    _check(music_sets.read_poly_set(tmp_path / "matrices.mat"))
    with pytest.raises(DataError, match=r"matrices.mat: train\[1\] step 0: pitch 21 outside the range 36..108"):
        music_sets.read_poly_set(tmp_path / "matrices.mat", lowest=36)


def test_bad_sets_name_file_split_sequence_step(tmp_path):
    bad = dict(SET, valid=[[[70], [130]]])
    (tmp_path / "range.json").write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"range.json: valid\[0\] step 1: pitch 130 outside the range 21..108"):
        music_sets.read_poly_set(tmp_path / "range.json")
    (tmp_path / "nosplit.json").write_text(json.dumps({"train": SET["train"]}))
    with pytest.raises(DataError, match=r"nosplit.json: missing splits \['valid', 'test'\]"):
        music_sets.read_poly_set(tmp_path / "nosplit.json")
    (tmp_path / "frac.json").write_text(json.dumps(dict(SET, test=[[[60.5]]])))
    with pytest.raises(DataError, match=r"frac.json: test\[0\] step 0: pitch 60.5 is not an integer"):
        music_sets.read_poly_set(tmp_path / "frac.json")
    (tmp_path / "empty.json").write_text(json.dumps(dict(SET, train=[[]])))
    with pytest.raises(DataError, match=r"empty.json: train\[0\]: expected a non-empty list"):
        music_sets.read_poly_set(tmp_path / "empty.json")
    (tmp_path / "x.txt").write_text("{}")
    with pytest.raises(DataError, match="unknown suffix"):
        music_sets.read_poly_set(tmp_path / "x.txt")
    # a narrower range than the data's rejects, never clips
    (tmp_path / "ok.json").write_text(json.dumps(SET))
    with pytest.raises(DataError, match=r"pitch 21 outside the range 36..96"):
        music_sets.read_poly_set(tmp_path / "ok.json", lowest=36, highest=96)


@pytest.mark.skipif(not (SHARED / "Nottingham.mat").exists(), reason="shared development data not present")
def test_shared_nottingham_mat():
    ps = music_sets.read_poly_set(SHARED / "Nottingham.mat")
    assert (len(ps.train), len(ps.valid), len(ps.test)) == (694, 173, 170)
    assert all(r.shape[1] == 88 for r in ps.train)
    # the first training frame of the first tune: a C major chord, C3 E3 G3 + E4
    assert list(np.flatnonzero(ps.train[0][0]) + 21) == [48, 52, 55, 64]


def test_bach_chorales_two_and_cache(tmp_path):
    pytest.importorskip("music21")
    got = music_sets.bach_chorales(steps_per_quarter=4, limit=2, cache_dir=tmp_path)
    assert len(got) == 2
    for name, roll in got:
        assert roll.dtype == bool and roll.shape[1] == 88 and roll.shape[0] > 16
        poly = roll.sum(axis=1)
        assert poly.max() <= 4 and np.mean(poly == 4) > 0.5     # four voices most of the time
    again = music_sets.bach_chorales(steps_per_quarter=4, limit=2, cache_dir=tmp_path)
    assert [n for n, _ in again] == [n for n, _ in got]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(again, got))
    assert len(list(tmp_path.glob("*.npz"))) == 1
    coarse = music_sets.bach_chorales(steps_per_quarter=1, limit=1)
    assert abs(coarse[0][1].shape[0] * 4 - got[0][1].shape[0]) <= 4


def test_split_pieces():
    tr, va, te = music_sets.split_pieces(list(range(10)))
    assert (tr, va, te) == (list(range(8)), [8], [9])
    with pytest.raises(ValueError, match="too few"):
        music_sets.split_pieces([1, 2])
