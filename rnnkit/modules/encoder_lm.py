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

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import ConfigError
from rnnkit.modules.encoders import RecurrentEncoder, valid_mask
from rnnkit.train import ModelOutput

IGNORE = -100


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
        self.heads = nn.ModuleList([nn.Linear(size, vocab_size) for _ in range(self.directions)])

    def forward(self, batch: dict) -> ModelOutput:
        x, lengths = batch["inputs"], batch["lengths"]                         # (B, T), (B,)
        h = self.drop(self.encoder(self.drop(self.embed(x)), lengths))         # (B, T, D*H)
        mask = valid_mask(lengths.to(x.device), x.shape[1])                     # (B, T)
        size = h.shape[-1] // self.directions
        # forward: step t (< T-1) predicts x[t+1] where that token is real
        nll = F.cross_entropy(self.heads[0](h[:, :-1, :size]).transpose(1, 2),
                              x[:, 1:].masked_fill(~mask[:, 1:], IGNORE), ignore_index=IGNORE, reduction="sum")
        n = mask[:, 1:].sum()
        if self.directions == 2:  # backward: step t (>= 1) predicts x[t-1]
            nll = nll + F.cross_entropy(self.heads[1](h[:, 1:, size:]).transpose(1, 2),
                                        x[:, :-1].masked_fill(~mask[:, 1:], IGNORE), ignore_index=IGNORE,
                                        reduction="sum")
            n = n * 2
        n = int(n)
        return ModelOutput(None, nll / max(n, 1), n=n)


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

