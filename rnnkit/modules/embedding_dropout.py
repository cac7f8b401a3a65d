"""Embedding dropout: whole words dropped from a sentence, one mask per vocabulary row and forward call.

Gal & Ghahramani (2016), "A Theoretically Grounded Application of Dropout in Recurrent Neural
Networks", section 4.2; AWD-LSTM's ``embedded_dropout`` (Merity et al. 2018). Dropping a row of the
embedding matrix removes every occurrence of that word in the batch, so the model cannot lean on
one word; the kept rows are scaled by 1/(1-p). In evaluation the embedding is used unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DroppedEmbedding(nn.Module):
    """``nn.Embedding`` whose rows are dropped with probability ``p`` while training.

    ``forward(ids (B, T) int64) -> (B, T, E)``. The parameter is ``weight`` (V, E), so a state_dict
    holds the same key as a plain ``nn.Embedding`` under this module's name.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, p: float = 0.0, padding_idx: int | None = 0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"embedding dropout must be in [0, 1), got {p}")
        self.p, self.padding_idx = p, padding_idx
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = nn.Embedding(num_embeddings, embedding_dim, padding_idx=padding_idx).weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        w = self.weight                                                         # (V, E)
        if self.training and self.p:
            keep = torch.empty(w.shape[0], 1, device=w.device, dtype=w.dtype).bernoulli_(1.0 - self.p)
            w = w * keep / (1.0 - self.p)                                       # (V, E), rows zeroed
        return F.embedding(ids, w, self.padding_idx)                            # (B, T, E)
