"""The word2vec / GloVe / fastText text reader: header or not, gzip, the lower-cased match, and errors that name
the file and line."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from rnnkit.data.readers import DataError
from rnnkit.data.word_vectors import read_word_vectors, vector_dim

ROWS = ["the 0.1 0.2 0.3", "Paris 1 2 3", "paris 4 5 6", "Oslo -1 -2 -3.5"]


def _write(path, lines, gz=False):
    text = "".join(line + "\n" for line in lines)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("header,gz", [(False, False), (True, False), (True, True)])
def test_reads_glove_word2vec_and_gzip(tmp_path, header, gz):
    path = _write(tmp_path / ("v.vec.gz" if gz else "v.vec"), (["4 3"] if header else []) + ROWS, gz)
    v = read_word_vectors(path)
    assert v.words == ["the", "Paris", "paris", "Oslo"] and v.dim == 3 and vector_dim(path) == 3
    np.testing.assert_array_equal(v.vectors[3], np.float32([-1, -2, -3.5]))
    assert v.vectors.dtype == np.float32


def test_lookup_prefers_the_exact_word_then_the_lower_cased_one(tmp_path):
    v = read_word_vectors(_write(tmp_path / "v.txt", ROWS))
    assert v.lookup("Paris") == 1 and v.lookup("paris") == 2       # each exact form its own row
    assert v.lookup("oslo") == 3 and v.lookup("OSLO") == 3          # lower-cased: the file's first match
    assert v.lookup("THE") == 0 and v.lookup("berlin") is None
    assert v.rows_for(["x", "oslo", "the"]) == ([1, 2], [3, 0])


def test_wanted_and_limit_keep_fewer_rows(tmp_path):
    path = _write(tmp_path / "v.txt", ["4 3"] + ROWS)
    assert read_word_vectors(path, wanted={"oslo", "THE"}).words == ["the", "Oslo"]
    assert read_word_vectors(path, limit=2).words == ["the", "Paris"]   # the header's count not required


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nope\.vec: no such word-vector file"):
        read_word_vectors(tmp_path / "nope.vec")


@pytest.mark.parametrize("header", [False, True])
def test_ragged_row_names_its_line(tmp_path, header):
    lines = (["4 3"] if header else []) + ROWS[:2] + ["paris 4 5"] + ROWS[3:]
    path = _write(tmp_path / "v.vec", lines)
    line = 4 if header else 3
    with pytest.raises(DataError, match=rf"v\.vec:{line}: ragged row: 2 values after the word 'paris', expected 3"):
        read_word_vectors(path)


def test_non_numbers_and_a_short_file_are_errors(tmp_path):
    with pytest.raises(DataError, match=r"v\.vec:2: the values of 'Paris' are not all numbers"):
        read_word_vectors(_write(tmp_path / "v.vec", [ROWS[0], "Paris 1 x 3"]))
    with pytest.raises(DataError, match="the header says 5 vectors but the file holds 4"):
        read_word_vectors(_write(tmp_path / "w.vec", ["5 3"] + ROWS))
    with pytest.raises(DataError, match="empty word-vector file"):
        read_word_vectors(_write(tmp_path / "e.vec", []))
