"""Greedy and beam search over any model with the one-step decoding interface::

    state = model.encode(src (B, S), src_lengths (B,))      # state.select(index) reorders rows
    logits (N, V), weights (N, S) | None, state = model.decode_step(y_prev (N,), state)

Both are batched, stop each sentence at ``</s>`` or at its maximum length (counting ``</s>``; the
last allowed step is forced to ``</s>``), and keep the attention weights of every emitted step.
Beam search ranks finished hypotheses by ``log p / lp`` with the GNMT length penalty
``lp = ((5 + |y|) / 6) ** alpha`` (Wu et al. 2016) and stops a sentence once it holds ``beam``
finished hypotheses.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import List, Optional

import torch
from torch import Tensor



@dataclass(frozen=True)
class SpecialIds:
    """The target vocabulary's special ids (``Vocabulary.pad_id``, ``bos_id``, ``eos_id``), passed to search."""
    pad: int
    bos: int
    eos: int

    def __post_init__(self):
        if len({self.pad, self.bos, self.eos}) != 3 or min(self.pad, self.bos, self.eos) < 0:
            raise ValueError(f"pad, bos and eos ids must be distinct and >= 0, got {self}")

    @classmethod
    def of(cls, vocab) -> "SpecialIds":
        """The ids of a :class:`rnnkit.data.vocab.Vocabulary` (which must have all three)."""
        if None in (vocab.pad_id, vocab.bos_id, vocab.eos_id):
            raise ValueError("a searched target vocabulary needs <pad>, <s> and </s>")
        return cls(vocab.pad_id, vocab.bos_id, vocab.eos_id)


@dataclass
class Hypothesis:
    tokens: List[int]              # emitted ids without <s> and </s>
    log_prob: float                # sum of token log-probabilities (</s> included when emitted)
    score: float                   # log_prob / length penalty: the ranking key
    attention: Optional[Tensor]    # (steps, S_i) weights of every emitted step (</s> included), or None


def select_rows(state, index: Tensor):
    """A decoder-state dataclass with every tensor's rows taken at ``index`` (dim 0: reordered or repeated
    for beams); tuples and lists of tensors are walked, ``None`` stays ``None``."""
    def pick(x):
        if x is None:
            return None
        if isinstance(x, Tensor):
            return x.index_select(0, index)
        return type(x)(pick(v) for v in x)
    return type(state)(**{f.name: pick(getattr(state, f.name)) for f in fields(state)})


def length_penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha if alpha else 1.0


def max_lengths(src_lengths: Tensor, a: float, b: int) -> List[int]:
    """Per sentence ``floor(a * source length + b)``, at least 1 (the </s> step)."""
    return [max(1, int(a * int(n) + b)) for n in src_lengths]


def _finished_attention(history: Optional[Tensor], w: Optional[Tensor], row: int,
                        src_len: int) -> Optional[Tensor]:
    """Weights of a hypothesis ending now: its history (t, S) plus this step's row -> (t+1, S_i)."""
    if w is None:
        return None
    last = w[row:row + 1, :src_len]
    return (last if history is None else torch.cat([history[row, :, :src_len], last])).cpu()


@torch.no_grad()
def greedy_search(model, src: Tensor, src_lengths: Tensor, max_lens: List[int], *,
                  special: SpecialIds) -> List[List[Hypothesis]]:
    """The arg-max token at every step; one hypothesis per sentence."""
    PAD, BOS, EOS = special.pad, special.bos, special.eos
    B = src.shape[0]
    state = model.encode(src, src_lengths)
    y = torch.full((B,), BOS, dtype=torch.long, device=src.device)
    finished = torch.zeros(B, dtype=torch.bool, device=src.device)
    log_prob = torch.zeros(B, dtype=torch.float64, device=src.device)
    limit = torch.tensor(max_lens, device=src.device)
    tokens, weights = [], []
    for t in range(max(max_lens)):
        logits, w, state = model.decode_step(y, state)
        logp = torch.log_softmax(logits.float(), dim=-1)                      # (B, V)
        logp[:, PAD] = logp[:, BOS] = float("-inf")
        force = limit == t + 1                                                # last allowed step: </s>
        if bool(force.any()):
            not_eos = torch.arange(logp.shape[1], device=logp.device) != EOS
            logp[force.unsqueeze(1) & not_eos] = float("-inf")
        y = logp.argmax(-1)                                                   # (B,)
        log_prob += torch.where(finished, 0.0, logp.gather(1, y[:, None]).squeeze(1).double())
        y = torch.where(finished, torch.full_like(y, PAD), y)
        tokens.append(y)
        weights.append(w)
        finished |= y == EOS
        if bool(finished.all()):
            break
    ids = torch.stack(tokens, dim=1).tolist()                                 # (B, steps)
    attn = torch.stack(weights, dim=1) if weights[0] is not None else None    # (B, steps, S)
    out = []
    for i in range(B):
        row = ids[i]
        n = row.index(EOS)  # every sentence ends with </s> (forced at its limit)
        lp = float(log_prob[i])
        out.append([Hypothesis(row[:n], lp, lp, None if attn is None else attn[i, :n + 1, :int(src_lengths[i])].cpu())])
    return out


