"""Every tokenizer of rnnkit, built from the training text: characters, words, subwords.

All share one small interface: ``encode(text) -> list[int]``,
``decode(ids) -> str``, ``vocab_size``, ``unk_id`` and ``to_dict()`` /
:func:`bare_tokenizer_from_dict` (plain JSON, stored in the run directory).

* :class:`CharTokenizer`  - one token per Unicode character.
* :class:`WordTokenizer`  - words, punctuation marks and whitespace runs, so
  ``decode(encode(t)) == t`` for in-vocabulary text.
* :class:`SubwordTokenizer` - byte-level BPE trained with the HuggingFace
  ``tokenizers`` package (lossless, no unknown tokens).
* :class:`MarkedWordTokenizer` - words and punctuation, ``▁`` marking a piece after a space (translation).
* :class:`MetaspaceSubwordTokenizer` - BPE or unigram subwords with ``▁`` word starts (translation).
* :func:`build_tokenizer` / :func:`bare_tokenizer_from_dict` - one build and one load for every kind; a bare
  tokenizer's ``to_dict`` is the unversioned form older runs stored, a vocabulary's the versioned one
  (:mod:`rnnkit.data.vocab`), and :func:`rnnkit.data.vocab.tokenizer_from_dict` reads both.
* :func:`split_words` / :func:`split_sentence` - text to tokens without a vocabulary (classify, tag).

Out-of-vocabulary characters / words map to ``<unk>`` (the tokenizer's id 0).
* :class:`WordListTokenizer` / :class:`SentenceTokenizer` - words without whitespace (classify) or a
  sentence's tokens (tag); decoded with single spaces.

A tokenizer's own table keeps ``<unk>`` at id 0. Tasks use it through :class:`rnnkit.data.vocab.Vocabulary`,
which puts ``<pad>`` 0, ``<s>`` 1, ``</s>`` 2 in front (``<unk>`` = 3) and saves the versioned form.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, List, Sequence

UNK = "<unk>"
WORD_RE = re.compile(r"\w+|\s+|[^\w\s]")
MARK = "\u2581"  # ▁: marks a piece that followed whitespace (marked words, metaspace subwords)
_PIECE_RE = re.compile(r"(\s*)(\w+|[^\w\s])")


class _TableTokenizer:
    """A tokenizer backed by an explicit token table (id 0 is ``<unk>``)."""
    kind = ""
    unk_text = UNK

    def __init__(self, tokens: list[str]):
        if not tokens or tokens[0] != UNK:
            raise ValueError("token table must start with <unk>")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.unk_id = 0

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        get = self.index.get
        return [get(piece, 0) for piece in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.unk_text if i == 0 else self.tokens[i] for i in ids)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens}

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int = 0):
        return cls.build_tokens((cls.split(None, text) for text in texts), min_freq, max_size)

    @classmethod
    def build_tokens(cls, sequences: Iterable[Iterable[str]], min_freq: int = 1, max_size: int = 0):
        """The table of already split token ``sequences`` (most frequent first; characters sorted)."""
        counts = Counter()
        for seq in sequences:
            counts.update(seq)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size:
            ranked = ranked[: max_size - 1]
        return cls([UNK] + sorted(ranked) if cls.kind == "char" else [UNK] + ranked)


class CharTokenizer(_TableTokenizer):
    kind = "char"
    unk_text = "\ufffd"

    def split(self, text: str) -> list[str]:
        return list(text)


class WordTokenizer(_TableTokenizer):
    kind = "word"

    def split(self, text: str) -> list[str]:
        return WORD_RE.findall(text)


class SubwordTokenizer:
    """Byte-level BPE from the ``tokenizers`` package. It never emits ``<unk>``; new builds reserve it at id 0
    (so a :class:`~rnnkit.data.vocab.Vocabulary` has one), older saved ones have none (``unk_id`` -1)."""
    kind = "subword"

    def __init__(self, tok):
        self.tok = tok
        unk = tok.token_to_id(UNK)
        self.unk_id = -1 if unk is None else unk

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 8000, min_freq: int = 1):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_freq,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      special_tokens=[UNK], show_progress=False)
        tok.train_from_iterator(list(texts), trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=False)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokenizer": self.tok.to_str()}


class WordListTokenizer(_TableTokenizer):
    """Words and punctuation marks, whitespace dropped (classify); decodes with single spaces."""
    kind = "words"

    def split(self, text: str) -> list[str]:
        return split_words(text)

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.unk_text if i == 0 else self.tokens[i] for i in ids)


class SentenceTokenizer(WordListTokenizer):
    """The tokens of a sentence to tag (:func:`split_sentence`); tables of pre-split tokens (tag's words)."""
    kind = "sentence"

    def split(self, text: str) -> list[str]:
        return split_sentence(text)


class StreamDecoder:
    """Turns token ids, one at a time, into text pieces (safe for byte-level BPE)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = 0

    def push(self, token_id: int) -> str:
        inner = getattr(self.tokenizer, "tokenizer", self.tokenizer)  # a Vocabulary's own tokenizer
        if not isinstance(inner, SubwordTokenizer):
            return self.tokenizer.decode([token_id])
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for more bytes
            return ""
        piece, self.emitted = text[self.emitted:], len(text)
        return piece


class MarkedWordTokenizer(WordTokenizer):
    """Words and punctuation marks; ``▁`` marks a piece that followed whitespace."""
    kind = "marked_word"

    def split(self, text: str) -> List[str]:
        return [(MARK if space else "") + piece for space, piece in _PIECE_RE.findall(text)]

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int = 0):
        """Like the word tokenizer's, plus ``▁<unk>`` (id 1): an unknown word after a space."""
        base = super().build(texts, min_freq=min_freq, max_size=max(max_size - 1, 0) if max_size else 0)
        return cls([base.tokens[0], MARK + base.tokens[0]] + [t for t in base.tokens[1:] if t != MARK + UNK])

    def encode(self, text: str) -> List[int]:
        get = self.index.get
        return [get(p, 1 if p.startswith(MARK) else 0) for p in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        text = "".join(self.unk_text if i == 0 else self.tokens[i] for i in ids)
        return text.replace(MARK, " ").strip()


class MetaspaceSubwordTokenizer:
    """BPE (Sennrich et al. 2016) or unigram (Kudo 2018) subwords from the ``tokenizers`` package."""

    def __init__(self, tok, kind: str):
        self.tok, self.kind = tok, kind
        self.unk_id = tok.token_to_id("<unk>")

    @classmethod
    def build(cls, kind: str, texts: Sequence[str], vocab_size: int, min_freq: int = 1):
        try:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # optional extra
        except ImportError as err:
            raise ImportError("bpe and unigram tokenizers need the tokenizers package: "
                              "pip install 'rnnkit[translate]'") from err
        if kind == "bpe":
            tok = Tokenizer(models.BPE(unk_token="<unk>"))
            trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_freq,
                                          special_tokens=["<unk>"], show_progress=False)
        elif kind == "unigram":
            tok = Tokenizer(models.Unigram())
            trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["<unk>"],
                                              unk_token="<unk>", show_progress=False)
        else:
            raise ValueError(f"subword kind must be bpe or unigram, got {kind!r}")
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=MARK, prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement=MARK, prepend_scheme="always")
        tok.train_from_iterator(list(texts), trainer=trainer)
        return cls(tok, kind)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> List[int]:
        return self.tok.encode(text).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=False).strip()

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokenizer": self.tok.to_str()}


