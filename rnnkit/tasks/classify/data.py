"""Classification data: examples from files or embedded sets, encoders, splits and padded batches.

An example is a text (tokenised into words or characters) or a numeric
sequence (T, F).  Encoders are fitted on the training split only and stored
as plain JSON in the run's checkpoint:

* :class:`~rnnkit.data.vocab.Vocabulary` - token table (``<pad>`` = 0, ``<unk>`` = 3; old runs' ``<unk>`` = 1);
* :class:`Standardizer` - per-feature mean / std of the training steps (numeric sequences and the
  log-mel / MFCC frames of audio clips, whose :class:`FeatureConfig` is saved beside it).

Batch layout (a dict of tensors, batch-first)::

    inputs   (B, T) int64 token ids, or (B, T, F) float32 features, zero-padded
    chars    (B, T, W) int64 character ids of each word (word-level text with character features only)
    ngrams   (B, G) int64 ids of each text's distinct known word (and character) n-grams, 0 = padding (text with
             --nbsvm only)
    lengths  (B,)   true lengths (>= 1)
    targets  (B,)   class ids (absent at prediction time)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from rnnkit.data.audio_clips import clip_features, holds_audio, read_clips
from rnnkit.data.readers import DataError, EncodingError, text_lines
from rnnkit.data.tokenizers import CharTokenizer, WordListTokenizer, split_words
from rnnkit.data.vocab import SPECIALS, Vocabulary, vocabulary_from_dict
from rnnkit.data.tabular import check_labels, parse_sequence, read_class_files, read_class_folders, read_table
from rnnkit.modules.audio_features import FeatureConfig
from rnnkit.modules.char_words import pad_word_chars
from rnnkit.tasks.baselines.nbsvm import text_ngrams



@dataclass
class Examples:
    inputs: list            # list[str] (text) or list[np.ndarray (T, F)] (numeric)
    labels: list[str] | None
    wheres: list[str]       # FILE:LINE (or file path) of each example, for error messages
    kind: str               # "text" | "numeric" | "audio" (inputs are feature frames (T, F))
    source: str
    skipped: int = 0        # bad entries left out with --skip-bad

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, idx: Sequence[int]) -> "Examples":
        return Examples([self.inputs[i] for i in idx], None if self.labels is None else [self.labels[i] for i in idx],
                        [self.wheres[i] for i in idx], self.kind, self.source, self.skipped)


# ------------------------------------------------------------------------ reading

def read_examples(path: str | Path, text_column: str, label_column: str, input_kind: str,
                  labelled: bool = True, audio: AudioOptions | None = None, encoding: str = "utf-8") -> Examples:
    """Examples from a CSV / TSV / JSONL file (in ``encoding``) or a folder per class; audio clips when
    ``input_kind`` is "audio" (or "auto" and the file has an audio column, or the folder audio files)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    try:
        if input_kind == "audio" or (input_kind == "auto" and holds_audio(path, encoding)):
            return read_audio_examples(path, label_column, audio or AudioOptions(), labelled, encoding)
        if path.is_dir():
            return _from_folders(path, encoding)
        table = read_table(path, encoding=encoding)
    except EncodingError as err:
        raise EncodingError(f"{err}; or give the file's encoding with --encoding (e.g. --encoding cp1252 for a "
                            "file saved on Windows)") from None
    table.require(text_column, *([label_column] if labelled else []))
    raw = table.column(text_column)
    kind = input_kind if input_kind != "auto" else _guess_kind(raw)
    wheres = [table.where(i, text_column) for i in range(len(table))]
    if kind == "numeric":
        inputs = [np.asarray(parse_sequence(v, w), dtype=np.float32) for v, w in zip(raw, wheres)]
        _check_width(inputs, wheres)
    else:
        inputs = table.text(text_column)
    labels = [str(v).strip() for v in table.column(label_column)] if labelled else None
    if labels is not None:
        for i, lab in enumerate(labels):
            if not lab:
                raise DataError(f"{table.where(i, label_column)}: empty label")
    return Examples(inputs, labels, wheres, kind, str(path))


@dataclass
class AudioOptions:
    """How audio clips are found and turned into frames."""
    features: FeatureConfig = field(default_factory=FeatureConfig)
    label_pattern: str = ""
    skip_bad: bool = False


