"""Speech data of the asr task: utterances from manifests or the embedded eSpeak NG set, character labels,
feature batches.

Labels are characters through a :class:`~rnnkit.data.vocab.Vocabulary` over a character tokenizer whose table
holds every character of the normalised transcripts of the training, validation and test splits. The CTC
blank is the vocabulary's ``<pad>`` (id 0; ``<s>``, ``</s>`` and ``<unk>`` are outputs no label uses). A
transcript character the table does not know is an error (or, with ``skip_bad``, a skipped utterance).
Runs saved before the vocabulary load as a bare character table whose id 0 (``<unk>``) was the blank.

Batch layout (a dict of tensors, batch-first)::

    feats           (B, T, F)  float32 log-mel / MFCC frames, zero-padded (the model normalises them)
    lengths         (B,)       valid frames
    targets         (B, S)     label ids (1..V-1), zero-padded      (absent when unlabelled)
    target_lengths  (B,)       labels per utterance                 (absent when unlabelled)
    index           (B,)       position of each utterance in its split
    seed            ()         SpecAugment seed of this batch (training batches)
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.data.audio import read_waves
from rnnkit.data.readers import DataError
from rnnkit.data.speech_manifest import read_speech_manifest
from rnnkit.data.speech_synth import ENGLISH_VOICES, SynthConfig, default_cache_dir, speech_dataset
from rnnkit.data.tokenizers import CharTokenizer
from rnnkit.data.vocab import Vocabulary
from rnnkit.metrics.asr import NORMALIZERS
from rnnkit.modules.audio_features import FeatureConfig, FeatureExtractor, add_noise, speed_perturb
from rnnkit.tasks.asr.config import ASRDataConfig

#: the embedded set: these voices speak the training and validation utterances, the others the test set
TRAIN_VOICES = ("en", "en-us", "en-gb-scotland", "en-029")
TEST_VOICES = tuple(v for v in ENGLISH_VOICES if v not in TRAIN_VOICES)
BLANK = 0
NOISE_RANGE_DB = 20.0  # training noise SNR is drawn from [noise_snr_db, noise_snr_db + this]


@dataclass
class Utterances:
    """A split: audio files, normalised transcripts (None when unlabelled) and where each came from."""
    audio: list[Path]
    texts: list[str] | None
    wheres: list[str]
    source: str
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.audio)

    def subset(self, idx: Sequence[int]) -> "Utterances":
        return Utterances([self.audio[i] for i in idx], None if self.texts is None else [self.texts[i] for i in idx],
                          [self.wheres[i] for i in idx], self.source)

    def to_manifest(self, path: Path) -> Path:
        """A NeMo-style JSONL manifest of the split with absolute audio paths (``rnnkit evaluate --data``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"audio_filepath": str(Path(a).resolve()), "text": t} for a, t in zip(self.audio, self.texts)]
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return path


# ------------------------------------------------------------------------ reading

def read_utterances(path: str | Path, normalizer: str, skip_bad: bool = False) -> Utterances:
    """The utterances of a manifest (JSONL, CSV/TSV, LibriSpeech or labelled folder), transcripts normalised."""
    manifest = read_speech_manifest(path, skip_bad=skip_bad)
    norm = NORMALIZERS[normalizer]
    texts = [norm(u.text) for u in manifest.utterances]
    empty = [u.source for u, t in zip(manifest.utterances, texts) if not t]
    if empty:
        raise DataError(f"{empty[0]}: the transcript is empty after the '{normalizer}' normaliser")
    return Utterances([u.audio for u in manifest.utterances], texts, [u.source for u in manifest.utterances],
                      str(path), list(manifest.problems))


def audio_inputs(paths: Sequence[str | Path]) -> Utterances:
    """Unlabelled utterances from audio file paths (``rnnkit transcribe``, ``predict``)."""
    return Utterances([Path(p) for p in paths], None, [str(p) for p in paths], "inputs")