@torch.no_grad()
def beam_search(model, src: Tensor, src_lengths: Tensor, max_lens: List[int], beam: int = 5,
                nbest: int = 1, alpha: float = 0.0, *, special: SpecialIds) -> List[List[Hypothesis]]:
    """Batched beam search; per sentence the ``nbest`` best finished hypotheses, best first."""
    PAD, BOS, EOS = special.pad, special.bos, special.eos
    if not 1 <= nbest <= beam:
        raise ValueError(f"need 1 <= nbest <= beam, got nbest={nbest}, beam={beam}")
    B, K, dev = src.shape[0], beam, src.device
    state = model.encode(src, src_lengths).select(torch.arange(B, device=dev).repeat_interleave(K))
    scores = torch.full((B, K), float("-inf"), dtype=torch.float64, device=dev)
    scores[:, 0] = 0.0                                                        # one live beam at first
    y = torch.full((B * K,), BOS, dtype=torch.long, device=dev)
    history = torch.zeros(B * K, 0, dtype=torch.long, device=dev)             # (B*K, t)
    attn: Optional[Tensor] = None                                             # (B*K, t, S)
    finals: List[List[Hypothesis]] = [[] for _ in range(B)]
    done = [False] * B
    for t in range(max(max_lens)):
        logits, w, state = model.decode_step(y, state)
        logp = torch.log_softmax(logits.double(), dim=-1)                     # (B*K, V)
        V = logp.shape[1]
        logp[:, PAD] = logp[:, BOS] = float("-inf")
        for b in range(B):
            if t + 1 == max_lens[b]:                                          # last step: only </s>
                rows = logp[b * K:(b + 1) * K]
                rows[:, :EOS] = float("-inf")
                rows[:, EOS + 1:] = float("-inf")
        cand = (scores.view(-1, 1) + logp).view(B, K * V)                     # (B, K*V)
        top_scores, top_idx = cand.topk(min(2 * K, K * V), dim=1)             # (B, 2K)
        top_scores, top_idx = top_scores.tolist(), top_idx.tolist()
        keep_rows, keep_tok, keep_score = [], [], []
        for b in range(B):
            alive = []
            if not done[b]:
                for rank, (s, idx) in enumerate(zip(top_scores[b], top_idx[b])):
                    if s == float("-inf") or len(alive) == K:
                        break
                    k, tok = divmod(idx, V)
                    row = b * K + k
                    if tok == EOS:
                        if rank < K:
                            toks = history[row].tolist()
                            finals[b].append(Hypothesis(toks, s, s / length_penalty(len(toks) + 1, alpha),
                                                        _finished_attention(attn, w, row, int(src_lengths[b]))))
                    else:
                        alive.append((row, tok, s))
                if len(finals[b]) >= K or not alive:
                    done[b] = True
            while len(alive) < K:                                             # filler rows, never extended
                alive.append((b * K, PAD, float("-inf")))
            for row, tok, s in alive:
                keep_rows.append(row)
                keep_tok.append(tok)
                keep_score.append(s if not done[b] else float("-inf"))
        if all(done):
            break
        index = torch.tensor(keep_rows, device=dev)
        y = torch.tensor(keep_tok, device=dev)
        scores = torch.tensor(keep_score, dtype=torch.float64, device=dev).view(B, K)
        history = torch.cat([history.index_select(0, index), y[:, None]], dim=1)
        if w is not None:
            step_w = w.index_select(0, index)[:, None]                        # (B*K, 1, S)
            attn = step_w if attn is None else torch.cat([attn.index_select(0, index), step_w], dim=1)
        state = state.select(index)
    return [sorted(f, key=lambda h: -h.score)[:nbest] for f in finals]
