"""Speech recognition error rates: corpus-level WER and CER through ``jiwer``, after a named normaliser.

Corpus level means errors summed over all utterances divided by the reference words (or
characters) summed over all utterances -- not a mean of per-utterance rates.  The texts are first
normalised by one of ``NORMALIZERS``; its name is part of the result, so a reported number
always says how the text was treated:

- ``"basic"``: lowercase (casefold), Unicode punctuation (categories P*) replaced by spaces,
  whitespace collapsed and trimmed;
- ``"none"``: whitespace collapsed and trimmed only.

CER counts characters of the normalised text including the single spaces between words.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Callable, Dict, Sequence


def normalize_basic(text: str) -> str:
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.casefold())
    return " ".join(text.split())


def normalize_none(text: str) -> str:
    return " ".join(text.split())


NORMALIZERS: Dict[str, Callable[[str], str]] = {"basic": normalize_basic, "none": normalize_none}


@dataclass(frozen=True)
class ASRScores:
    wer: float            # word errors / reference words
    cer: float            # character errors / reference characters
    normalizer: str
    utterances: int
    reference_words: int
    reference_chars: int

    def summary(self) -> str:
        return (f"WER {100 * self.wer:.2f}%  CER {100 * self.cer:.2f}%  over {self.utterances} utterances "
                f"({self.reference_words} words), text normaliser '{self.normalizer}'")


def _jiwer():
    try:
        import jiwer
    except ImportError as err:
        raise ImportError("WER/CER need the 'jiwer' package: "
                          "pip install 'rnnkit[speech]' (or pip install jiwer)") from err
    return jiwer


def asr_scores(references: Sequence[str], hypotheses: Sequence[str], normalizer: str = "basic") -> ASRScores:
    """Corpus WER and CER of ``hypotheses`` against ``references`` (same order, same count)."""
    if normalizer not in NORMALIZERS:
        raise ValueError(f"normalizer must be one of {sorted(NORMALIZERS)}, got {normalizer!r}")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses; expected one each")
    if not references:
        raise ValueError("no references to score")
    norm = NORMALIZERS[normalizer]
    refs = [norm(r) for r in references]
    hyps = [norm(h) for h in hypotheses]
    empty = [i for i, r in enumerate(refs) if not r]
    if empty:
        raise ValueError(f"references {empty[:10]} are empty after the '{normalizer}' normaliser; "
                         "WER is undefined for them (drop them or fix the transcripts)")
    jiwer = _jiwer()
    return ASRScores(wer=float(jiwer.wer(refs, hyps)), cer=float(jiwer.cer(refs, hyps)), normalizer=normalizer,
                     utterances=len(refs), reference_words=sum(len(r.split()) for r in refs),
                     reference_chars=sum(len(r) for r in refs))


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str], normalizer: str = "basic") -> float:
    return asr_scores(references, hypotheses, normalizer).wer


def char_error_rate(references: Sequence[str], hypotheses: Sequence[str], normalizer: str = "basic") -> float:
    return asr_scores(references, hypotheses, normalizer).cer
