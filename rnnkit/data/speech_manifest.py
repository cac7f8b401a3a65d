"""Speech data sets as lists of (audio file, transcript) pairs, from the layouts people ship.

Five readers, one result type (:class:`SpeechManifest`):

- ``read_jsonl_manifest``: NeMo-style JSON lines ``{"audio_filepath": ..., "text": ..., "duration": ...}``
  (``duration`` optional);
- ``read_table_manifest``: CSV (``.csv``) or TSV (``.tsv``) with a header naming an ``audio``
  column and a ``text`` or ``label`` column;
- ``read_librispeech``: the LibriSpeech layout, ``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt``
  lines ``<utterance-id> TRANSCRIPT`` beside ``<utterance-id>.flac`` (or .wav/.ogg);
- ``read_ljspeech``: the LJSpeech layout, ``metadata.csv`` lines ``<id>|<text>|<normalised text>``
  (no header; the normalised text when given, else the text) beside ``wavs/<id>.wav``;
- ``read_labelled_folder``: a folder of audio files whose label is in the file name
  (``label_pattern`` such as ``{label}_{speaker}_{index}.wav``) or, without a pattern, is the
  name of the folder holding the file.

``read_speech_manifest(path)`` picks the reader from the path (an LJSpeech folder or its
``metadata.csv``: the LJSpeech reader).  Relative audio paths are taken
relative to the manifest's folder.  A bad entry (missing field, missing audio file, empty
transcript, characters outside ``vocabulary``) raises :class:`DataError` naming the file and line;
with ``skip_bad=True`` it is skipped instead and counted in ``SpeechManifest.skipped`` with its
reason in ``problems``.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

from rnnkit.data.audio import AUDIO_SUFFIXES
from rnnkit.data.readers import DataError, jsonl_objects

JSONL_ENTRY = '{"audio_filepath": ..., "text": ..., "duration": ...}'


@dataclass(frozen=True)
class Utterance:
    """One recording: its audio file, transcript, duration in seconds if known, and where it came from."""

    audio: Path
    text: str
    duration: Optional[float] = None
    source: str = ""   # "file:line" of the manifest entry, for messages


@dataclass
class SpeechManifest:
    """The usable utterances, and how many entries were skipped and why (with skip_bad)."""

    utterances: list[Utterance]
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.utterances)


class _Collector:
    """Gathers utterances; a bad entry raises, or is counted when skip_bad is set."""

    def __init__(self, vocabulary: Optional[Iterable[str]], skip_bad: bool):
        self.vocabulary = None if vocabulary is None else set(vocabulary)
        self.skip_bad = skip_bad
        self.result = SpeechManifest([])

    def bad(self, where: str, why: str) -> None:
        message = f"{where}: {why}"
        if not self.skip_bad:
            raise DataError(message)
        self.result.skipped += 1
        self.result.problems.append(message)

    def json_lines(self, path: Path, expected: str) -> Iterator[tuple[int, dict]]:
        """``jsonl_objects`` of ``path``; with skip_bad an unreadable line is counted like a bad entry."""
        unreadable: Optional[list[str]] = [] if self.skip_bad else None
        for n, entry in jsonl_objects(path, expected, unreadable):
            self._skip_all(unreadable)
            yield n, entry
        self._skip_all(unreadable)

    def _skip_all(self, messages: Optional[list[str]]) -> None:
        for message in messages or ():
            self.result.skipped += 1
            self.result.problems.append(message)
        if messages:
            messages.clear()

    def add(self, where: str, audio: Path, text: str, duration: Optional[float] = None) -> None:
        text = " ".join(str(text).split())
        if not text:
            return self.bad(where, "empty transcript, expected some text")
        if self.vocabulary is not None:
            outside = sorted(set(text) - self.vocabulary - {" "})
            if outside:
                return self.bad(where, f"transcript {text!r} has characters outside the vocabulary: {outside}")
        if not audio.is_file():
            return self.bad(where, f"audio file {audio} does not exist")
        if duration is not None and not duration > 0:
            return self.bad(where, f"duration must be a positive number of seconds, got {duration}")
        self.result.utterances.append(Utterance(audio, text, duration, where))

    def finish(self, path: Path) -> SpeechManifest:
        if not self.result.utterances:
            detail = f" ({self.result.skipped} skipped: {self.result.problems[0]} ...)" if self.result.skipped else ""
            raise DataError(f"{path}: no usable utterances{detail}")
        return self.result


def _existing_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such {what}")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a {what}")
    return path


def _resolve(base: Path, audio: str) -> Path:
    p = Path(audio)
    return p if p.is_absolute() else base / p


def read_jsonl_manifest(path: str | Path, *, vocabulary: Optional[Iterable[str]] = None,
                        skip_bad: bool = False) -> SpeechManifest:
    """NeMo-style JSON lines: one object per line with audio_filepath, text and optional duration."""
    path = _existing_file(Path(path), "JSONL manifest")
    out = _Collector(vocabulary, skip_bad)
    for n, entry in out.json_lines(path, JSONL_ENTRY):
        where = f"{path}:{n}"
        if "audio_filepath" not in entry or "text" not in entry:
            out.bad(where, 'expected an object with "audio_filepath" and "text" fields')
            continue
        duration = entry.get("duration")
        if duration is not None and not isinstance(duration, (int, float)):
            out.bad(where, f'"duration" must be a number of seconds, got {duration!r}')
            continue
        out.add(where, _resolve(path.parent, entry["audio_filepath"]), entry["text"],
                None if duration is None else float(duration))
    return out.finish(path)


def read_table_manifest(path: str | Path, *, vocabulary: Optional[Iterable[str]] = None,
                        skip_bad: bool = False) -> SpeechManifest:
    """CSV or TSV (by suffix) with a header: an ``audio`` column and a ``text`` or ``label`` column."""
    path = _existing_file(Path(path), "CSV/TSV manifest")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    out = _Collector(vocabulary, skip_bad)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        header = reader.fieldnames or []
        text_col = "text" if "text" in header else "label" if "label" in header else None
        if "audio" not in header or text_col is None:
            raise DataError(f"{path}:1: header {header} must name an 'audio' column and a 'text' or 'label' "
                            f"column ({'tab' if delimiter == chr(9) else 'comma'}-separated)")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            audio, text = row.get("audio"), row.get(text_col)
            if not audio or text is None:
                out.bad(where, f"expected values in the 'audio' and '{text_col}' columns")
                continue
            out.add(where, _resolve(path.parent, audio), text)
    return out.finish(path)


def read_librispeech(root: str | Path, *, vocabulary: Optional[Iterable[str]] = None,
                     skip_bad: bool = False) -> SpeechManifest:
    """Every ``*.trans.txt`` under ``root``; each line ``<utterance-id> TRANSCRIPT`` names an audio file beside it."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: expected a LibriSpeech folder (with */*/*.trans.txt files)")
    transcripts = sorted(root.rglob("*.trans.txt"))
    if not transcripts:
        raise DataError(f"{root}: no *.trans.txt transcript files found (LibriSpeech layout expected)")
    out = _Collector(vocabulary, skip_bad)
    for trans in transcripts:
        with open(trans, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{trans}:{n}"
                parts = line.split(maxsplit=1)
                if len(parts) < 2:
                    out.bad(where, "expected '<utterance-id> TRANSCRIPT'")
                    continue
                uid, text = parts
                audio = next((trans.parent / f"{uid}{s}" for s in (".flac", ".wav", ".ogg")
                              if (trans.parent / f"{uid}{s}").is_file()), trans.parent / f"{uid}.flac")
                out.add(where, audio, text)
    return out.finish(root)


def read_ljspeech(path: str | Path, *, vocabulary: Optional[Iterable[str]] = None,
                  skip_bad: bool = False) -> SpeechManifest:
    """An LJSpeech folder (or its ``metadata.csv``): ``<id>|<text>|<normalised text>`` per line, audio in
    ``wavs/<id>.wav`` beside the metadata."""
    path = Path(path)
    meta = path / "metadata.csv" if path.is_dir() else path
    meta = _existing_file(meta, "LJSpeech metadata.csv")
    out = _Collector(vocabulary, skip_bad)
    with open(meta, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{meta}:{n}"
            parts = line.rstrip("\n").split("|")
            if len(parts) not in (2, 3) or not parts[0].strip():
                out.bad(where, f"expected '<id>|<text>|<normalised text>' (LJSpeech), got {len(parts)} field(s)")
                continue
            text = parts[2] if len(parts) == 3 and parts[2].strip() else parts[1]
            out.add(where, meta.parent / "wavs" / f"{parts[0].strip()}.wav", text)
    return out.finish(meta)


def is_ljspeech(path: Path) -> bool:
    return (path / "metadata.csv").is_file() if path.is_dir() else path.name == "metadata.csv"


def label_pattern_regex(pattern: str) -> re.Pattern:
    """``{label}_{speaker}_{index}.wav`` -> a regex with a named group per field; {label} is required."""
    fields = re.findall(r"\{(\w*)\}", pattern)
    if "label" not in fields:
        raise ValueError(f"label_pattern {pattern!r} must contain {{label}}, "
                         "e.g. '{label}_{speaker}_{index}.wav'")
    if len(set(fields)) != len(fields) or "" in fields:
        raise ValueError(f"label_pattern {pattern!r}: each field must be named and appear once")
    regex, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", pattern):
        regex += re.escape(pattern[pos:m.start()]) + f"(?P<{m.group(1)}>.+?)"
        pos = m.end()
    return re.compile(regex + re.escape(pattern[pos:]) + r"\Z")


def read_labelled_folder(root: str | Path, label_pattern: Optional[str] = None, *,
                         vocabulary: Optional[Iterable[str]] = None, skip_bad: bool = False) -> SpeechManifest:
    """Audio files under ``root``, labelled by ``label_pattern`` on the file name or by their folder's name."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of audio files")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise DataError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
    regex = None if label_pattern is None else label_pattern_regex(label_pattern)
    out = _Collector(vocabulary, skip_bad)
    for audio in files:
        where = str(audio)
        if regex is None:
            if audio.parent == root:
                out.bad(where, "file is not inside a label folder (<root>/<label>/<file>); "
                               "pass label_pattern to read labels from file names")
                continue
            label = audio.parent.name
        else:
            m = regex.match(audio.name)
            if m is None:
                out.bad(where, f"file name does not match label_pattern {label_pattern!r}")
                continue
            label = m.group("label")
        out.add(where, audio, label)
    return out.finish(root)


def read_speech_manifest(path: str | Path, *, label_pattern: Optional[str] = None,
                         vocabulary: Optional[Iterable[str]] = None, skip_bad: bool = False) -> SpeechManifest:
    """Pick the reader from ``path``: .jsonl/.json, .csv/.tsv, a LibriSpeech folder, or a labelled folder."""
    path = Path(path)
    kw = dict(vocabulary=vocabulary, skip_bad=skip_bad)
    if label_pattern is None and is_ljspeech(path):
        return read_ljspeech(path, **kw)
    if path.is_dir():
        if label_pattern is None and next(path.rglob("*.trans.txt"), None) is not None:
            return read_librispeech(path, **kw)
        return read_labelled_folder(path, label_pattern, **kw)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return read_jsonl_manifest(path, **kw)
    if suffix in (".csv", ".tsv"):
        return read_table_manifest(path, **kw)
    if not path.exists():
        raise DataError(f"{path}: no such manifest file or folder")
    raise DataError(f"{path}: unknown manifest type; expected .jsonl, .csv, .tsv, a LibriSpeech or LJSpeech folder "
                    "or a folder of labelled audio files")
