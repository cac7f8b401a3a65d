"""The embedded corpus: text that is already on every machine with Python.

No download: the corpus is the source code (code, comments and docstrings) of
a fixed list of pure-Python standard-library modules, read at run time from
the running interpreter's own library directory (``sysconfig`` ``stdlib``
path).  About 1.3 MB of English prose and Python on CPython 3.11.
"""
from __future__ import annotations

import sysconfig
from pathlib import Path

from rnnkit.data.readers import DataError, read_text

STDLIB_FILES = (
    "argparse.py", "textwrap.py", "difflib.py", "functools.py", "random.py",
    "statistics.py", "fractions.py", "heapq.py", "bisect.py", "string.py", "shlex.py",
    "calendar.py", "csv.py", "fnmatch.py", "glob.py", "shutil.py", "tempfile.py",
    "contextlib.py", "dataclasses.py", "enum.py", "inspect.py", "typing.py",
    "subprocess.py", "threading.py", "queue.py", "sched.py", "copy.py", "pprint.py",
    "reprlib.py", "operator.py", "numbers.py", "abc.py", "json/__init__.py",
    "json/decoder.py", "json/encoder.py", "logging/__init__.py", "collections/__init__.py",
)
MIN_FILES = 20


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def embedded_corpus() -> tuple[list[tuple[str, str]], list[str]]:
    """``([(path, text), ...], missing)`` for the standard-library files listed above.

    Files absent from this Python are reported in ``missing``; fewer than
    ``MIN_FILES`` present is an error (a stripped Python without sources).
    """
    root = stdlib_dir()
    docs, missing = [], []
    for name in STDLIB_FILES:
        path = root / name
        if path.is_file():
            docs.append((str(path), read_text(path)))
        else:
            missing.append(name)
    if len(docs) < MIN_FILES:
        raise DataError(f"embedded corpus: only {len(docs)} of {len(STDLIB_FILES)} standard-library "
                        f"source files found under {root} (missing: {', '.join(missing)}); "
                        "this Python ships without sources, pass --data FILE instead")
    return docs, missing
