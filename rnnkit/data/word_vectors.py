"""Pretrained word vectors in the text format of word2vec, GloVe and fastText (``.vec`` / ``.txt``, also gzipped).

One word and its values per line, separated by spaces::

    2000000 300                    <- optional header: number of vectors, dimension (word2vec, fastText)
    the 0.0418 -0.0107 ... 0.2103  <- word, then D numbers
    , -0.0282 0.0170 ... -0.0413

The files are sorted most frequent first, so ``limit`` keeps the commonest words. A vocabulary is matched
against them by :meth:`WordVectors.lookup`: the word as it is, else the first (most frequent) word of the
file that is equal to it once both are lower-cased, so a lower-cased vocabulary finds ``Paris`` and a cased
one finds ``paris``. Errors are :class:`DataError` naming the file and, for a bad row, the line.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, TextIO

import numpy as np

from rnnkit.data.readers import DataError


def _open(path: Path) -> TextIO:
    if not path.is_file():
        raise DataError(f"{path}: no such word-vector file (expected word2vec / GloVe / fastText text format, "
                        f".vec / .txt, optionally .gz)")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="strict")
    return open(path, encoding="utf-8", errors="strict")


def _header(fields: list[str]) -> tuple[int, int] | None:
    """``(count, dim)`` when a first line is a word2vec / fastText header ``N D``."""
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        return int(fields[0]), int(fields[1])
    return None


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank line; an undecodable line is a DataError naming it."""
    with _open(path) as fh:
        n = 0
        try:
            for n, line in enumerate(fh, start=1):
                fields = line.rstrip("\r\n").rstrip(" ").split(" ")
                if fields != [""]:
                    yield n, fields
        except UnicodeDecodeError as err:
            raise DataError(f"{path}:{n + 1}: not UTF-8 text ({err.reason}); word-vector files are UTF-8") from None
        except (OSError, EOFError) as err:  # a damaged gzip stream
            raise DataError(f"{path}: cannot read past line {n}: {err}") from None


def vector_dim(path: str | Path) -> int:
    """The vectors' dimension, from the header or the first row (reads one or two lines)."""
    path = Path(path)
    for n, fields in _rows(path):
        head = _header(fields)
        if head is not None:
            return head[1]
        if len(fields) < 2:
            raise DataError(f"{path}:{n}: expected 'word v1 v2 ...' or a header 'count dim', got {fields[0]!r}")
        return len(fields) - 1
    raise DataError(f"{path}: empty word-vector file")


@dataclass
class WordVectors:
    """``words[i]`` has the vector ``vectors[i]`` (float32, (N, D)); ``source`` names the file."""
    words: list[str]
    vectors: np.ndarray
    source: str = ""
    _exact: dict[str, int] = field(init=False, repr=False)
    _lower: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._exact, self._lower = {}, {}
        for i, w in enumerate(self.words):
            self._exact.setdefault(w, i)
            self._lower.setdefault(w.lower(), i)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def lookup(self, word: str) -> int | None:
        """Row of ``word``: the exact word, else the most frequent word equal to it lower-cased, else None."""
        i = self._exact.get(word)
        return self._lower.get(word.lower()) if i is None else i

    def rows_for(self, tokens: Iterable[str]) -> tuple[list[int], list[int]]:
        """``(positions, rows)``: the positions in ``tokens`` that have a vector, and that vector's row."""
        pos, rows = [], []
        for p, t in enumerate(tokens):
            i = self.lookup(t)
            if i is not None:
                pos.append(p)
                rows.append(i)
        return pos, rows


def read_word_vectors(path: str | Path, wanted: Iterable[str] | None = None, limit: int = 0) -> WordVectors:
    """The vectors of a word2vec / GloVe / fastText text file.

    ``wanted``: keep only the words equal to one of these once both are lower-cased (saves memory on files of
    millions of words; :meth:`WordVectors.lookup` still prefers the exact form). ``limit``: read only the
    first ``limit`` vectors (0 = all). Every row must hold the header's (or the first row's) number of values.
    """
    path = Path(path)
    keep = None if wanted is None else {w.lower() for w in wanted}
    words: list[str] = []
    values: list[np.ndarray] = []
    dim = count = 0
    declared = None
    cut = False
    for n, fields in _rows(path):
        if not dim:
            declared = _header(fields)
            if declared is not None:
                dim = declared[1]
                if dim < 1:
                    raise DataError(f"{path}:{n}: header says dimension {dim}")
                continue
            dim = len(fields) - 1
            if dim < 1:
                raise DataError(f"{path}:{n}: expected 'word v1 v2 ...', got {fields[0]!r} alone")
        if len(fields) != dim + 1:
            raise DataError(f"{path}:{n}: ragged row: {len(fields) - 1} values after the word {fields[0]!r}, "
                            f"expected {dim} (as the {'header' if declared else 'first row'} says)")
        count += 1
        if keep is None or fields[0].lower() in keep:
            try:
                values.append(np.asarray(fields[1:], dtype=np.float32))
            except ValueError:
                raise DataError(f"{path}:{n}: the values of {fields[0]!r} are not all numbers") from None
            words.append(fields[0])
        if limit and count >= limit:
            cut = True
            break
    if not dim:
        raise DataError(f"{path}: empty word-vector file")
    if declared is not None and not cut and count != declared[0]:
        raise DataError(f"{path}: the header says {declared[0]} vectors but the file holds {count} "
                        f"(a truncated download?)")
    vectors = np.stack(values) if values else np.zeros((0, dim), dtype=np.float32)
    return WordVectors(words, vectors, str(path))