def read_audio_examples(path: Path, label_column: str, opts: AudioOptions, labelled: bool = True,
                        encoding: str = "utf-8") -> Examples:
    """Audio clips named by a manifest (a CSV / TSV one in ``encoding``) or found in a folder, as feature frames
    computed once per file."""
    clips = read_clips(path, label_column, label_pattern=opts.label_pattern, labelled=labelled,
                       skip_bad=opts.skip_bad, encoding=encoding)
    feats, kept = clip_features(clips, opts.features, opts.skip_bad)
    return Examples(feats, kept.labels, kept.wheres, "audio", str(path), kept.skipped)


def _guess_kind(values: list) -> str:
    sample = values[: min(len(values), 20)]
    def numeric(v):
        if isinstance(v, list):
            return True
        try:
            parse_sequence(v, "")
            return True
        except DataError:
            return False
    return "numeric" if all(numeric(v) for v in sample) else "text"


def _check_width(inputs: list[np.ndarray], wheres: list[str]) -> None:
    width = inputs[0].shape[1]
    for x, w in zip(inputs, wheres):
        if x.shape[1] != width:
            raise DataError(f"{w}: {x.shape[1]} feature(s) per step, the first example has {width}")


def _from_folders(root: Path, encoding: str) -> Examples:
    """A folder of class sub-folders (one file per example), or without sub-folders one text file per class
    (one example per line, e.g. MR's rt-polarity.pos and rt-polarity.neg)."""
    if not any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        lines = read_class_files(root, encoding)
        return Examples([t for t, _, _ in lines], [lab for _, lab, _ in lines], [w for _, _, w in lines], "text",
                        str(root))
    found = read_class_folders(root)
    kinds = {"text" if e.text is not None else "numeric" for e in found}
    if len(kinds) > 1:
        raise DataError(f"{root}: mixes .txt and .csv examples; use one kind")
    kind = kinds.pop()
    inputs = [e.text if kind == "text" else np.asarray(e.sequence, dtype=np.float32) for e in found]
    wheres = [e.path for e in found]
    if kind == "numeric":
        _check_width(inputs, wheres)
    return Examples(inputs, [e.label for e in found], wheres, kind, str(root))


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> tuple[list, list, list]:
    """Shuffled train / validation / test indices (fixed by ``seed``)."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_test, n_val = int(round(n * test_fraction)), int(round(n * val_fraction))
    if n - n_test - n_val < 1 or (val_fraction > 0 and n_val < 1):
        raise DataError(f"only {n} examples: too few to split with val_fraction={val_fraction}, "
                        f"test_fraction={test_fraction}")
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def fold_indices(labels: Sequence[str], folds: int, fold: int, val_fraction: float,
                 seed: int) -> tuple[list, list, list]:
    """Stratified k-fold cross-validation over examples with these ``labels``: each class's examples, in an
    order fixed by ``seed``, are dealt to the ``folds`` folds in turn (continuing from class to class), so every
    fold holds each class in about its overall share and the fold sizes differ by at most one. Test = fold
    ``fold``; validation = ``val_fraction`` of the other folds (shuffled, fixed by ``seed`` and ``fold``), the
    rest trains. Over ``fold`` = 0 .. folds-1 the test splits partition the examples."""
    n = len(labels)
    if n < folds:
        raise DataError(f"only {n} examples: too few for {folds}-fold cross-validation")
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(i)
    dealt = np.concatenate([rng.permutation(by_class[lab]) for lab in sorted(by_class)])  # (N,) class by class
    which = np.arange(n) % folds                                                        # fold of each position
    test = dealt[which == fold].tolist()
    rest = np.random.default_rng(seed + 1 + fold).permutation(dealt[which != fold]).tolist()
    n_val = int(round(len(rest) * val_fraction))
    if val_fraction > 0 and n_val < 1:
        raise DataError(f"only {n} examples: too few for a validation split with val_fraction={val_fraction}")
    return rest[n_val:], rest[:n_val], test


# ----------------------------------------------------------------------- encoders

SUBWORDS = ("bpe", "unigram")  # learnt on the training texts by the tokenizers package
SUBWORD_SIZE = 8000            # subword table size when --max-vocab is 0 (no limit)
SPLIT_HERE = ("words", "char")  # token tables whose text :func:`tokenize` splits (the task's own word / char)
MAX_WORD_CHARS = 20             # characters of a word that its character features see

def tokenize(text: str, mode: str, lowercase: bool) -> list[str]:
    if lowercase:
        text = text.lower()
    return list(text) if mode == "char" else split_words(text)


class Standardizer:
    """Per-feature (x - mean) / std, fitted on training steps only."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def fit(cls, sequences: list[np.ndarray]) -> "Standardizer":
        steps = np.concatenate(sequences, axis=0)
        std = steps.std(axis=0)
        return cls(steps.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        return cls(d["mean"], d["std"])


@dataclass
class Encoder:
    """Everything needed to turn raw examples into tensors, saved with the run."""
    kind: str
    labels: list[str]
    tokenizer: str = "word"
    lowercase: bool = True
    max_len: int = 0
    vocab: Vocabulary | None = None
    scaler: Standardizer | None = None
    features: FeatureConfig | None = None     # audio: how clips become frames (the scaler normalises them)
    chars: Vocabulary | None = None           # word-level text: the characters of the training words
    ngrams: list[str] | None = None           # text with --nbsvm: the training texts' n-grams (id = index + 1)
    ngram_order: int = 0
    ngram_chars: int = 0                      # ... and character 2..ngram_chars-grams (--nbsvm-chars)

    @property
    def n_inputs(self) -> int:
        """Vocabulary size (text) or features per step (numeric)."""
        return len(self.vocab) if self.kind == "text" else int(self.scaler.mean.shape[0])

    def encode_input(self, x) -> np.ndarray:
        if self.kind == "text":
            if self.vocab.kind in SPLIT_HERE:
                ids = self.vocab.encode_tokens(tokenize(x, self.tokenizer, self.lowercase)) or [self.vocab.unk_id]
            else:  # subwords, or a language-model run's vocabulary: the tokenizer splits the text itself
                ids = self.vocab.encode(x.lower() if self.lowercase else x) or [self.vocab.unk_id]
            arr = np.asarray(ids, dtype=np.int64)
        else:
            arr = self.scaler(np.asarray(x, dtype=np.float32)).astype(np.float32)
        return arr[: self.max_len] if self.max_len else arr

    def encode_chars(self, x: str) -> list[list[int]]:
        """Character ids of each word of a text, aligned with :meth:`encode_input` (at most
        ``MAX_WORD_CHARS`` per word); word-level text with a character table only."""
        words = tokenize(x, self.tokenizer, self.lowercase) or [""]
        words = words[: self.max_len] if self.max_len else words
        return [self.chars.encode_tokens(list(w[:MAX_WORD_CHARS])) for w in words]

    @cached_property
    def _ngram_ids(self) -> dict[str, int]:
        return {g: i + 1 for i, g in enumerate(self.ngrams or ())}

    def encode_ngrams(self, x: str) -> list[int]:
        """Ids (1 ..) of the distinct word and character n-grams of a text that the training texts held (others
        left out)."""
        index = self._ngram_ids
        return [index[g] for g in text_ngrams(x, self.ngram_order, self.lowercase, self.ngram_chars) if g in index]

    def batches(self, inputs: list, targets: list[int] | None, batch_size: int, sort: bool = True) -> list[dict]:
        """Raw inputs (texts, sequences or frames) as padded batches, with each word's characters when the
        encoder has a character table and each text's n-gram ids when it has an n-gram table."""
        chars = [self.encode_chars(x) for x in inputs] if self.chars is not None else None
        ngrams = [self.encode_ngrams(x) for x in inputs] if self.ngrams is not None else None
        return make_batches([self.encode_input(x) for x in inputs], targets, batch_size, sort, chars, ngrams)

    def encode_labels(self, ex: Examples) -> list[int]:
        check_labels(ex.labels, self.labels, ex.wheres, "label")
        index = {lab: i for i, lab in enumerate(self.labels)}
        return [index[lab] for lab in ex.labels]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "labels": self.labels, "tokenizer": self.tokenizer, "lowercase": self.lowercase,
                "max_len": self.max_len, "vocab": self.vocab.to_dict() if self.vocab else None,
                "scaler": self.scaler.to_dict() if self.scaler else None,
                "features": self.features.to_dict() if self.features else None,
                "chars": self.chars.to_dict() if self.chars else None,
                "ngrams": self.ngrams, "ngram_order": self.ngram_order, "ngram_chars": self.ngram_chars}

    @classmethod
    def from_dict(cls, d: dict) -> "Encoder":
        return cls(d["kind"], d["labels"], d["tokenizer"], d["lowercase"], d["max_len"],
                   vocabulary_from_dict(d["vocab"], layout="padded") if d["vocab"] else None,
                   Standardizer.from_dict(d["scaler"]) if d["scaler"] else None,
                   FeatureConfig.from_dict(d["features"]) if d.get("features") else None,
                   vocabulary_from_dict(d["chars"], layout="padded") if d.get("chars") else None,
                   d.get("ngrams"), d.get("ngram_order", 0), d.get("ngram_chars", 0))


