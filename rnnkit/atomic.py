"""Atomic file writes: readers see the old file or the new one, never half of one.

Every output rnnkit keeps (checkpoints, ``config.yaml``, ``result.json``, tables, plots) goes through
:func:`atomic_write` (text: :func:`atomic_write_text`, CSV rows: :func:`atomic_write_csv`; writers that take a
file name, such as matplotlib's ``savefig``: :func:`atomic_save`):
a temporary file in the same directory, fsync, ``os.replace``, fsync of the directory.

In data-parallel training every process runs the task's code, but one process (rank 0) writes the run
directory: the others run inside :func:`written_elsewhere`, under which the writers here skip every path
in that directory (:func:`rnnkit.tasks.runs.rank_zero_writes` sets it up for ``rnnkit train``).
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_ELSEWHERE: list[Path] = []   # folders another process writes (see written_elsewhere)


@contextlib.contextmanager
def written_elsewhere(folder: str | Path) -> Iterator[None]:
    """Within: this process leaves ``folder`` to another one: the writers here skip any path under it."""
    folder = Path(folder).resolve()
    _ELSEWHERE.append(folder)
    try:
        yield
    finally:
        _ELSEWHERE.remove(folder)


def is_written_elsewhere(path: str | Path) -> bool:
    """True when ``path`` lies in a folder that another process writes (:func:`written_elsewhere`)."""
    if not _ELSEWHERE:
        return False
    path = Path(path).resolve()
    return any(path == f or f in path.parents for f in _ELSEWHERE)


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never half of one."""
    path = Path(path)
    if is_written_elsewhere(path):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets the mode open() would give it
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write` of UTF-8 text."""
    atomic_write(path, text.encode("utf-8"))


def atomic_write_csv(path: str | Path, rows: Iterable[Sequence]) -> None:
    """:func:`atomic_write_text` of ``rows`` as CSV in the csv module's default dialect (the bytes
    ``csv.writer`` gives on a file opened with ``newline=""``: ``\\r\\n`` line ends, quoting as needed)."""
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    atomic_write_text(path, buf.getvalue())


def atomic_save(path: str | Path, save: Callable[[str], None]) -> None:
    """Call ``save(tmp_path)`` on a temporary file beside ``path``, then move it over ``path`` (for writers
    that take a file name: soundfile, mido, numpy)."""
    path = Path(path)
    if is_written_elsewhere(path):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_npz(path: str | Path, **arrays) -> None:
    """Compressed ``.npz`` of ``arrays``, written atomically (no pickled objects)."""
    def save(tmp):
        with open(tmp, "wb") as fh:   # a file object keeps numpy from appending ".npz" to the temp name
            np.savez_compressed(fh, **arrays)
    atomic_save(path, save)
