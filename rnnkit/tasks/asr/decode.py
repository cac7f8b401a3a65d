"""Turning the recogniser's per-frame scores into text: greedy, CTC prefix beam search, LM shallow fusion.

:class:`LMFusion` adapts a trained language-model run (``rnnkit train lm`` with character tokens: the
recurrent model or ``--model markov``) to the :class:`~rnnkit.modules.ctc.LMScorer` protocol the beam
search calls, ``lm(prefix, token) -> log P_lm(token | prefix)``: each ASR label id is mapped to the
LM's id of the same character, the LM is primed with a newline (how ``rnnkit train lm`` separates the
lines of its text, so a model trained on one transcript per line starts an utterance from it), and the
LM state after each prefix is kept so that a prefix costs one LM step however often it is extended.
The LM run arrives loaded (:class:`~rnnkit.tasks.task.Task` ``load``): the asr task is handed a
loader by the registry instead of importing the language-model task. :class:`NgramFusion` is the same
scorer over a Kneser-Ney n-gram counted on label ids (what ``rnnkit compare asr`` fits on the training
transcripts).

A run trained with ``decoder=attention`` can instead be decoded by its attention decoder
(:func:`attention_decode`: greedy at beam 1, else beam search of :mod:`rnnkit.modules.search`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import math

import torch

from rnnkit.config import ConfigError
from rnnkit.modules.ctc import greedy_decode, prefix_beam_search
from rnnkit.modules.search import beam_search, greedy_search, max_lengths
from rnnkit.tasks.baselines.markov import KneserNey

START = "\n"  # the token an utterance's LM context starts from


class LMFusion:
    """A loaded language-model run as an LMScorer over the ASR labels (see the module docstring).

    ``loaded`` has ``model`` (``logits(inputs (T, B), state) -> (T, B, V), state`` and ``step(token (B,),
    state)``), ``tokenizer`` (a character table: ``kind == "char"``, ``index``) and ``device``.
    """

    def __init__(self, loaded: Any, symbols: Sequence[str], name: str = "the language model"):
        tok = loaded.tokenizer
        if getattr(tok, "kind", "") != "char":
            raise ConfigError(f"{name}: a {getattr(tok, 'kind', type(tok).__name__)}-token language model cannot "
                              "score the recogniser's characters; train it with --tokenizer char")
        missing = [s for s in symbols[1:] if s and s not in tok.index]
        if missing:
            raise ConfigError(f"{name}: its tokens do not cover the recogniser's characters {missing!r}; train the "
                              "language model on text that contains them (e.g. the training transcripts)")
        self.model, self.device = loaded.model, getattr(loaded, "device", torch.device("cpu"))
        # ASR id -> LM id; the blank and the specials no label uses (empty symbols) read the LM's <unk>
        self.to_lm = torch.tensor([tok.index[s] if s else tok.unk_id for s in symbols], dtype=torch.long)
        start = tok.index.get(START, tok.index.get(" "))
        if start is None:
            raise ConfigError(f"{name}: has neither a newline nor a space token to start an utterance from")
        self.start = start
        self.cache: dict[tuple[int, ...], tuple[Any, torch.Tensor]] = {}

    @torch.no_grad()
    def _after(self, prefix: tuple[int, ...]) -> tuple[Any, torch.Tensor]:
        """(LM state, log-probabilities (V_asr,)) after the start token and ``prefix``."""
        if prefix in self.cache:
            return self.cache[prefix]
        if not prefix:
            logits, state = self.model.logits(torch.tensor([[self.start]], device=self.device))  # (1, 1, V)
            logits = logits[-1]
        else:
            state, _ = self._after(prefix[:-1])
            token = torch.tensor([int(self.to_lm[prefix[-1]])], device=self.device)
            logits, state = self.model.step(token, state)                                   # (1, V)
        logp = torch.log_softmax(logits[0].double().cpu(), -1)[self.to_lm]                  # (V_asr,)
        self.cache[prefix] = (state, logp)
        return state, logp

    @torch.no_grad()
    def prefetch(self, prefixes: Sequence[tuple[int, ...]]) -> None:
        """Step every prefix whose parent is known but which is not, in one batch (B = their number), when the
        LM's state is a tensor or a tuple of tensors (recurrent models; n-gram contexts are cheap one by one)."""
        todo = [p for p in prefixes if p and p not in self.cache and p[:-1] in self.cache]
        if len(todo) < 2 or not _tensor_state(self.cache[todo[0][:-1]][0]):
            return
        state = _cat_states([self.cache[p[:-1]][0] for p in todo])
        tokens = torch.tensor([int(self.to_lm[p[-1]]) for p in todo], device=self.device)
        logits, state = self.model.step(tokens, state)                                  # (B, V)
        logp = torch.log_softmax(logits.double().cpu(), -1)[:, self.to_lm]              # (B, V_asr)
        for b, p in enumerate(todo):
            self.cache[p] = (_state_row(state, b), logp[b])

    def __call__(self, prefix: tuple[int, ...], token: int) -> float:
        return float(self._after(tuple(prefix))[1][token])

    def reset(self) -> None:
        """Forget the prefixes of the last utterance."""
        self.cache.clear()


