"""Attention over the encoder's outputs (the "memory"), padding masked out.

* :class:`AdditiveAttention` - Bahdanau, Cho & Bengio (2015), "concat" scoring:
  ``score(q, h_j) = v^T tanh(W q + U h_j)``.
* :class:`MultiplicativeAttention` - Luong, Pham & Manning (2015): ``dot`` ``score = q^T h_j``
  (when the memory size differs from the query size, a bias-free projection of the memory is
  learned first), and ``general`` ``score = q^T W_a h_j``.

Every scorer splits the work in two: ``keys = precompute(memory)`` once per source batch, then
``forward(query, keys, memory, mask)`` for one step (query ``(B, Q)``) or all steps at once
(query ``(B, T, Q)``). Weights are a softmax over source positions, exactly 0 on padding.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn


class Attention(nn.Module):
    kind = ""

    def precompute(self, memory: Tensor) -> Tensor:
        """Per-source work shared by every decoder step: memory (B, S, M) -> keys (B, S, K)."""
        raise NotImplementedError

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        """query (B, T, Q), keys (B, S, K) -> unnormalised scores (B, T, S)."""
        raise NotImplementedError

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Context and weights: query (B, Q) -> ((B, M), (B, S)); query (B, T, Q) -> ((B, T, M), (B, T, S)).

        mask: (B, S) bool, True at real source tokens (every row needs at least one).
        """
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query                        # (B, T, Q)
        scores = self.scores(q, keys)                                      # (B, T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)                            # (B, T, S)
        context = torch.bmm(weights, memory)                               # (B, T, M)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights


class AdditiveAttention(Attention):
    kind = "bahdanau"

    def __init__(self, query_size: int, memory_size: int, attention_size: int):
        super().__init__()
        self.query_proj = nn.Linear(query_size, attention_size, bias=False)   # W
        self.memory_proj = nn.Linear(memory_size, attention_size)             # U (bias: b_a)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def precompute(self, memory: Tensor) -> Tensor:
        return self.memory_proj(memory)                                       # (B, S, A)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        q = self.query_proj(query)                                            # (B, T, A)
        return self.v(torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)  # (B, T, S)


class MultiplicativeAttention(Attention):
    def __init__(self, kind: str, query_size: int, memory_size: int):
        super().__init__()
        if kind not in ("dot", "general"):
            raise ValueError(f"multiplicative attention is dot or general, got {kind!r}")
        self.kind = kind
        if kind == "general" or memory_size != query_size:
            self.memory_proj = nn.Linear(memory_size, query_size, bias=False)  # W_a (B, S, Q)
        else:
            self.memory_proj = None

    def precompute(self, memory: Tensor) -> Tensor:
        return memory if self.memory_proj is None else self.memory_proj(memory)  # (B, S, Q)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(query, keys.transpose(1, 2))                          # (B, T, S)


def build_attention(kind: str, query_size: int, memory_size: int, attention_size: int = 0):
    """The named scorer, or None for ``none``."""
    if kind == "bahdanau":
        return AdditiveAttention(query_size, memory_size, attention_size or query_size)
    if kind in ("dot", "general"):
        return MultiplicativeAttention(kind, query_size, memory_size)
    if kind == "none":
        return None
    raise ValueError(f"attention must be bahdanau, dot, general or none, got {kind!r}")
