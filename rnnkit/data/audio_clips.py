"""Labelled audio clips for whole-clip classification, and their feature frames.

Where clips come from (:func:`read_clips`):

* a CSV / TSV / JSONL table with an ``audio`` (or NeMo ``audio_filepath``) column and a label
  column (``label`` by default; a NeMo manifest's ``text`` when there is no label column);
  relative audio paths are taken relative to the table's folder; a CSV / TSV table is read in the
  given ``encoding`` (UTF-8 by default; JSONL is always UTF-8, and another ``encoding`` is an error);
* a folder of audio files, labelled by ``label_pattern`` on the file name
  (``{label}_{speaker}_{index}.wav``) or by the name of the sub-folder holding each file
  (:func:`rnnkit.data.speech_manifest.read_labelled_folder`).

:func:`clip_features` reads each file once (:func:`rnnkit.data.audio.read_waves`: resampled, mono)
and turns it into float32 feature frames (T, F) with a
:class:`~rnnkit.modules.audio_features.FeatureExtractor`.  A missing or unreadable file raises
:class:`DataError` naming the manifest line (or the file); with ``skip_bad`` it is skipped and
counted instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rnnkit.data.audio import AUDIO_SUFFIXES, read_waves
from rnnkit.data.readers import DataError
from rnnkit.data.speech_manifest import read_labelled_folder
from rnnkit.data.tabular import read_table
from rnnkit.modules.audio_features import FeatureConfig, FeatureExtractor

AUDIO_COLUMNS = ("audio", "audio_filepath")


@dataclass
class Clips:
    """Audio files, their labels (None when unlabelled), where each was named, and what was skipped."""
    paths: list[Path]
    labels: list[str] | None
    wheres: list[str]
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def skip(self, where: str, why: str, skip_bad: bool) -> None:
        message = f"{where}: {why}"
        if not skip_bad:
            raise DataError(message)
        self.skipped += 1
        self.problems.append(message)


def holds_audio(path: str | Path, encoding: str = "utf-8") -> bool:
    """True for a folder with audio files in it, or a table (in ``encoding``) whose header names an audio
    column."""
    path = Path(path)
    if path.is_dir():
        return any(p.suffix.lower() in AUDIO_SUFFIXES for p in path.rglob("*") if p.is_file())
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return True
    return any(c in read_table(path, encoding=encoding).columns for c in AUDIO_COLUMNS)


def read_clips(path: str | Path, label_column: str = "label", *, label_pattern: str = "", labelled: bool = True,
               skip_bad: bool = False, encoding: str = "utf-8") -> Clips:
    """The clips a table (CSV / TSV in ``encoding``) or folder names (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        try:
            found = read_labelled_folder(path, label_pattern or None, skip_bad=skip_bad)
        except ValueError as err:               # a bad --label-pattern
            raise DataError(f"--label-pattern: {err}") from None
        u = found.utterances
        return Clips([x.audio for x in u], [x.text for x in u] if labelled else None, [x.source for x in u],
                     found.skipped, list(found.problems))
    table = read_table(path, encoding=encoding)
    audio_col = next((c for c in AUDIO_COLUMNS if c in table.columns), None)
    if audio_col is None:
        raise DataError(f"{path}:1: no audio column; expected one named 'audio' (or 'audio_filepath'), "
                        f"the file has {', '.join(map(repr, table.columns)) or '(none)'}")
    label_col = label_column if label_column in table.columns or "text" not in table.columns else "text"
    if labelled:
        table.require(label_col)
    clips = Clips([], [] if labelled else None, [])
    for i, row in enumerate(table.rows):
        where = table.where(i)
        audio = str(row.get(audio_col) or "").strip()
        if not audio:
            clips.skip(where, f"empty {audio_col!r}, expected the path of a WAV, FLAC or OGG file", skip_bad)
            continue
        label = str(row.get(label_col) or "").strip() if labelled else ""
        if labelled and not label:
            clips.skip(where, f"empty label in column {label_col!r}", skip_bad)
            continue
        p = Path(audio)
        clips.paths.append(p if p.is_absolute() else path.parent / p)
        clips.wheres.append(where)
        if labelled:
            clips.labels.append(label)
    return clips


@torch.no_grad()
def clip_features(clips: Clips, config: FeatureConfig, skip_bad: bool = False) -> tuple[list[np.ndarray], Clips]:
    """Feature frames (T, F) of each readable clip, and the clips that were kept (bad ones counted)."""
    extract = FeatureExtractor(config)
    kept = Clips([], [] if clips.labels is not None else None, [], clips.skipped, list(clips.problems))
    unreadable: list[str] = []
    feats = []
    for i, wave in read_waves(clips.paths, config.sample_rate, wheres=clips.wheres,
                              problems=unreadable if skip_bad else None, min_samples=config.n_fft // 2 + 1):
        frames, _ = extract(torch.from_numpy(wave))            # (1, T, F)
        feats.append(frames[0].numpy().astype(np.float32))
        kept.paths.append(clips.paths[i])
        kept.wheres.append(clips.wheres[i])
        if clips.labels is not None:
            kept.labels.append(clips.labels[i])
    kept.skipped += len(unreadable)
    kept.problems += unreadable
    if not feats:
        first = f": {kept.problems[0]}" if kept.problems else ""
        raise DataError(f"no readable audio clips ({kept.skipped} skipped{first})")
    return feats, kept
