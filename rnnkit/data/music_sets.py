"""Polyphonic music benchmark sets as piano rolls.

The 2012 benchmark format (Boulanger-Lewandowski, Bengio and Vincent, "Modeling temporal
dependencies in high-dimensional sequences", ICML 2012; JSB Chorales, MuseData, Nottingham,
Piano-midi.de): a mapping with ``train``/``valid``/``test`` keys, each a list of sequences, each a
list of time steps, each a list of the MIDI pitches sounding then.  :func:`read_poly_set` reads it
from a pickle, a JSON file or a MATLAB ``.mat`` file.  The ``.mat`` files circulated with the
benchmark (``traindata``/``validdata``/``testdata`` cell arrays) hold each sequence as a (T, 88)
0/1 matrix for the pitches 21..108 instead of pitch lists; both forms are read.

Every set becomes a :class:`PolySet` of boolean piano rolls ``(T, P)`` over a fixed pitch range
(default 21..108, the 88 keys the benchmark uses).  A pitch outside the range, a non-integer
pitch, a missing split or an empty sequence raises :class:`~rnnkit.data.readers.DataError` naming
the file, split, sequence and step.

:func:`bach_chorales` is the embedded default: J. S. Bach's chorales from music21's bundled
corpus (no download), quantised to ``steps_per_quarter`` and cached on disk.
"""
from __future__ import annotations

import hashlib
import json
import numbers
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.atomic import save_npz
from .readers import DataError

SPLITS = ("train", "valid", "test")
MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}
BENCHMARK_LOWEST, BENCHMARK_KEYS = 21, 88


@dataclass
class PolySet:
    """``train``/``valid``/``test`` lists of boolean piano rolls (T, P) for pitches ``lowest..lowest+P-1``."""
    train: list[np.ndarray]
    valid: list[np.ndarray]
    test: list[np.ndarray]
    lowest: int
    n_pitches: int
    source: str

    def split(self, name: str) -> list[np.ndarray]:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)


