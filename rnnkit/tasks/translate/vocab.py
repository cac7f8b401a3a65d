"""The vocabularies of parallel text: :class:`rnnkit.data.vocab.Vocabulary` (``<pad>`` 0, ``<s>`` 1, ``</s>`` 2,
``<unk>`` 3, then the tokenizer's pieces) over one of the translation tokenizers.

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
from typing import Sequence

from rnnkit.data.vocab import Vocabulary, vocabulary_from_dict
from rnnkit.modules.search import SpecialIds

TRANSLATE_KINDS = {"char": "char", "word": "marked_word", "bpe": "bpe", "unigram": "unigram"}


def normalize_text(text: str, lowercase: bool = False, form: str = "NFC") -> str:
    """Unicode normalisation (NFC, NFKC, NFD, NFKD or none), optional lower-casing, trimmed."""
    if form != "none":
        text = unicodedata.normalize(form, text)
    if lowercase:
        text = text.lower()
    return " ".join(text.split())


def build_vocab(kind: str, texts: Sequence[str], vocab_size: int = 8000, min_freq: int = 1) -> Vocabulary:
    """The vocabulary of the translation config's tokenizer ``kind`` (char, word, bpe, unigram) fitted on
    ``texts``; ``word`` is the marked-word tokenizer (``▁`` before a word that followed a space)."""
    if kind not in TRANSLATE_KINDS:
        raise ValueError(f"tokenizer must be one of char, word, bpe, unigram; got {kind!r}")
    return Vocabulary.build(TRANSLATE_KINDS[kind], texts, vocab_size, min_freq)


def load_vocab(data: dict) -> Vocabulary:
    """A translation run's saved vocabulary: format 2, or the older unversioned form (ids shifted by three)."""
    return vocabulary_from_dict(data, layout="translate")


def special_ids(vocab: Vocabulary) -> SpecialIds:
    """The ids a decoder and its search read from the target vocabulary."""
    return SpecialIds.of(vocab)
