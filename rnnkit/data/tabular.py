"""Labelled files for classification, tagging and forecasting, with errors that point at the cell.

Readers
-------
* :func:`read_table` - CSV (``.csv``), TSV (``.tsv`` / ``.tab``) with a header
  row, or JSONL (``.jsonl`` / ``.json``: one object per line).
* :func:`read_class_folders` - one sub-folder per class; each file is one
  example (``.txt``: text; ``.csv``: a numeric sequence, one time step per row).
* :func:`read_class_files` - one text file per class, one example per line (MR's ``rt-polarity.pos`` /
  ``rt-polarity.neg``, or ``<label>.txt`` files).
* :func:`read_conll` - CoNLL column files: one token per line, columns separated
  by spaces or tabs (token first, tags after), a blank line between sentences,
  ``-DOCSTART-`` lines skipped.
* :func:`read_tagged_jsonl` - JSONL with a list of tokens and a list of tags per line.

Lines end at line feeds only (:func:`~rnnkit.data.readers.text_lines`), as the CSV
and JSONL readers read them: U+0085 or U+2028 inside a token or a cell stays there.

Every failure raises :class:`~rnnkit.data.readers.DataError` whose message
starts ``FILE:LINE`` and names the column (by name and 1-based position)
when one is at fault: an empty file, a missing column, a ragged row, a
non-numeric value, bad JSON.
"""
from __future__ import annotations

import codecs
import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rnnkit.data.readers import DataError, jsonl_objects, read_text, text_lines

TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass
class Table:
    """Rows of a file as dicts, with the line each came from."""
    path: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def where(self, i: int, column: str | None = None) -> str:
        """``FILE:LINE`` (and the column, by name and position) of row ``i``."""
        loc = f"{self.path}:{self.lines[i]}"
        if column is None:
            return loc
        pos = f" (column {self.columns.index(column) + 1})" if column in self.columns else ""
        return f"{loc}: column {column!r}{pos}"

    def require(self, *names: str) -> None:
        """Error naming the file when a column is missing."""
        for name in names:
            if name not in self.columns:
                raise DataError(f"{self.path}:1: no column {name!r}; the file has columns "
                                f"{', '.join(map(repr, self.columns)) or '(none)'}")

    def column(self, name: str) -> list[Any]:
        self.require(name)
        out = []
        for i, row in enumerate(self.rows):
            if name not in row:
                raise DataError(f"{self.where(i)}: no value for column {name!r}")
            out.append(row[name])
        return out

    def text(self, name: str) -> list[str]:
        values = self.column(name)
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise DataError(f"{self.where(i, name)}: expected text, got {type(v).__name__} {v!r}")
        return values

    def numbers(self, name: str, allow_missing: bool = False) -> list[float]:
        """A numeric column; empty cells are NaN when ``allow_missing``, else an error."""
        out = []
        for i, v in enumerate(self.column(name)):
            out.append(parse_number(v, self.where(i, name), allow_missing))
        return out


def parse_number(value: Any, where: str, allow_missing: bool = False) -> float:
    if value is None or (isinstance(value, str) and value.strip() in ("", "NA", "NaN", "nan", "null")):
        if allow_missing:
            return math.nan
        raise DataError(f"{where}: missing value (use --missing interpolate to fill gaps)")
    if isinstance(value, bool):
        raise DataError(f"{where}: {value!r} is not a number")
    if isinstance(value, (int, float)):
        if not math.isfinite(float(value)) and not allow_missing:
            raise DataError(f"{where}: {value!r} is not a finite number")
        return float(value)
    try:
        number = float(str(value).strip())
    except ValueError:
        raise DataError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise DataError(f"{where}: {value!r} is not a finite number")
    return number


def read_table(path: str | Path, delimiter: str | None = None, encoding: str = "utf-8") -> Table:
    """A CSV / TSV file in ``encoding``, or a JSONL file (UTF-8; any other ``encoding`` is an error), as a
    :class:`Table` (format from the suffix)."""
    path = Path(path)
    if path.suffix.lower() in JSON_SUFFIXES:
        if _codec(encoding) not in ("utf-8", "utf-8-sig"):
            raise DataError(f"{path}: JSON lines are UTF-8 (RFC 8259), so an encoding of {encoding!r} does not "
                            "apply to it; re-encode the file as UTF-8, or give a CSV/TSV file in that encoding")
        return _read_jsonl(str(path))
    text = read_text(path, encoding)
    sep = delimiter or TEXT_SUFFIXES.get(path.suffix.lower())
    if sep is None:
        raise DataError(f"{path}: unknown table format {path.suffix!r}; use .csv, .tsv or .jsonl")
    return _read_delimited(str(path), text, sep)


