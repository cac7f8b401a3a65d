"""Tagging data: sentences from CoNLL / JSONL files or the embedded set, tag schemes, encoding, batches.

Batch layout (dict of tensors, batch-first, zero-padded)::

    words    (B, T)     lower-cased word ids (<pad> 0, <unk> 3: the vocabulary's unk_id)
    cases    (B, T)     0 pad, 1 lower, 2 Title, 3 UPPER, 4 has digit, 5 other
    chars    (B, T, W)  character ids of each word (<pad> 0, <unk> 3)
    lengths  (B,)       sentence lengths
    targets  (B, T)     tag ids (0 on padding; the mask comes from lengths)
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from rnnkit.data.readers import DataError
from rnnkit.data.tabular import TaggedSentence
from rnnkit.data.tokenizers import CharTokenizer, SentenceTokenizer, split_sentence
from rnnkit.data.vocab import SPECIALS, Vocabulary, vocabulary_from_dict
from rnnkit.metrics import chunks
from rnnkit.modules.char_words import pad_word_chars

ENTITY_TAG = re.compile(r"^(O|[BIESU][-_].+)$")
SPLIT_NAMES = {"train": ("train", "eng.train"), "val": ("dev", "valid", "val", "testa", "eng.testa"),
               "test": ("test", "testb", "eng.testb")}


def detect_scheme(sentences: list[TaggedSentence]) -> str:
    """``bio`` when every tag looks like an entity tag (O, B-X, I-X, E-X, S-X), else ``none`` (e.g. POS)."""
    tags = {t for s in sentences for t in s.tags}
    return "bio" if all(ENTITY_TAG.match(t) for t in tags) and tags != {"O"} else "none"


def convert(tags: list[str], scheme: str) -> list[str]:
    """Rewrite entity tags (any of IOB1 / BIO / BIOES) into ``bio`` or ``bioes``; ``none`` keeps them."""
    if scheme == "none":
        return list(tags)
    out = ["O"] * len(tags)
    for typ, s, e in chunks(tags):
        if scheme == "bioes" and e - s == 1:
            out[s] = f"S-{typ}"
            continue
        out[s] = f"B-{typ}"
        for i in range(s + 1, e):
            out[i] = f"I-{typ}"
        if scheme == "bioes":
            out[e - 1] = f"E-{typ}"
    return out


def find_split_files(root: Path) -> dict[str, Path]:
    """train / val / test files of a data folder (train.txt, dev.txt / valid.txt, test.txt; eng.train ...)."""
    files = sorted(p for p in root.iterdir() if p.is_file())
    found = {}
    for part, names in SPLIT_NAMES.items():
        for p in files:
            stem = p.name if p.name.startswith("eng.") else p.stem
            if stem.lower() in names:
                found.setdefault(part, p)
    if "train" not in found:
        raise DataError(f"{root}: no training file (expected train.txt / train.conll / train.jsonl or eng.train)")
    return found


def word_case(word: str) -> int:
    if any(c.isdigit() for c in word):
        return 4
    if word.isupper() and len(word) > 1:
        return 3
    if word[:1].isupper():
        return 2
    if word.islower():
        return 1
    return 5




def tokenize_sentence(text: str) -> list[str]:
    return split_sentence(text)


@dataclass
class TagEncoder:
    words: Vocabulary
    chars: Vocabulary
    tags: list[str]
    scheme: str
    max_word_len: int = 20

    def encode(self, tokens: list[str]) -> dict:
        return {"words": np.asarray(self.words.encode_tokens([t.lower() for t in tokens]), dtype=np.int64),
                "cases": np.asarray([word_case(t) for t in tokens], dtype=np.int64),
                "chars": [self.chars.encode_tokens(list(t[: self.max_word_len])) for t in tokens]}

    def encode_tags(self, tags: list[str], where: str) -> np.ndarray:
        index = {t: i for i, t in enumerate(self.tags)}
        for i, t in enumerate(tags):
            if t not in index:
                raise DataError(f"{where} (token {i + 1}): tag {t!r} was never seen in training "
                                f"(known: {', '.join(self.tags)})")
        return np.asarray([index[t] for t in tags], dtype=np.int64)

    def to_dict(self) -> dict:
        return {"words": self.words.to_dict(), "chars": self.chars.to_dict(), "tags": self.tags,
                "scheme": self.scheme, "max_word_len": self.max_word_len}

    @classmethod
    def from_dict(cls, d: dict) -> "TagEncoder":
        return cls(vocabulary_from_dict(d["words"], layout="padded"), vocabulary_from_dict(d["chars"], layout="padded"),
                   d["tags"], d["scheme"],
                   d["max_word_len"])


def fit_tag_encoder(train: list[TaggedSentence], scheme: str, min_freq: int,
                    extra_words: Iterable[str] = ()) -> TagEncoder:
    """The vocabularies of ``train`` (words lower-cased, seen at least ``min_freq`` times); ``extra_words`` (e.g.
    a pretrained vector file's) follow the training words, lower-cased, in their order, each once; the special
    tokens' names are skipped."""
    table = SentenceTokenizer.build_tokens(([t.lower() for t in s.tokens] for s in train), min_freq)
    known = set(table.tokens) | set(SPECIALS)  # a file's "</s>" (word2vec) is no word to tag
    more = [w for w in dict.fromkeys(w.lower() for w in extra_words) if w not in known]
    words = Vocabulary(SentenceTokenizer(table.tokens + more) if more else table)
    chars = Vocabulary(CharTokenizer.build_tokens((t for s in train for t in s.tokens), 1))
    tags = sorted({t for s in train for t in s.tags}, key=lambda t: (t != "O", t[2:], t))
    return TagEncoder(words, chars, tags, scheme)


def rare_word_ids(enc: TagEncoder, train: list[TaggedSentence]) -> list[int]:
    """Ids of the (lower-cased) words that occur exactly once in ``train``."""
    counts = Counter(t.lower() for s in train for t in s.tokens)
    return [i for i in enc.words.encode_tokens([w for w, c in counts.items() if c == 1]) if i != enc.words.unk_id]


def make_tag_batches(enc: TagEncoder, sentences: list[TaggedSentence] | list[list[str]], batch_size: int,
                     labelled: bool = True) -> list[dict]:
    """Batches of similar lengths; each keeps ``index`` into ``sentences``."""
    toks = [s.tokens if isinstance(s, TaggedSentence) else s for s in sentences]
    order = sorted(range(len(toks)), key=lambda i: len(toks[i]))
    batches = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        T = max(len(toks[i]) for i in idx)
        encs = [enc.encode(toks[i]) for i in idx]
        words = torch.zeros(len(idx), T, dtype=torch.int64)
        cases = torch.zeros(len(idx), T, dtype=torch.int64)
        chars = pad_word_chars([e["chars"] for e in encs], T)  # (B, T, W)
        targets = torch.zeros(len(idx), T, dtype=torch.int64)
        for b, (i, e) in enumerate(zip(idx, encs)):
            n = len(toks[i])
            words[b, :n] = torch.from_numpy(e["words"])
            cases[b, :n] = torch.from_numpy(e["cases"])
            if labelled:
                s = sentences[i]
                targets[b, :n] = torch.from_numpy(enc.encode_tags(s.tags, s.where))
        batch = {"words": words, "cases": cases, "chars": chars, "index": torch.tensor(idx),
                 "lengths": torch.tensor([len(toks[i]) for i in idx])}
        if labelled:
            batch["targets"] = targets
        batches.append(batch)
    return batches
