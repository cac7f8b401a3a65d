"""Text corpora for language modelling: load, split, tokenize, lay out as streams.

``load_corpus(cfg)`` reads the user's file / directory or the embedded corpus
and splits it (last ``val_fraction`` of the characters for validation, unless
a separate validation file is given).  ``encode_streams`` turns documents into
TBPTT :class:`~rnnkit.train.tbptt.Streams`, first cutting them into at least
``batch_size`` contiguous segments so every stream has text even when the
corpus is a single file (the recurrent state is reset where a segment starts).
The training streams also reset the state every ``max_carry`` tokens, staggered
(``LMDataConfig.max_carry``): a state carried through a whole stream's share of
a large text drifts away from what evaluation and generation start from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnkit.tasks.lm.config import LMDataConfig
from rnnkit.data.corpus import embedded_corpus, stdlib_dir
from rnnkit.data.readers import DataError, read_documents, split_documents
from rnnkit.train.tbptt import Streams, batchify


@dataclass
class Corpus:
    train: list[str]
    val: list[str]
    source: str
    files: list[str] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return sum(map(len, self.train)) + sum(map(len, self.val))


def load_corpus(cfg: LMDataConfig) -> Corpus:
    if cfg.data:
        named = read_documents(cfg.data)
        source = cfg.data
    else:
        named, _missing = embedded_corpus()
        source = f"embedded corpus: {len(named)} Python standard-library source files under {stdlib_dir()}"
    files = [name for name, _ in named]
    docs = _cap([text for _, text in named], cfg.max_chars)
    if cfg.val_data:
        val = [text for _, text in read_documents(cfg.val_data)]
        return Corpus(docs, val, source, files)
    train, val = split_documents(docs, cfg.val_fraction)
    return Corpus(train, val, source, files)


def _cap(docs: list[str], max_chars: int) -> list[str]:
    if not max_chars:
        return docs
    out, left = [], max_chars
    for doc in docs:
        if left <= 0:
            break
        out.append(doc[:left])
        left -= len(out[-1])
    return out


def segment(seqs: list[torch.Tensor], n: int) -> list[torch.Tensor]:
    """Cut sequences into >= ``n`` contiguous pieces of roughly ``total / n`` tokens."""
    total = sum(s.numel() for s in seqs)
    size = max(2, -(-total // n))
    return [s[i:i + size] for s in seqs for i in range(0, s.numel(), size)]


def encode_streams(docs: list[str], tokenizer, batch_size: int, k1: int, max_carry: int = 0) -> Streams:
    """``docs`` as ``batch_size`` TBPTT streams of ``k1``-step chunks; ``max_carry`` > 0: the state is also
    reset at least every ``max_carry`` tokens (whole chunks, at least one), staggered across the streams
    (:func:`~rnnkit.train.tbptt.batchify`)."""
    ids = [torch.tensor(tokenizer.encode(d), dtype=torch.long) for d in docs]
    ids = [t for t in ids if t.numel() >= 2]
    if not ids:
        raise DataError("text too short: no document has two or more tokens")
    total = sum(t.numel() for t in ids)
    if total < 2 * batch_size:
        raise DataError(f"text too short for batch_size={batch_size}: {total} tokens")
    reset_every = max(1, max_carry // k1) if max_carry else 0
    return batchify(segment(ids, batch_size), batch_size, k1, reset_every)


def lm_streams(corpus: Corpus, tokenizer, batch_size: int, k1: int, max_carry: int) -> tuple[Streams, Streams]:
    """The training and validation streams of a run.  Training resets the state at least every ``max_carry``
    tokens, staggered; validation only where a segment starts (the held-out text scored as contiguously as
    ``batch_size`` streams allow, as every earlier number was)."""
    return (encode_streams(corpus.train, tokenizer, batch_size, k1, max_carry),
            encode_streams(corpus.val, tokenizer, batch_size, k1))


@dataclass
class LMRun:
    """What :func:`~rnnkit.tasks.lm.model.train_lm` returns: where the run is, the fit, its best metrics."""
    run_dir: Path
    result: object
    metrics: dict
    corpus: Corpus


def chars_per_token(docs: list[str], tokenizer) -> float:
    """Characters per token of ``docs`` (1 for a character tokenizer): turns nats/token into bits/char."""
    if tokenizer.kind == "char":
        return 1.0
    chars = sum(len(d) for d in docs)
    return chars / max(1, sum(len(tokenizer.encode(d)) for d in docs))
