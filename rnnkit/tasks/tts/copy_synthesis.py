"""Copy synthesis: recordings -> their log-mel frames -> a vocoder -> new recordings.

Two uses, both about how much the vocoder costs intelligibility:

* measuring a vocoder: the copies carry the exact spectral envelope of the originals, so a recogniser's
  CER on them is the best a perfect acoustic model could reach through that vocoder;
* training a recogniser that judges synthesised speech (``rnnkit evaluate RUN --asr ASR_RUN``): a judge
  that has only heard clean recordings mistakes the vocoder's phase artefacts for other sounds, so it
  is trained also on copies of its own training audio (:func:`copy_manifest` with ``share``). The copies
  are made from the judge's training recordings only, never from the texts it judges.

::

    manifest row {"audio_filepath": A, "text": T, ...}
        --read_audio (features.sample_rate)--> wave (N,) --FeatureExtractor--> log-mel (T, M)
        --Vocoder(features, config)--> wave' (N',) --write_wav--> OUT/NNNNN.wav
        --> {"audio_filepath": OUT/NNNNN.wav, "text": T, ..., "vocoder": method, "copy_of": A}
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.data.audio import read_audio, write_wav
from rnnkit.data.readers import DataError, jsonl_objects
from rnnkit.modules.audio_features import FeatureConfig, FeatureExtractor
from rnnkit.modules.vocoder import Vocoder, VocoderConfig


def copy_synthesize(wave: np.ndarray, extractor: FeatureExtractor, vocoder: Vocoder) -> np.ndarray:
    """wave (N,) -> the vocoder's rendering of its log-mel frames, float32 (N',), N' within a hop of N."""
    logmel, _ = extractor(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None])  # (1, T, M)
    return vocoder(logmel[0])


def read_rows(manifest: Path) -> list[dict]:
    """The JSON objects of a NeMo-style manifest, audio paths made absolute; a bad line is an error naming it."""
    rows = []
    for n, row in jsonl_objects(manifest, '{"audio_filepath": ..., "text": ...}'):
        if "audio_filepath" not in row or "text" not in row:
            raise DataError(f'{manifest}:{n}: expected an object with "audio_filepath" and "text" fields')
        path = Path(row["audio_filepath"])
        row["audio_filepath"] = str(path if path.is_absolute() else (manifest.parent / path).resolve())
        rows.append(row)
    if not rows:
        raise DataError(f"{manifest}: no utterances")
    return rows


def copy_manifest(manifest: str | Path, out_dir: str | Path, features: FeatureConfig,
                  vocoder: VocoderConfig = VocoderConfig(), share: float = 1.0, seed: int = 0) -> Path:
    """Copy-synthesise a ``share`` of the manifest's utterances (a seeded random choice) into ``out_dir``
    and write ``out_dir/manifest.jsonl``: the copies only (``share`` 1.0: all of them). Copies already in
    ``out_dir`` are kept, so an interrupted build resumes; ``out_dir/settings.json`` records the features and
    vocoder settings, and a folder made with other settings is an error. Returns the manifest's path."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    manifest, out_dir = Path(manifest), Path(out_dir)
    if not manifest.is_file():
        raise DataError(f"{manifest}: no such manifest (expected JSON lines with audio_filepath and text)")
    rows = read_rows(manifest)
    chosen = sorted(random.Random(seed).sample(range(len(rows)), max(1, round(share * len(rows)))))
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = json.dumps({"features": asdict(features), "vocoder": asdict(vocoder), "manifest": str(manifest)},
                          sort_keys=True)
    saved = out_dir / "settings.json"
    if saved.exists() and saved.read_text(encoding="utf-8") != settings:
        raise DataError(f"{out_dir}: holds copies made with other settings ({saved}); give another folder")
    atomic_write_text(saved, settings)
    extractor, voc = FeatureExtractor(features), Vocoder(features, vocoder)
    copies = []
    for k in chosen:
        row = rows[k]
        wav = out_dir / f"{k:05d}.wav"
        if not wav.exists():  # written atomically: one that exists is complete
            write_wav(wav, copy_synthesize(read_audio(row["audio_filepath"], features.sample_rate), extractor,
                                           voc), features.sample_rate)
        copies.append({**row, "audio_filepath": str(wav.resolve()), "vocoder": vocoder.method,
                       "copy_of": row["audio_filepath"]})
        copies[-1].pop("duration", None)  # the copy's length differs from the original's by up to a hop
    out = out_dir / "manifest.jsonl"
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in copies))
    return out