def embedded_manifests(d: ASRDataConfig, cache_dir: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Manifests of the embedded set: (training voices, held-out test voices), synthesised once and cached."""
    sets = ("digit_strings", "sentences") if d.dataset == "mixed" else (d.dataset,)
    root = cache_dir or default_cache_dir()
    train, test = [], []
    for i, name in enumerate(sets):
        share = lambda n: n // len(sets) + (1 if i < n % len(sets) else 0)  # noqa: E731
        train.append(speech_dataset(SynthConfig(name, share(d.count), voices=TRAIN_VOICES,
                                                sample_rate=d.sample_rate, seed=1 + 10 * i), root))
        test.append(speech_dataset(SynthConfig(name, share(d.test_count), voices=TEST_VOICES,
                                               sample_rate=d.sample_rate, seed=2 + 10 * i), root))
    return train, test


def _joined(paths: list[Path], d: ASRDataConfig) -> Utterances:
    parts = [read_utterances(p, d.normalizer, d.skip_bad) for p in paths]
    return Utterances([a for p in parts for a in p.audio], [t for p in parts for t in p.texts],
                      [w for p in parts for w in p.wheres], " + ".join(str(p) for p in paths),
                      [s for p in parts for s in p.skipped])


def split_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held out): a seeded random ``fraction`` of ``range(n)`` held out."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    k = int(round(n * fraction))
    return order[k:], order[:k]


@dataclass
class Splits:
    train: Utterances
    val: Utterances
    test: Utterances
    source: str
    skipped: list[str]  # manifest entries skipped (skip_bad) while reading


def load_splits(d: ASRDataConfig, seed: int, cache_dir: Path | None = None) -> Splits:
    """Train / validation / test utterances as configured (the embedded set's test speakers are held out)."""
    if d.data:
        full, source = read_utterances(d.data, d.normalizer, d.skip_bad), d.data
        skipped = list(full.skipped)
        test = None if d.test_data else full
        if test is not None:
            keep, held = split_indices(len(full), d.test_fraction, seed)
            full, test = full.subset(keep), full.subset(held)
    else:
        train_m, test_m = embedded_manifests(d, cache_dir)
        full, test = _joined(train_m, d), _joined(test_m, d)
        skipped = full.skipped + test.skipped
        source = f"embedded:{d.dataset} (eSpeak NG voices {', '.join(TRAIN_VOICES)}; test {', '.join(TEST_VOICES)})"
    if d.test_data:
        test = read_utterances(d.test_data, d.normalizer, d.skip_bad)
        skipped += test.skipped
    if d.val_data:
        train, val = full, read_utterances(d.val_data, d.normalizer, d.skip_bad)
        skipped += val.skipped
    else:
        keep, held = split_indices(len(full), d.val_fraction, seed + 1)
        train, val = full.subset(keep), full.subset(held)
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"{source}: {len(train)} training and {len(val)} validation utterances; need at least one "
                        "of each (more data, or --val-fraction / --val-data)")
    return Splits(train, val, test, source, skipped)


# ------------------------------------------------------------------------ labels

def fit_tokenizer(texts: Sequence[str]) -> Vocabulary:
    """Character vocabulary of ``texts``; its ``pad_id`` (0) is the CTC blank."""
    vocab = Vocabulary.build("char", texts)
    assert vocab.pad_id == BLANK, "the CTC blank is the vocabulary's <pad>"
    return vocab


def symbols_of(tokenizer: Vocabulary | CharTokenizer) -> list[str]:
    """Text of each output symbol; the blank (index 0) and the other specials are empty strings."""
    if isinstance(tokenizer, Vocabulary):
        return [""] * (tokenizer.offset + 1) + tokenizer.tokenizer.tokens[1:]
    return [""] + tokenizer.tokens[1:]                  # an old run's table: <unk> (0) was the blank


def encode_texts(tokenizer: Vocabulary | CharTokenizer, utts: Utterances, skip_bad: bool = False
                 ) -> tuple[list[list[int]], list[int]]:
    """Label ids of each transcript and the indices kept; a character outside the table names the utterance."""
    labels, kept = [], []
    for i, (text, where) in enumerate(zip(utts.texts, utts.wheres)):
        ids = tokenizer.encode(text)
        if tokenizer.unk_id in ids:
            outside = sorted({c for c in text if c not in tokenizer.index})
            message = (f"{where}: transcript {text!r} has characters outside the run's vocabulary {outside} "
                       f"(the model writes only {''.join(symbols_of(tokenizer))!r}); fix the transcript or "
                       "pass --skip-bad to leave it out")
            if not skip_bad:
                raise DataError(message)
            utts.skipped.append(message)
            continue
        labels.append(ids)
        kept.append(i)
    if not kept:
        raise DataError(f"{utts.source}: no utterance left to score ({len(utts.skipped)} skipped)")
    return labels, kept


# ------------------------------------------------------------------------ audio and features

def load_waves(utts: Utterances, sample_rate: int, skip_bad: bool = False) -> tuple[list[torch.Tensor], list[int]]:
    """Waveforms (N,) of each utterance and the indices kept (unreadable audio is an error, or skipped)."""
    waves, kept = [], []
    problems = utts.skipped if skip_bad else None
    for i, wave in read_waves(utts.audio, sample_rate, wheres=utts.wheres, problems=problems):
        waves.append(torch.from_numpy(wave))
        kept.append(i)
    if not kept:
        raise DataError(f"{utts.source}: no readable audio ({len(utts.skipped)} skipped)")
    return waves, kept


@torch.no_grad()
def featurize(extractor: FeatureExtractor, waves: Sequence[torch.Tensor], batch: int = 32) -> list[torch.Tensor]:
    """Feature frames (T_i, F) of each waveform, computed a few at a time."""
    out = []
    # a waveform shorter than half a window is padded with silence to that length, so that whether it can be
    # featurised does not depend on the longer waveforms it happens to be batched with
    min_len = extractor.config.n_fft // 2 + 1
    for s in range(0, len(waves), batch):
        chunk = [w if len(w) >= min_len else torch.nn.functional.pad(w, (0, min_len - len(w)))
                 for w in waves[s:s + batch]]
        padded, lengths = pad(chunk)
        feats, frames = extractor(padded, lengths)
        out += [feats[i, : int(frames[i])].clone() for i in range(len(chunk))]
    return out


def pad(rows: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded (B, T, ...) and lengths (B,)."""
    return (torch.nn.utils.rnn.pad_sequence(list(rows), batch_first=True),
            torch.tensor([len(r) for r in rows], dtype=torch.long))


def make_batch(feats: Sequence[torch.Tensor], labels: Sequence[list[int]] | None, index: Sequence[int],
               seed: int | None = None) -> dict:
    x, lengths = pad(feats)
    batch = {"feats": x, "lengths": lengths, "index": torch.tensor(list(index), dtype=torch.long)}
    if labels is not None:
        y, y_len = pad([torch.tensor(lab, dtype=torch.long) for lab in labels])
        batch.update(targets=y, target_lengths=y_len)
    if seed is not None:
        batch["seed"] = torch.tensor(seed, dtype=torch.long)
    return batch


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]


def eval_batches(feats: Sequence[torch.Tensor], labels: Sequence[list[int]] | None, batch_size: int) -> list[dict]:
    return [make_batch([feats[i] for i in idx], None if labels is None else [labels[i] for i in idx], idx)
            for idx in length_batches([len(f) for f in feats], batch_size)]


class TrainingAudio:
    """Training batches for the :class:`~rnnkit.train.Trainer`: fixed length-sorted groups, shuffled per epoch.

    Without waveform augmentation the features are computed once. With speed perturbation or noise,
    each batch's audio is perturbed and featurised when it is drawn, by a generator seeded with
    ``(seed, epoch, batch)``, so an epoch is the same whether a run was interrupted and resumed or not.
    Every batch carries a ``seed`` for the model's SpecAugment.
    """
    stateful = False

    def __init__(self, waves: list[torch.Tensor], labels: list[list[int]], config: FeatureConfig,
                 batch_size: int, seed: int):
        self.waves, self.labels, self.config, self.seed = waves, labels, config, seed
        self.extractor = FeatureExtractor(config)
        self.augments_audio = bool(config.speed_factors) or config.noise_snr_db is not None
        self.feats = None if self.augments_audio else featurize(self.extractor, waves)
        self.groups = length_batches([len(w) for w in waves], batch_size)

    def __len__(self) -> int:
        return len(self.groups)

    def order(self, epoch: int) -> list[int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.groups), generator=gen).tolist()

    def batch_seed(self, epoch: int, position: int) -> int:
        return (self.seed * 1_000_003 + epoch) * 100_003 + position

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[dict]:
        for position, g in enumerate(self.order(epoch)[start:], start):
            idx = self.groups[g]
            seed = self.batch_seed(epoch, position)
            if self.feats is not None:
                feats = [self.feats[i] for i in idx]
            else:
                feats = featurize(self.extractor, [self.perturb(self.waves[i], seed + k) for k, i in enumerate(idx)])
            yield make_batch(feats, [self.labels[i] for i in idx], idx, seed)

    def perturb(self, wave: torch.Tensor, seed: int) -> torch.Tensor:
        """Speed perturbation (a factor drawn from the configured ones) and white noise, as configured."""
        rng = random.Random(seed)
        c = self.config
        if c.speed_factors:
            wave = speed_perturb(wave, rng.choice(c.speed_factors)).float()
        if c.noise_snr_db is not None:
            snr = c.noise_snr_db + rng.random() * NOISE_RANGE_DB
            wave = add_noise(wave, snr, generator=torch.Generator().manual_seed(seed))
        return wave

    def fingerprint(self) -> str:
        """What resume compares: the audio, labels, grouping, features and augmentation settings."""
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps([self.config.to_dict(), self.seed, self.groups, self.labels]).encode())
        for w in self.waves:
            h.update(w.numpy().tobytes())
        return h.hexdigest()