def _read_delimited(path: str, text: str, sep: str) -> Table:
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: file is empty") from None
    header = [h.strip() for h in header]
    if any(not h for h in header):
        col = [i for i, h in enumerate(header) if not h][0] + 1
        raise DataError(f"{path}:1: column {col} has no name in the header row")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise DataError(f"{path}:1: duplicate column name(s) {', '.join(map(repr, dup))}")
    table = Table(path, header)
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise DataError(f"{path}:{line}: ragged row: {len(cells)} field(s), the header has "
                                f"{len(header)} ({', '.join(header)})")
            table.rows.append(dict(zip(header, cells)))
            table.lines.append(line)
    except csv.Error as err:
        raise DataError(f"{path}:{reader.line_num}: malformed {('TSV' if sep == chr(9) else 'CSV')}: {err}") from err
    if not table.rows:
        raise DataError(f"{path}: no data rows after the header")
    return table


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError as err:
        raise DataError(f"unknown text encoding {encoding!r} (expected a Python codec name such as utf-8, "
                        "cp1252 or latin-1)") from err


def _read_jsonl(path: str) -> Table:
    table = Table(path, [])
    seen: dict[str, None] = {}
    for n, row in jsonl_objects(path, "a JSON object per line"):
        for key in row:
            seen.setdefault(key, None)
        table.rows.append(row)
        table.lines.append(n)
    if not table.rows:
        raise DataError(f"{path}: file is empty")
    table.columns = list(seen)
    return table


# ----------------------------------------------------------------- class folders

@dataclass
class FolderExample:
    path: str
    label: str
    text: str | None = None                      # .txt files
    sequence: list[list[float]] | None = None    # .csv files: (T, F)