def fit_encoder(train: Examples, tokenizer: str, lowercase: bool, min_freq: int, max_vocab: int,
                max_len: int, features: FeatureConfig | None = None, extra_texts: Sequence[str] = (),
                vocab: Vocabulary | None = None, char_words: bool = False) -> Encoder:
    """The encoder of the training split. Texts: a vocabulary fitted on the training texts plus
    ``extra_texts`` (unlabelled text the user gave), or ``vocab`` as it is (a language-model run's);
    ``char_words`` (word-level text): also a table of the characters of those texts' words."""
    if char_words and not (train.kind == "text" and tokenizer == "word" and vocab is None):
        raise ValueError("character features of words need word-level text (tokenizer 'word') and no "
                         "language-model vocabulary")
    labels = sorted(set(train.labels))
    if len(labels) < 2:
        raise DataError(f"{train.source}: the training split has only one class ({labels[0]!r})")
    if train.kind == "text" and vocab is not None:
        return Encoder("text", labels, tokenizer, lowercase, max_len, vocab=vocab)
    if train.kind == "text" and tokenizer in SUBWORDS:
        texts = [t.lower() if lowercase else t for t in list(train.inputs) + list(extra_texts)]
        vocab = Vocabulary.build(tokenizer, texts, vocab_size=max(max_vocab - len(SPECIALS), 1) if max_vocab
                                 else SUBWORD_SIZE, min_freq=min_freq)
        return Encoder("text", labels, tokenizer, lowercase, max_len, vocab=vocab)
    if train.kind == "text":
        table = CharTokenizer if tokenizer == "char" else WordListTokenizer
        cap = max(max_vocab - len(SPECIALS), 1) if max_vocab else 0          # max_vocab counts the specials
        texts = list(train.inputs) + list(extra_texts)
        vocab = Vocabulary(table.build_tokens((tokenize(t, tokenizer, lowercase) for t in texts), min_freq, cap))
        chars = None
        if char_words:
            chars = Vocabulary(CharTokenizer.build_tokens(
                (w[:MAX_WORD_CHARS] for t in texts for w in tokenize(t, tokenizer, lowercase)), 1))
        return Encoder("text", labels, tokenizer, lowercase, max_len, vocab=vocab, chars=chars)
    return Encoder(train.kind, labels, tokenizer, lowercase, max_len, scaler=Standardizer.fit(train.inputs),
                   features=features if train.kind == "audio" else None)


