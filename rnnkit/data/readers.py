"""Read training text with errors a user can act on.

``read_text(path)`` returns the text of one UTF-8 file, ``text_lines(text)`` its lines (split at line feeds
only, as the CSV and JSON-lines readers split them); ``read_documents(path)``
accepts a file or a directory (every ``*.txt`` file inside, sorted, one
document each); ``jsonl_objects(path, expected)`` yields the objects of a
JSON-lines file with their line numbers, the one JSON-lines loop every reader
uses.  Failures raise :class:`DataError` naming the file (and line) and, for
bad encodings, the byte offset of the first invalid byte.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

BINARY_PROBE = 8192


class DataError(ValueError):
    """The input data cannot be used; the message says which file and why."""


class EncodingError(DataError):
    """A text file does not decode with the expected encoding; the message names the file, byte and line."""


class _BadLine(ValueError):
    """What is wrong with one line of a file (the caller adds the file and line number)."""


def jsonl_objects(path: str | Path, expected: str,
                  problems: list[str] | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line of a UTF-8 JSON-lines file (a leading BOM is dropped).

    A line that is not UTF-8, not JSON, or not an object is a :class:`DataError` naming the file and line
    and ``expected`` (what a line holds).  Given a ``problems`` list (the ``--skip-bad`` mode), a bad line
    is skipped instead and its message appended there.  A missing file or a directory is always an error.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a JSON-lines file")
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if n == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                row = _json_object(raw, expected)
            except _BadLine as err:
                message = f"{path}:{n}: {err}"
                if problems is None:
                    raise DataError(message) from err
                problems.append(message)
                continue
            if row is not None:
                yield n, row


def _json_object(raw: bytes, expected: str) -> dict | None:
    """The object on one line (None for a blank line); _BadLine saying what is wrong with it."""
    try:
        line = raw.decode("utf-8").rstrip("\r\n")   # so an error's column is on this line, not the next
    except UnicodeDecodeError as err:
        raise _BadLine(f"not valid UTF-8 at byte {err.start} of the line (byte 0x{raw[err.start]:02x}); "
                       "re-encode the file as UTF-8") from err
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise _BadLine(f"not valid JSON ({err.msg} at column {err.colno}); expected {expected}") from err
    if not isinstance(row, dict):
        raise _BadLine(f"expected {expected}, got a JSON {type(row).__name__}")
    return row


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The whole text of a file in ``encoding`` (UTF-8 by default; a leading BOM is dropped). Bytes that do not
    decode raise :class:`EncodingError` naming the byte offset and line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a text file")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: file is empty")
    nul = raw.find(b"\x00", 0, BINARY_PROBE)
    if nul >= 0:
        raise DataError(f"{path}: looks binary (NUL byte at offset {nul}); expected UTF-8 text")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        name = "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        fix = "re-encode the file as UTF-8" if name == "UTF-8" else "check the file's encoding"
        raise EncodingError(f"{path}: not valid {name} at byte offset {err.start} "
                            f"(byte 0x{raw[err.start]:02x}) on line {line}; {fix}") from err
    return text.removeprefix("\ufeff")


def text_lines(text: str) -> list[str]:
    """The lines of ``text`` split at ``\\n`` only, a ``\\r`` before it dropped (CRLF files), as the CSV and
    JSON-lines readers split a file: unlike ``str.splitlines``, U+0085, U+2028, form feeds and the other
    characters Unicode counts as line breaks stay inside their line.  A final newline ends the last line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_documents(path: str | Path, pattern: str = "*.txt") -> list[tuple[str, str]]:
    """``[(name, text), ...]`` from a file, or from every ``pattern`` file under a directory."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob(pattern) if p.is_file())
        if not files:
            raise DataError(f"{path}: directory has no {pattern} files")
        return [(str(p), read_text(p)) for p in files]
    return [(str(path), read_text(path))]


def split_documents(docs: list[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """First ``1 - val_fraction`` of the characters for training, the rest for validation.

    The documents stay in order; the one holding the split point is cut in two.
    """
    total = sum(len(d) for d in docs)
    cut = int(round(total * (1.0 - val_fraction)))
    train, val, seen = [], [], 0
    for doc in docs:
        if seen + len(doc) <= cut:
            train.append(doc)
        elif seen >= cut:
            val.append(doc)
        else:
            train.append(doc[: cut - seen])
            val.append(doc[cut - seen:])
        seen += len(doc)
    train = [d for d in train if d]
    val = [d for d in val if d]
    if not train or not val:
        raise DataError(f"text too short to split ({total} characters) with val_fraction={val_fraction}")
    return train, val
