"""Write files so that a reader never sees half of one: a temp file in the same folder, then os.replace."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np


def atomic_write(path: str | Path, save: Callable[[str], None]) -> None:
    """Call ``save(tmp_path)`` on a temporary file beside ``path``, then move it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_npz(path: str | Path, **arrays) -> None:
    """Compressed ``.npz`` of ``arrays``, written atomically (no pickled objects)."""
    def save(tmp):
        with open(tmp, "wb") as fh:   # a file object keeps numpy from appending ".npz" to the temp name
            np.savez_compressed(fh, **arrays)
    atomic_write(path, save)
