"""The vocabularies of parallel text: a tokenizer of :mod:`rnnkit.data.tokenizers` (characters, marked
words, BPE or unigram subwords) behind the special tokens a decoder needs (``<pad>`` 0, ``<s>`` 1, ``</s>`` 2).

Every tokenizer is lossless up to whitespace runs, so hypotheses can be detokenised back to
plain text before BLEU and chrF are computed:

* ``char``: :class:`rnnkit.data.CharTokenizer` (one token per character).
* ``word``: :class:`rnnkit.data.tokenizers.MarkedWordTokenizer`, words and punctuation marks, a word preceded by a space
  carries a ``▁`` mark (as SentencePiece does), so no whitespace tokens are needed.
* ``bpe`` / ``unigram``: models of the ``tokenizers`` package with a Metaspace pre-tokenizer,
  trained on the training split only.
"""
from __future__ import annotations

import unicodedata
from typing import Iterable, List, Sequence

from rnnkit.data.tokenizers import MARK, MarkedWordTokenizer, build_tokenizer as build_any, tokenizer_from_dict
from rnnkit.modules.search import BOS, EOS, PAD  # noqa: F401  (the decoder's special ids come first)

SPECIALS = ("<pad>", "<s>", "</s>")
TRANSLATE_KINDS = {"char": "char", "word": "marked_word", "bpe": "bpe", "unigram": "unigram"}


def normalize_text(text: str, lowercase: bool = False, form: str = "NFC") -> str:
    """Unicode normalisation (NFC, NFKC, NFD, NFKD or none), optional lower-casing, trimmed."""
    if form != "none":
        text = unicodedata.normalize(form, text)
    if lowercase:
        text = text.lower()
    return " ".join(text.split())


def build_tokenizer(kind: str, texts: Sequence[str], vocab_size: int = 8000, min_freq: int = 1):
    """A tokenizer of the translation config's ``kind`` (char, word, bpe, unigram) fitted on ``texts``;
    ``word`` is the marked-word tokenizer (``▁`` before a word that followed a space)."""
    if kind not in ("char", "word", "bpe", "unigram"):
        raise ValueError(f"tokenizer must be one of char, word, bpe, unigram; got {kind!r}")
    return build_any(TRANSLATE_KINDS[kind], texts, vocab_size, min_freq)


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