def read_class_folders(root: str | Path) -> list[FolderExample]:
    """Examples from ``root/<label>/<file>``: ``.txt`` text or ``.csv`` numeric sequences."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{root}: expected one sub-folder per class (at least 2), found {len(classes)}")
    out = []
    for folder in classes:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".txt", ".csv"))
        if not files:
            raise DataError(f"{folder}: class folder has no .txt or .csv files")
        for f in files:
            if f.suffix.lower() == ".txt":
                out.append(FolderExample(str(f), folder.name, text=read_text(f).strip()))
            else:
                out.append(FolderExample(str(f), folder.name, sequence=read_numeric_rows(f)))
    return out


def class_file_labels(files: list[Path]) -> list[str]:
    """The class of each file of a one-file-per-class folder: its suffix when all files share one stem (MR's
    ``rt-polarity.pos`` / ``rt-polarity.neg`` -> pos, neg), else its stem (``pos.txt`` -> pos)."""
    if len({f.stem for f in files}) == 1 and all(f.suffix for f in files):
        return [f.suffix[1:] for f in files]
    return [f.stem for f in files]


def read_class_files(root: str | Path, encoding: str = "utf-8") -> list[tuple[str, str, str]]:
    """``(text, label, FILE:LINE)`` of every non-empty line of ``root``'s files, one file per class, one
    example per line (see :func:`class_file_labels`). Lines end at LF only (a CR before it is dropped), so
    a decoded U+0085 stays inside its line."""
    root = Path(root)
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(files) < 2:
        raise DataError(f"{root}: expected one text file per class (at least 2), one example per line, found "
                        f"{len(files)} file(s)")
    labels = class_file_labels(files)
    if len(set(labels)) < len(labels):
        raise DataError(f"{root}: two files give the same class ({', '.join(f.name for f in files)}); name them "
                        "<label>.txt, or <name>.<label> with one <name> for all")
    out = []
    for f, label in zip(files, labels):
        for n, line in enumerate(read_text(f, encoding).split("\n"), 1):
            if line.strip():
                out.append((line.strip(), label, f"{f}:{n}"))
    return out


def read_numeric_rows(path: str | Path) -> list[list[float]]:
    """A headerless CSV of numbers (one time step per row) as a (T, F) list."""
    path = Path(path)
    rows = []
    for n, line in enumerate(text_lines(read_text(path)), 1):
        if not line.strip():
            continue
        cells = line.split(",")
        if rows and len(cells) != len(rows[0]):
            raise DataError(f"{path}:{n}: ragged row: {len(cells)} value(s), earlier rows have {len(rows[0])}")
        rows.append([parse_number(c, f"{path}:{n}: column {j + 1}") for j, c in enumerate(cells)])
    return rows


def parse_sequence(value: Any, where: str) -> list[list[float]]:
    """A numeric sequence cell as (T, F).

    Accepts a JSON list (of numbers, or of equal-length lists), or text:
    ``"1 2 3"`` / ``"1,2,3"`` (one feature per step) or ``"1,2;3,4"`` (steps
    separated by ``;``, features by ``,``).
    """
    if isinstance(value, str):
        s = value.strip()
        if not s:
            raise DataError(f"{where}: empty sequence")
        if ";" in s:
            steps = [step.split(",") for step in s.split(";") if step.strip()]
        else:
            steps = [[tok] for tok in s.replace(",", " ").split()]
    elif isinstance(value, list):
        steps = [v if isinstance(v, list) else [v] for v in value]
    else:
        raise DataError(f"{where}: expected a numeric sequence, got {type(value).__name__}")
    if not steps:
        raise DataError(f"{where}: empty sequence")
    width = len(steps[0])
    out = []
    for t, step in enumerate(steps):
        if len(step) != width:
            raise DataError(f"{where}: step {t + 1} has {len(step)} feature(s), step 1 has {width}")
        out.append([parse_number(v, f"{where}, step {t + 1}") for v in step])
    return out


# ----------------------------------------------------------------------- tagging

@dataclass
class TaggedSentence:
    tokens: list[str]
    tags: list[str]
    where: str  # FILE:LINE of the first token


CONLL_SEPARATOR = re.compile(r"[ \t\r\f\v]+")   # ASCII white space: a no-break space or U+0085 is part of a token


def read_conll(path: str | Path, tag_column: int = -1) -> list[TaggedSentence]:
    """Sentences of a CoNLL column file; ``tag_column`` indexes the space- or tab-separated columns."""
    path = Path(path)
    text = read_text(path)
    sentences, tokens, tags, start, width = [], [], [], 0, None
    for n, line in enumerate(text_lines(text), 1):
        cells = [c for c in CONLL_SEPARATOR.split(line) if c]
        if not cells or cells[0] == "-DOCSTART-":
            if tokens:
                sentences.append(TaggedSentence(tokens, tags, f"{path}:{start}"))
            tokens, tags = [], []
            continue
        if width is None:
            width = len(cells)
            if width < 2:
                raise DataError(f"{path}:{n}: expected a token and a tag column, found {width} column(s)")
            _check_tag_column(path, n, tag_column, width)
        if len(cells) != width:
            raise DataError(f"{path}:{n}: ragged row: {len(cells)} column(s), earlier lines have {width}")
        if not tokens:
            start = n
        tokens.append(cells[0])
        tags.append(cells[tag_column])
    if tokens:
        sentences.append(TaggedSentence(tokens, tags, f"{path}:{start}"))
    if not sentences:
        raise DataError(f"{path}: no sentences (only blank or -DOCSTART- lines)")
    return sentences


def _check_tag_column(path: Path, line: int, tag_column: int, width: int) -> None:
    if tag_column == 0 or not -width <= tag_column < width:
        raise DataError(f"{path}:{line}: tag column {tag_column} does not exist; lines have {width} "
                        "columns and column 0 is the token")


def read_tagged_jsonl(path: str | Path, tokens_key: str = "tokens", tags_key: str = "tags") -> list[TaggedSentence]:
    table = read_table(path)
    table.require(tokens_key, tags_key)
    out = []
    for i, row in enumerate(table.rows):
        toks, tags = row.get(tokens_key), row.get(tags_key)
        for key, val in ((tokens_key, toks), (tags_key, tags)):
            if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
                raise DataError(f"{table.where(i, key)}: expected a list of strings")
        if len(toks) != len(tags):
            raise DataError(f"{table.where(i, tags_key)}: {len(tags)} tags for {len(toks)} tokens")
        if toks:
            out.append(TaggedSentence(toks, tags, table.where(i)))
    return out


def read_tagged(path: str | Path, tag_column: int = -1) -> list[TaggedSentence]:
    """CoNLL or JSONL by suffix."""
    if Path(path).suffix.lower() in JSON_SUFFIXES:
        return read_tagged_jsonl(path)
    return read_conll(path, tag_column)


def check_labels(values: Sequence[str], known: Sequence[str], wheres: Sequence[str], what: str) -> None:
    """Error at the first value training never saw."""
    known_set = set(known)
    for v, w in zip(values, wheres):
        if v not in known_set:
            raise DataError(f"{w}: {what} {v!r} was never seen in training (known: {', '.join(sorted(known_set))})")