def read_poly_set(path: str | Path, lowest: int = BENCHMARK_LOWEST, highest: int = BENCHMARK_LOWEST + BENCHMARK_KEYS - 1
                  ) -> PolySet:
    """A 2012-format set from ``.pickle``/``.pkl``, ``.json`` or ``.mat``, as rolls over ``lowest..highest``.

    Pickles are read with an unpickler that only builds lists, dicts, numbers and numpy arrays, so
    a hostile pickle cannot run code.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if not 0 <= lowest <= highest <= 127:
        raise ValueError(f"need 0 <= lowest <= highest <= 127, got {lowest}..{highest}")
    suffix = path.suffix.lower()
    if suffix in (".pickle", ".pkl"):
        raw = _load_pickle(path)
    elif suffix == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: not valid JSON ({err})") from err
    elif suffix == ".mat":
        raw = _load_mat(path)
    else:
        raise DataError(f"{path}: unknown suffix {suffix!r}; expected .pickle, .pkl, .json or .mat")
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping with keys {list(SPLITS)}, got {type(raw).__name__}")
    missing = [s for s in SPLITS if s not in raw]
    if missing:
        raise DataError(f"{path}: missing splits {missing}; expected keys {list(SPLITS)}, found {sorted(raw)}")
    rolls = {s: [_to_roll(seq, lowest, highest, f"{path}: {s}[{i}]") for i, seq in enumerate(_as_list(raw[s], path, s))]
             for s in SPLITS}
    return PolySet(rolls["train"], rolls["valid"], rolls["test"], lowest, highest - lowest + 1, str(path))


def _as_list(seqs, path: Path, split: str) -> list:
    if isinstance(seqs, np.ndarray) and seqs.dtype == object:
        seqs = list(seqs.ravel())
    if not isinstance(seqs, (list, tuple)) or not seqs:
        raise DataError(f"{path}: split {split!r} must be a non-empty list of sequences")
    return list(seqs)


def _to_roll(seq, lowest: int, highest: int, where: str) -> np.ndarray:
    """One sequence: a list of pitch lists, or a (T, 88) 0/1 matrix over 21..108 (the .mat form)."""
    P = highest - lowest + 1
    if isinstance(seq, np.ndarray) and seq.ndim == 2:
        if seq.shape[1] != BENCHMARK_KEYS or seq.shape[0] == 0:
            raise DataError(f"{where}: a matrix sequence must be (T, {BENCHMARK_KEYS}) over pitches 21..108, "
                            f"got shape {seq.shape}")
        if not np.isin(seq, (0, 1)).all():
            raise DataError(f"{where}: a matrix sequence must hold only 0 and 1")
        t, k = np.nonzero(seq)
        bad = (k + BENCHMARK_LOWEST < lowest) | (k + BENCHMARK_LOWEST > highest)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where} step {t[i]}: pitch {k[i] + BENCHMARK_LOWEST} outside the range "
                            f"{lowest}..{highest}")
        roll = np.zeros((seq.shape[0], P), dtype=bool)
        roll[t, k + BENCHMARK_LOWEST - lowest] = True
        return roll
    if isinstance(seq, np.ndarray):
        seq = list(seq.ravel()) if seq.dtype == object else seq.tolist()
    if not isinstance(seq, (list, tuple)) or not seq:
        raise DataError(f"{where}: expected a non-empty list of time steps")
    roll = np.zeros((len(seq), P), dtype=bool)
    for t, step in enumerate(seq):
        pitches = np.atleast_1d(np.asarray(step)).ravel().tolist() if isinstance(step, np.ndarray) else step
        if not isinstance(pitches, (list, tuple)):
            raise DataError(f"{where} step {t}: expected a list of MIDI pitches, got {type(step).__name__}")
        for p in pitches:
            if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or p != int(p):
                raise DataError(f"{where} step {t}: pitch {p!r} is not an integer MIDI pitch")
            if not lowest <= p <= highest:
                raise DataError(f"{where} step {t}: pitch {int(p)} outside the range {lowest}..{highest}")
            roll[t, int(p) - lowest] = True
    return roll


class _DataUnpickler(pickle.Unpickler):
    """Builds plain containers, numbers and numpy arrays; refuses every other global."""
    ALLOWED = {("builtins", n) for n in ("list", "dict", "tuple", "set", "frozenset", "int", "float")} | {
        ("__builtin__", n) for n in ("list", "dict", "tuple", "set", "frozenset", "int", "float", "long")} | {
        (m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")} | {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to build {module}.{name}: only lists, numbers and arrays")
        return super().find_class(module, name)


def _load_pickle(path: Path):
    try:
        with open(path, "rb") as fh:   # latin1 reads the Python 2 pickles the benchmark shipped as
            return _DataUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError, IndexError) as err:
        raise DataError(f"{path}: not a readable data pickle ({err})") from err


def _load_mat(path: Path) -> dict:
    try:
        from scipy.io import loadmat
    except ImportError as err:
        raise ImportError(".mat files need scipy: pip install 'rnnkit[music]'") from err
    try:
        mat = loadmat(str(path))
    except (ValueError, TypeError, OSError, NotImplementedError) as err:
        raise DataError(f"{path}: not a readable MATLAB file ({err})") from err
    out = {}
    for split in SPLITS:   # accept train/valid/test or the benchmark's traindata/validdata/testdata
        key = split if split in mat else MAT_KEYS[split]
        if key in mat:
            out[split] = _unnest(mat[key])
    return out


def _unnest(cell) -> list:
    """A MATLAB cell array (object ndarray, often (1, N)) of sequences -> a list of sequences.

    A sequence is either a (T, 88) numeric matrix or itself a cell array of time steps, each a
    (1, k) or (k, 1) numeric array of pitches (empty for a silent step).
    """
    if not (isinstance(cell, np.ndarray) and cell.dtype == object):
        return cell
    seqs = []
    for seq in cell.ravel():
        if isinstance(seq, np.ndarray) and seq.dtype == object:
            seqs.append([np.asarray(step).ravel().astype(float).tolist() for step in seq.ravel()])
        else:
            seqs.append(seq)
    return seqs


# -- the embedded default: Bach chorales from music21 ---------------------------------------------
def bach_chorales(steps_per_quarter: int = 4, *, lowest: int = BENCHMARK_LOWEST,
                  highest: int = BENCHMARK_LOWEST + BENCHMARK_KEYS - 1, limit: int | None = None,
                  cache_dir: str | Path | None = None) -> list[tuple[str, np.ndarray]]:
    """``[(name, roll (T, P) bool), ...]``: music21's Bach chorales (Riemenschneider order), quantised.

    Ties are merged (``stripTies``), grace notes (zero duration) are left out, repeats are not
    expanded.  ``limit`` keeps the first chorales only.  With ``cache_dir`` the rolls are stored in
    one ``.npz`` keyed by the settings and the music21 version, written atomically.
    """
    try:
        import music21
        from music21 import corpus
    except ImportError as err:
        raise ImportError("the Bach chorales need music21: pip install 'rnnkit[music]'") from err
    if steps_per_quarter < 1:
        raise ValueError(f"steps_per_quarter must be >= 1, got {steps_per_quarter}")
    key = hashlib.sha256(json.dumps([steps_per_quarter, lowest, highest, limit, music21.__version__]).encode())
    entry = Path(cache_dir) / f"bach_chorales_{key.hexdigest()[:16]}.npz" if cache_dir else None
    if entry is not None and entry.exists():
        with np.load(entry, allow_pickle=False) as z:
            names = [str(n) for n in z["names"]]
            return [(n, z[f"roll_{i}"]) for i, n in enumerate(names)]
    names = list(corpus.chorales.Iterator(returnType="filename"))
    if limit is not None:
        names = names[:limit]
    out = [(name, _score_roll(corpus.parse(name), steps_per_quarter, lowest, highest, name)) for name in names]
    if entry is not None:
        arrays = {f"roll_{i}": roll for i, (_, roll) in enumerate(out)}
        save_npz(entry, names=np.array([n for n, _ in out]), **arrays)
    return out


def _score_roll(score, steps_per_quarter: int, lowest: int, highest: int, name: str) -> np.ndarray:
    spans = []
    for el in score.stripTies().flatten().notes:
        start = int(round(float(el.offset) * steps_per_quarter))
        end = int(round(float(el.offset + el.quarterLength) * steps_per_quarter))
        if el.quarterLength == 0:
            continue   # grace note
        for p in el.pitches:
            if not lowest <= p.midi <= highest:
                raise DataError(f"music21 corpus {name}: pitch {p.midi} outside {lowest}..{highest}")
            spans.append((p.midi - lowest, start, max(end, start + 1)))
    if not spans:
        raise DataError(f"music21 corpus {name}: no notes")
    roll = np.zeros((max(e for _, _, e in spans), highest - lowest + 1), dtype=bool)
    for p, s, e in spans:
        roll[s:e, p] = True
    return roll


def split_pieces(pieces: list, fractions=(0.8, 0.1, 0.1)) -> tuple[list, list, list]:
    """Deterministic train/valid/test split of a list in order (first 80 %, next 10 %, last 10 %)."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    n = len(pieces)
    a = int(round(n * fractions[0]))
    b = a + int(round(n * fractions[1]))
    if not (0 < a < b < n):
        raise ValueError(f"{n} pieces are too few to split with fractions {fractions}")
    return pieces[:a], pieces[a:b], pieces[b:]
