"""Decoding CTC outputs (Graves et al. 2006): greedy, prefix beam search, LM shallow fusion, word timings.

All decoders read per-frame scores over ``V`` symbols with ``blank`` (default 0) as the CTC blank;
logits or log-probabilities both work (they are log-softmaxed here).

- :func:`greedy_decode`: best symbol per frame, repeats collapsed, blanks dropped.
- :func:`prefix_beam_search`: CTC prefix beam search in log space (Hannun et al. 2014,
  "First-pass large vocabulary continuous speech recognition using bi-directional recurrent
  DNNs", Algorithm 1).  Each prefix keeps two scores, ending in blank and ending in a
  non-blank, so the probability of a label sequence is summed over all its alignments; with a
  beam wide enough to keep every prefix it is the exact marginal.
- Shallow fusion: with ``lm`` (any :class:`LMScorer`: ``lm(prefix, token) -> log P(token | prefix)``)
  a hypothesis is ranked by ``log P_ctc(l) + alpha * log P_lm(l) + beta * |l|``.
- :func:`word_timings`: start and end times (seconds) of each word on the greedy alignment.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import torch

NEG_INF = float("-inf")


class LMScorer(Protocol):
    """A language model for fusion: the log-probability of ``token`` following ``prefix``.

    Optionally it also has ``prefetch(prefixes)``: the search calls it with the prefixes of the beam before
    each frame extends them, so a model can score all of them in one batch instead of one call each.
    """

    def __call__(self, prefix: Tuple[int, ...], token: int) -> float: ...


@dataclass(frozen=True)
class Hypothesis:
    """A decoded label sequence; ``score`` = ctc_score + alpha * lm_score + beta * len(tokens)."""

    tokens: Tuple[int, ...]
    score: float
    ctc_score: float
    lm_score: float = 0.0


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float   # seconds
    end: float     # seconds


def _log_probs(scores: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(scores.detach().double(), dim=-1)


def best_path(scores: torch.Tensor) -> torch.Tensor:
    """(T, V) -> (T,) the most likely symbol per frame."""
    return scores.argmax(dim=-1)


def collapse(path: Sequence[int], blank: int = 0) -> List[int]:
    """A frame-level path -> labels: merge runs of the same symbol, then drop blanks."""
    out, prev = [], None
    for s in path:
        s = int(s)
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return out


def greedy_decode(scores: torch.Tensor, lengths: Optional[torch.Tensor] = None, blank: int = 0) -> List[List[int]]:
    """(B, T, V) scores with lengths (B,) -> for each utterance its label ids (a (T, V) input gives one)."""
    if scores.dim() == 2:
        scores = scores[None]
    if lengths is None:
        lengths = torch.full((scores.shape[0],), scores.shape[1], dtype=torch.long)
    paths = scores.argmax(dim=-1).cpu()                     # (B, T)
    return [collapse(paths[b, : int(lengths[b])].tolist(), blank) for b in range(scores.shape[0])]


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def prefix_beam_search(scores: torch.Tensor, beam_width: int = 8, *, blank: int = 0,
                       lm: Optional[LMScorer] = None, alpha: float = 0.5, beta: float = 0.0,
                       token_prune: Optional[float] = None, length: Optional[int] = None) -> List[Hypothesis]:
    """CTC prefix beam search over (T, V) scores; hypotheses best first (at most beam_width).

    token_prune: skip symbols whose log-probability at a frame is below this (None: keep all).
    length: use only the first ``length`` frames.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    if scores.dim() != 2:
        raise ValueError(f"scores must be (T, V), got shape {tuple(scores.shape)}")
    logp = _log_probs(scores[: length if length is not None else scores.shape[0]]).tolist()   # (T, V)
    # prefix -> [log P(ending in blank), log P(ending in non-blank), fused LM log-prob of the prefix]
    beams: Dict[Tuple[int, ...], List[float]] = {(): [0.0, NEG_INF, 0.0]}

    def fused(prefix, p):
        return _logadd(p[0], p[1]) + alpha * p[2] + beta * len(prefix)

    lm_cache: Dict[Tuple[Tuple[int, ...], int], float] = {}

    def lm_score(prefix, token):
        if lm is None:
            return 0.0
        key = (prefix, token)
        if key not in lm_cache:
            lm_cache[key] = float(lm(prefix, token))
        return lm_cache[key]

    prefetch = getattr(lm, "prefetch", None)
    for frame in logp:
        if prefetch is not None:
            prefetch(list(beams))
        nxt: Dict[Tuple[int, ...], List[float]] = {}

        def entry(prefix, lm_total):
            if prefix not in nxt:
                nxt[prefix] = [NEG_INF, NEG_INF, lm_total]
            return nxt[prefix]

        for prefix, (pb, pnb, plm) in beams.items():
            total = _logadd(pb, pnb)
            last = prefix[-1] if prefix else None
            for s, ps in enumerate(frame):
                if token_prune is not None and ps < token_prune:
                    continue
                if s == blank:
                    e = entry(prefix, plm)
                    e[0] = _logadd(e[0], total + ps)
                    continue
                ext = prefix + (s,)
                e = entry(ext, plm + lm_score(prefix, s))
                if s == last:
                    e[1] = _logadd(e[1], pb + ps)        # a repeat needs a blank between
                    same = entry(prefix, plm)
                    same[1] = _logadd(same[1], pnb + ps)  # or it merges into the last label
                else:
                    e[1] = _logadd(e[1], total + ps)
        alive = [kv for kv in nxt.items() if _logadd(kv[1][0], kv[1][1]) > NEG_INF]   # e.g. a repeat with no blank yet
        beams = dict(sorted(alive, key=lambda kv: fused(kv[0], kv[1]), reverse=True)[:beam_width])

    hyps = [Hypothesis(prefix, fused(prefix, p), _logadd(p[0], p[1]), p[2]) for prefix, p in beams.items()]
    return sorted(hyps, key=lambda h: h.score, reverse=True)


def word_timings(scores: torch.Tensor, symbols: Sequence[str], frame_seconds: float, *, blank: int = 0,
                 separator: Optional[str] = " ", length: Optional[int] = None) -> List[WordTiming]:
    """Words with their start and end (seconds) on the greedy alignment of (T, V) scores.

    symbols[i] is the text of symbol i; a label equal to ``separator`` ends a word (with separator
    None every label is its own word, as for word-level vocabularies).  A word spans from the first
    frame of its first label to the last frame of its last label (repeats included);
    frame_seconds is the time between frames after subsampling (hop / sample_rate * k).
    """
    if len(symbols) != scores.shape[-1]:
        raise ValueError(f"symbols has {len(symbols)} entries, scores have {scores.shape[-1]} symbols")
    path = best_path(scores[: length if length is not None else scores.shape[0]]).tolist()
    words: List[WordTiming] = []
    current, start, end = "", None, None

    def flush():
        nonlocal current, start, end
        if current:
            words.append(WordTiming(current, start * frame_seconds, (end + 1) * frame_seconds))
        current, start, end = "", None, None

    prev = None
    for t, s in enumerate(path):
        if s == blank:
            prev = s
            continue
        if s == prev:            # a repeated frame of the label just emitted
            if symbols[s] != separator:
                end = t
            continue
        prev = s
        if separator is not None and symbols[s] == separator:
            flush()
            continue
        if separator is None:
            flush()
        if start is None:
            start = t
        current += symbols[s]
        end = t
    flush()
    return words
