"""Tokenisation of parallel text: characters, words, BPE or unigram subwords, plus the
special tokens a decoder needs (``<pad>`` 0, ``<s>`` 1, ``</s>`` 2).

Every tokenizer is lossless up to whitespace runs, so hypotheses can be detokenised back to
plain text before BLEU and chrF are computed:

* ``char``: :class:`rnnkit.data.CharTokenizer` (one token per character).
* ``word``: :class:`MarkedWordTokenizer`, words and punctuation marks, a word preceded by a space
  carries a ``▁`` mark (as SentencePiece does), so no whitespace tokens are needed.
* ``bpe`` / ``unigram``: models of the ``tokenizers`` package with a Metaspace pre-tokenizer,
  trained on the training split only.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Iterable, List, Sequence

from rnnkit.data.vocab import UNK, CharTokenizer, WordTokenizer, tokenizer_from_dict as _base_from_dict

from rnnkit.modules.search import BOS, EOS, PAD  # noqa: F401  (the decoder's special ids come first)
SPECIALS = ("<pad>", "<s>", "</s>")
MARK = "\u2581"  # ▁
_PIECE_RE = re.compile(r"(\s*)(\w+|[^\w\s])")


def normalize_text(text: str, lowercase: bool = False, form: str = "NFC") -> str:
    """Unicode normalisation (NFC, NFKC, NFD, NFKD or none), optional lower-casing, trimmed."""
    if form != "none":
        text = unicodedata.normalize(form, text)
    if lowercase:
        text = text.lower()
    return " ".join(text.split())


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
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
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


def build_tokenizer(kind: str, texts: Sequence[str], vocab_size: int = 8000, min_freq: int = 1):
    """A tokenizer of ``kind`` (char, word, bpe, unigram) fitted on ``texts`` (the training split)."""
    if kind == "char":
        return CharTokenizer.build(texts, min_freq=min_freq)
    if kind == "word":
        return MarkedWordTokenizer.build(texts, min_freq=min_freq, max_size=vocab_size)
    if kind in ("bpe", "unigram"):
        return MetaspaceSubwordTokenizer.build(kind, texts, vocab_size, min_freq)
    raise ValueError(f"tokenizer must be one of char, word, bpe, unigram; got {kind!r}")


def tokenizer_from_dict(data: dict):
    kind = data.get("kind")
    if kind == "marked_word":
        return MarkedWordTokenizer(data["tokens"])
    if kind in ("bpe", "unigram"):
        from tokenizers import Tokenizer
        return MetaspaceSubwordTokenizer(Tokenizer.from_str(data["tokenizer"]), kind)
    return _base_from_dict(data)


class Seq2SeqVocab:
    """A tokenizer with the decoder's special tokens in front: id = tokenizer id + 3."""
    offset = len(SPECIALS)

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @property
    def size(self) -> int:
        return self.tokenizer.vocab_size + self.offset

    def encode(self, text: str) -> List[int]:
        return [i + self.offset for i in self.tokenizer.encode(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first ``</s>``; ``<pad>`` and ``<s>`` are skipped."""
        keep = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i >= self.offset:
                keep.append(i - self.offset)
        return self.tokenizer.decode(keep)

    def unknown_ids(self) -> set:
        """Vocabulary ids (with the offset) that stand for an unknown source of text."""
        tok = self.tokenizer
        if isinstance(tok, MarkedWordTokenizer):
            return {self.offset, self.offset + 1}
        unk = getattr(tok, "unk_id", None)
        return set() if unk is None or unk < 0 else {unk + self.offset}

    def raw_pieces(self, ids: Iterable[int]) -> List[str]:
        """The tokenizer's own strings for ``ids`` (``▁`` marks kept); :meth:`join` inverts it."""
        tok = self.tokenizer
        if hasattr(tok, "tokens"):
            return [tok.tokens[int(i) - self.offset] for i in ids]
        return [tok.tok.id_to_token(int(i) - self.offset) for i in ids]

    def join(self, pieces: List[str]) -> str:
        text = "".join(pieces)
        return text if self.tokenizer.kind == "char" else text.replace(MARK, " ").strip()

    def pieces(self, ids: Iterable[int]) -> List[str]:
        """One display string per id (for attention heat maps)."""
        out = []
        for i in ids:
            i = int(i)
            out.append(SPECIALS[i] if i < self.offset else self.tokenizer.decode([i - self.offset]) or "▁")
        return out

    def to_dict(self) -> dict:
        return self.tokenizer.to_dict()

    @classmethod
    def from_dict(cls, data: dict) -> "Seq2SeqVocab":
        return cls(tokenizer_from_dict(data))
