"""Language-model pretraining of a sequence encoder (the first stage of ULMFiT, Howard & Ruder 2018).

:class:`EncoderLM` puts next-token heads on an embedding + :class:`~rnnkit.modules.encoders.RecurrentEncoder`
that belong to another model (a classifier), so training it trains their weights in place. A
bidirectional one-layer encoder is two language models in one pass, as in ELMo (Peters et al. 2018)::

    tokens      x0   x1   x2   x3          forward half at step t predicts x[t+1]
    forward  ->  h0f  h1f  h2f  h3f        backward half at step t predicts x[t-1]
    backward <-  h0b  h1b  h2b  h3b        (the backward half at t has read x[t..T-1] only)

With two or more bidirectional layers the second layer would see both directions of the first, i.e. the
token it must predict, so that is refused. ``forward(batch) -> ModelOutput(None, loss, n=predicted tokens)``
where ``batch`` holds ``inputs (B, T)`` token ids and ``lengths (B,)``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import ConfigError
from rnnkit.modules.encoders import RecurrentEncoder, valid_mask
from rnnkit.train import ModelOutput

ADAPTIVE_FROM = 4000          # vocabularies this large get an adaptive softmax (Grave et al. 2017) per head
ADAPTIVE_CUTOFFS = (2000, 10000)  # frequency bands of the adaptive softmax (token ids are frequency-ranked)


def next_token_head(size: int, vocab_size: int) -> nn.Module:
    """(N, size) features + (N,) targets -> mean NLL. A plain softmax for small vocabularies; for large ones
    torch's adaptive softmax, which spends full cost on the frequent head of the (frequency-ranked) table only:
    the pretraining of a word-level encoder is several times faster for about the same loss."""
    if vocab_size < ADAPTIVE_FROM:
        return PlainHead(size, vocab_size)
    cutoffs = [c for c in ADAPTIVE_CUTOFFS if c < vocab_size - 1]
    return nn.AdaptiveLogSoftmaxWithLoss(size, vocab_size, cutoffs, div_value=4.0)


class HeadOutput(NamedTuple):
    """As torch's adaptive softmax returns: each target's log-probability (N,) and their mean NLL."""
    output: torch.Tensor
    loss: torch.Tensor


class PlainHead(nn.Module):
    """Linear + full softmax, with the adaptive softmax's call: ``(h (N, size), targets (N,)) -> HeadOutput``."""

    def __init__(self, size: int, vocab_size: int):
        super().__init__()
        self.proj = nn.Linear(size, vocab_size)

    def forward(self, h: torch.Tensor, targets: torch.Tensor) -> HeadOutput:
        logp = F.log_softmax(self.proj(h), dim=-1).gather(1, targets[:, None])[:, 0]  # (N,)
        return HeadOutput(logp, -logp.mean())


class EncoderLM(nn.Module):
    def __init__(self, embed: nn.Module, encoder: nn.Module, vocab_size: int, dropout: float = 0.0):
        super().__init__()
        if not isinstance(encoder, RecurrentEncoder):
            raise ConfigError("language-model pretraining needs a recurrent encoder (model=rnn)")
        layers = len(encoder.rnn.cells) // encoder.directions
        if encoder.directions == 2 and layers > 1:
            raise ConfigError(f"language-model pretraining of a bidirectional encoder needs layers=1 (got {layers}): "
                              "a second layer would see the token each direction predicts; use --layers 1, "
                              "--no-bidirectional or --pretrain-epochs 0")
        self.embed, self.encoder, self.drop = embed, encoder, nn.Dropout(dropout)
        self.directions = encoder.directions
        size = encoder.out_size // encoder.directions
        self.heads = nn.ModuleList([next_token_head(size, vocab_size) for _ in range(self.directions)])

    def forward(self, batch: dict) -> ModelOutput:
        x, lengths = batch["inputs"], batch["lengths"]                         # (B, T), (B,)
        h = self.drop(self.encoder(self.drop(self.embed(x)), lengths))         # (B, T, D*H)
        pair = valid_mask(lengths.to(x.device), x.shape[1])[:, 1:]              # (B, T-1): both steps real
        size = h.shape[-1] // self.directions
        # forward: step t predicts x[t+1]; backward: step t+1 predicts x[t] (pairs of real steps only)
        parts = [(h[:, :-1, :size][pair], x[:, 1:][pair])]                      # (N, H), (N,)
        if self.directions == 2:
            parts.append((h[:, 1:, size:][pair], x[:, :-1][pair]))
        n = sum(len(t) for _, t in parts)
        if n == 0:
            return ModelOutput(None, h.sum() * 0.0, n=0)
        nll = sum(head(f, t).loss * len(t) for head, (f, t) in zip(self.heads, parts))
        return ModelOutput(None, nll / n, n=n)


def lm_pieces(texts_ids: list, max_len: int) -> list:
    """Token id arrays cut into pieces of at most ``max_len`` tokens (long lines of unlabelled text), each
    with at least two tokens (one to read, one to predict)."""
    out = []
    for ids in texts_ids:
        for s in range(0, len(ids), max_len):
            piece = ids[s:s + max_len]
            if len(piece) >= 2:
                out.append(piece)
    return out