# ---------------------------------------------------------------- one build / load for every kind

BUILDERS = {
    "char": lambda texts, vocab_size, min_freq: CharTokenizer.build(texts, min_freq=min_freq),
    "word": lambda texts, vocab_size, min_freq: WordTokenizer.build(texts, min_freq=min_freq, max_size=vocab_size),
    "subword": lambda texts, vocab_size, min_freq: SubwordTokenizer.build(texts, vocab_size=vocab_size,
                                                                          min_freq=min_freq),
    "words": lambda texts, vocab_size, min_freq: WordListTokenizer.build(texts, min_freq=min_freq,
                                                                         max_size=vocab_size),
    "sentence": lambda texts, vocab_size, min_freq: SentenceTokenizer.build(texts, min_freq=min_freq,
                                                                            max_size=vocab_size),
    "marked_word": lambda texts, vocab_size, min_freq: MarkedWordTokenizer.build(texts, min_freq=min_freq,
                                                                                 max_size=vocab_size),
    "bpe": lambda texts, vocab_size, min_freq: MetaspaceSubwordTokenizer.build("bpe", texts, vocab_size, min_freq),
    "unigram": lambda texts, vocab_size, min_freq: MetaspaceSubwordTokenizer.build("unigram", texts, vocab_size,
                                                                                   min_freq),
}


def build_tokenizer(kind: str, texts: list[str], vocab_size: int = 8000, min_freq: int = 1):
    """A tokenizer of ``kind`` (char, word, subword; marked_word, bpe, unigram) fitted on ``texts``."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown tokenizer {kind!r}; expected one of {', '.join(BUILDERS)}")
    return BUILDERS[kind](texts, vocab_size, min_freq)


def bare_tokenizer_from_dict(data: dict):
    """The bare tokenizer of a saved ``to_dict()`` form, whatever its kind (the versioned form of a vocabulary
    and the older layouts are read by :func:`rnnkit.data.vocab.tokenizer_from_dict`)."""
    kind = data.get("kind")
    if kind == "char":
        return CharTokenizer(data["tokens"])
    if kind == "word":
        return WordTokenizer(data["tokens"])
    if kind == "marked_word":
        return MarkedWordTokenizer(data["tokens"])
    if kind == "words":
        return WordListTokenizer(data["tokens"])
    if kind == "sentence":
        return SentenceTokenizer(data["tokens"])
    if kind in ("subword", "bpe", "unigram"):
        from tokenizers import Tokenizer  # optional extra
        tok = Tokenizer.from_str(data["tokenizer"])
        return SubwordTokenizer(tok) if kind == "subword" else MetaspaceSubwordTokenizer(tok, kind)
    raise ValueError(f"unknown tokenizer kind {kind!r} in saved tokenizer")


# ------------------------------------------------------- splitting text into tokens (no vocabulary)

WORDS_RE = re.compile(r"\w+|[^\w\s]")                        # words and punctuation marks
SENTENCE_TOKENS_RE = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]")  # ... keeping e.g. "New-York", "O'Neil", "U.S"


def split_words(text: str) -> list[str]:
    """Words and punctuation marks (whitespace dropped), as classify reads text."""
    return WORDS_RE.findall(text)


def split_sentence(text: str) -> list[str]:
    """The tokens of a raw sentence to tag: words with inner hyphens, apostrophes and dots kept whole."""
    return SENTENCE_TOKENS_RE.findall(text)
