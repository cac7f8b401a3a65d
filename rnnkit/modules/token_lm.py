"""A recurrent language model over token sequences in padded batches (batch first).

:class:`TokenRNN`: embedding -> recurrent layer from :func:`rnnkit.build_layer` -> dropout ->
linear projection to the vocabulary; ``forward(inputs, targets=None, lengths=None)`` returns the
logits and, with targets, the mean cross entropy per target token (nats).  Padded targets carry
:data:`IGNORE_INDEX`.  :meth:`TokenRNN.step` runs one token with the state carried, for generation.

The text language model trains on continuous streams with truncated BPTT; this one reads whole
sequences (or random windows of them) of different lengths, as event-based music does.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.layers import build_layer

IGNORE_INDEX = -100


@dataclass
class TokenLMConfig:
    vocab_size: int
    embedding: int = 64
    cell: str = "lstm"
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.0
    engine: str = "auto"

    def __post_init__(self):
        for name in ("vocab_size", "embedding", "hidden", "layers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class TokenOutput:
    """logits (B, T, V); loss: mean NLL per target token (nats) or None; token_nll (B, T) (0 at padding)."""
    logits: Tensor
    loss: Tensor | None
    token_nll: Tensor | None
    state: object


class TokenRNN(nn.Module):
    """inputs (B, T) token ids -> logits (B, T, V)."""

    def __init__(self, cfg: TokenLMConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embedding)
        self.rnn = build_layer(cfg.cell, cfg.embedding, cfg.hidden, cfg.layers, batch_first=True,
                               dropout=cfg.dropout, engine=cfg.engine)
        self.drop = nn.Dropout(cfg.dropout)
        self.proj = nn.Linear(self.rnn.output_size, cfg.vocab_size)

    def forward(self, inputs: Tensor, targets: Tensor | None = None, *, lengths: Tensor | None = None,
                state=None) -> TokenOutput:
        if inputs.dim() != 2:
            raise ValueError(f"inputs must be (B, T) token ids, got {tuple(inputs.shape)}")
        if targets is not None and targets.shape != inputs.shape:
            raise ValueError(f"targets must match inputs {tuple(inputs.shape)}, got {tuple(targets.shape)}")
        x = self.drop(self.embed(inputs))                                 # (B, T, E)
        kw = {} if lengths is None else {"lengths": lengths}
        y, state = self.rnn(x, state, **kw)                               # (B, T, H)
        logits = self.proj(self.drop(y))                                  # (B, T, V)
        if targets is None:
            return TokenOutput(logits, None, None, state)
        nll = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX,
                              reduction="none")                           # (B, T)
        n = (targets != IGNORE_INDEX).sum().clamp(min=1)
        return TokenOutput(logits, nll.sum() / n, nll, state)

    @torch.no_grad()
    def step(self, token: Tensor, state=None) -> tuple[Tensor, object]:
        """One generation step: ``token`` (B,) -> logits (B, V), new state."""
        out = self.forward(token.view(-1, 1), state=state)
        return out.logits[:, 0], out.state
