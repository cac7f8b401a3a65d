"""Speech-translation data: utterances with English transcripts and French translations, features, batches.

Batch layout (a dict of tensors, batch-first)::

    feats         (B, T, F)  log-mel frames, zero-padded (the model normalises them)
    lengths       (B,)       valid frames
    src           (B, S)     English transcript as character ids (the auxiliary CTC targets), zero-padded
    src_lengths   (B,)
    tgt_in        (B, L)     <s> + French word ids            (absent when unlabelled)
    tgt_out       (B, L)     French word ids + </s>, <pad>-padded
    index         (B,)       position of each utterance in its split
"""
from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import torch

from rnnkit.data.audio import read_audio
from rnnkit.data.readers import DataError
from rnnkit.data.speech_parallel import (ParallelConfig, SpokenPair, parallel_speech_set, read_translation_manifest,
                                         split_pairs)
from rnnkit.data.vocab import Vocabulary
from rnnkit.metrics.asr import normalize_basic
from rnnkit.modules.audio_features import FeatureExtractor

from .config import SpeechTranslateDataConfig

EMBEDDED = "builtin:phrasebook-speech"


@dataclass
class Splits:
    train: list[SpokenPair]
    val: list[SpokenPair]
    test: list[SpokenPair]
    source: str


def english(text: str) -> str:
    """The transcript as the CTC head spells it: case-folded, punctuation removed."""
    return normalize_basic(text)


def french(text: str, lowercase: bool) -> str:
    text = unicodedata.normalize("NFC", text)
    return " ".join((text.lower() if lowercase else text).split())


def load_splits(d: SpeechTranslateDataConfig) -> Splits:
    """Train / validation / test utterances of the configured manifest or of the embedded set."""
    if d.data:
        rows, source = read_translation_manifest(d.data), d.data
    else:
        cfg = ParallelConfig(train_count=d.count, test_fraction=d.test_fraction, sample_rate=d.sample_rate,
                             seed=d.split_seed, grammar=d.grammar)
        rows, source = read_translation_manifest(parallel_speech_set(cfg)), EMBEDDED
    if d.test_data:
        train, test = rows, read_translation_manifest(d.test_data)
    else:
        train, test = split_pairs(rows, d.test_fraction, d.split_seed)
    if not test:
        raise DataError(f"{source}: no test utterances (give --test-data or a manifest with test rows)")
    order = list(range(len(train)))
    random.Random(d.split_seed).shuffle(order)
    n_val = max(1, round(d.val_fraction * len(train)))
    if len(train) - n_val < 1:
        raise DataError(f"{source}: {len(train)} training utterance(s) leave none after validation")
    val = [train[i] for i in sorted(order[:n_val])]
    return Splits([train[i] for i in sorted(order[n_val:])], val, test, source)


def fit_vocabularies(splits: Splits, lowercase: bool) -> tuple[Vocabulary, Vocabulary]:
    """(English characters of every split's transcripts, French words of the training translations)."""
    src = Vocabulary.build("char", [english(r.text) for r in splits.train + splits.val + splits.test])
    tgt = Vocabulary.build("marked_word", [french(r.translation, lowercase) for r in splits.train])
    return src, tgt


def features(rows: Sequence[SpokenPair], extractor: FeatureExtractor) -> list[torch.Tensor]:
    """Log-mel frames (T, F) of each utterance's audio."""
    rate = extractor.config.sample_rate
    with torch.no_grad():
        return [extractor(torch.from_numpy(read_audio(r.audio, rate)))[0][0] for r in rows]


def pad(seqs: Sequence[Sequence[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.full((len(seqs), max(1, int(lengths.max()))), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out, lengths


def make_batch(feats: Sequence[torch.Tensor], index: Sequence[int], src: Sequence[Sequence[int]] | None,
               tgt: Sequence[Sequence[int]] | None, tgt_vocab: Vocabulary) -> dict:
    lengths = torch.tensor([f.shape[0] for f in feats])
    x = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])                # (B, T, F)
    for i, f in enumerate(feats):
        x[i, : f.shape[0]] = f
    batch = {"feats": x, "lengths": lengths, "index": torch.tensor(list(index))}
    if src is not None:
        batch["src"], batch["src_lengths"] = pad(src, 0)
    if tgt is not None:
        bos, eos = tgt_vocab.bos_id, tgt_vocab.eos_id
        batch["tgt_in"], _ = pad([[bos] + list(t) for t in tgt], tgt_vocab.pad_id)
        batch["tgt_out"], _ = pad([list(t) + [eos] for t in tgt], tgt_vocab.pad_id)
    return batch


def batches(feats: Sequence[torch.Tensor], rows: Sequence[SpokenPair], src_vocab: Vocabulary | None,
            tgt_vocab: Vocabulary, batch_size: int, lowercase: bool, labelled: bool = True) -> list[dict]:
    """Batches of utterances of similar length (sorted by frames), in a fixed order."""
    order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])
    out = []
    for k in range(0, len(order), batch_size):
        idx = order[k: k + batch_size]
        src = [src_vocab.encode(english(rows[i].text)) for i in idx] if labelled and src_vocab else None
        tgt = [tgt_vocab.encode(french(rows[i].translation, lowercase)) for i in idx] if labelled else None
        out.append(make_batch([feats[i] for i in idx], idx, src, tgt, tgt_vocab))
    return out