def _tensor_state(state) -> bool:
    """A recurrent state: (layers, B, H) tensors, alone (GRU, RNN) or in a tuple (LSTM's h and c)."""
    return isinstance(state, torch.Tensor) or (isinstance(state, (tuple, list)) and bool(state)
                                               and all(isinstance(s, torch.Tensor) for s in state))


def _cat_states(states: list):
    if isinstance(states[0], torch.Tensor):
        return torch.cat(states, dim=1)                                                 # (L, B, H)
    return tuple(torch.cat(parts, dim=1) for parts in zip(*states))


def _state_row(state, b: int):
    if isinstance(state, torch.Tensor):
        return state[:, b:b + 1]                                                        # (L, 1, H)
    return tuple(s[:, b:b + 1] for s in state)


class NgramFusion:
    """A Kneser-Ney n-gram over the recogniser's own label ids as an LMScorer (no tokenizer mapping needed)."""

    def __init__(self, model: KneserNey):
        self.model = model

    @classmethod
    def fit(cls, labels: Sequence[Sequence[int]], vocab_size: int, order: int = 5) -> "NgramFusion":
        return cls(KneserNey(order, vocab_size).fit(labels))

    def __call__(self, prefix: tuple[int, ...], token: int) -> float:
        return math.log(self.model.prob(prefix, token))

    def reset(self) -> None:
        """Nothing is kept between utterances."""


@dataclass(frozen=True)
class Decoding:
    """How to decode: beam 1 = greedy; ``lm`` (an :class:`LMFusion` or :class:`NgramFusion`) fuses with weight
    and insertion bonus; ``attention``: the attention decoder's search instead of the CTC head's."""
    beam: int = 1
    lm: LMFusion | NgramFusion | None = None
    lm_weight: float = 0.5
    insertion_bonus: float = 1.0
    attention: bool = False

    def __post_init__(self):
        if self.beam < 1:
            raise ConfigError(f"--beam must be >= 1, got {self.beam}")
        if self.lm is not None and self.beam < 2:
            raise ConfigError("--lm fuses a language model into the beam search: give --beam N with N >= 2")
        if self.lm is not None and self.attention:
            raise ConfigError("--lm fuses into the CTC prefix beam search; decode with --head ctc, or leave --lm out "
                              "for the attention decoder")

    @property
    def name(self) -> str:
        if self.attention:
            return "attention greedy" if self.beam == 1 else f"attention beam {self.beam}"
        if self.beam == 1:
            return "greedy"
        return f"beam {self.beam}" + (f" + LM (weight {self.lm_weight}, bonus {self.insertion_bonus})"
                                      if self.lm is not None else "")


#: the longest transcript the attention decoder may write: 2 characters per encoder frame + 10
MAX_CHARS_PER_FRAME, MAX_CHARS_EXTRA = 2.0, 10


@torch.no_grad()
def attention_decode(model, feats: torch.Tensor, lengths: torch.Tensor, beam: int) -> list[list[int]]:
    """Label ids per utterance from a recogniser's attention decoder (``model.encode`` / ``decode_step``):
    feature frames (B, T, F) with lengths (B,); greedy at beam 1, else beam search (no length penalty)."""
    frames = model.acoustic.output_lengths(lengths)                                   # (B,) encoder frames
    limits = max_lengths(frames, MAX_CHARS_PER_FRAME, MAX_CHARS_EXTRA)
    if beam == 1:
        hyps = greedy_search(model, feats, lengths, limits, special=model.special)
    else:
        hyps = beam_search(model, feats, lengths, limits, beam=beam, special=model.special)
    return [list(h[0].tokens) for h in hyps]


def decode_batch(logits: torch.Tensor, lengths: torch.Tensor, how: Decoding) -> list[list[int]]:
    """Label ids of each utterance of (B, T', V) logits with valid lengths (B,)."""
    if how.beam == 1:
        return greedy_decode(logits, lengths)
    out = []
    for b in range(logits.shape[0]):
        if how.lm is not None:
            how.lm.reset()
        hyps = prefix_beam_search(logits[b], how.beam, lm=how.lm, alpha=how.lm_weight,
                                  beta=how.insertion_bonus if how.lm is not None else 0.0, length=int(lengths[b]))
        out.append(list(hyps[0].tokens))
    return out