def read_unlabelled(path: str | Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file: unlabelled texts for language-model pretraining."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (--unlabelled expects a UTF-8 text file, one text per line)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (--unlabelled expects a UTF-8 text file)") from None
    lines = [t.strip() for t in text_lines(text) if t.strip()]
    if not lines:
        raise DataError(f"{path}: no text (--unlabelled expects one text per line)")
    return lines


# ------------------------------------------------------------------------ batches

def pad_batch(seqs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded (B, T[, F]) tensor and (B,) lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    out = np.zeros((len(seqs), int(lengths.max())) + seqs[0].shape[1:], dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return torch.from_numpy(out), lengths


def make_batches(inputs: list[np.ndarray], targets: list[int] | None, batch_size: int,
                 sort: bool = True, chars: list[list[list[int]]] | None = None,
                 ngrams: list[list[int]] | None = None) -> list[dict]:
    """Batches of similar lengths (sorted when ``sort``), each with ``index`` into ``inputs``; with ``chars``
    (each input's words as character ids) also ``chars`` (B, T, W), with ``ngrams`` (each input's n-gram ids)
    also ``ngrams`` (B, G); both zero-padded."""
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i])) if sort else list(range(len(inputs)))
    batches = []
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        x, lengths = pad_batch([inputs[i] for i in idx])
        batch = {"inputs": x, "lengths": lengths, "index": torch.tensor(idx)}
        if chars is not None:
            batch["chars"] = pad_word_chars([chars[i] for i in idx], x.shape[1])
        if ngrams is not None:
            batch["ngrams"] = pad_ids([ngrams[i] for i in idx])
        if targets is not None:
            batch["targets"] = torch.tensor([targets[i] for i in idx], dtype=torch.int64)
        batches.append(batch)
    return batches


def pad_ids(rows: list[list[int]]) -> torch.Tensor:
    """(B, G) int64, each row's ids then zeros (at least one column)."""
    out = torch.zeros(len(rows), max(1, max(len(r) for r in rows)), dtype=torch.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
    return out
