"""A fixed linear model over binarised n-grams, run beside a network: ``NgramLogits(ids) -> (B, C)``.

Holds a table fitted elsewhere (NBSVM, :mod:`rnnkit.tasks.baselines.nbsvm`): one score per (n-gram, class)
and a bias per class; a text's scores are the bias plus the sum of the rows of its distinct n-grams. Row 0 is
the padding row (zeros). Everything is a buffer: nothing here trains, the table and the weight ``mix`` it is
added with are saved in the state_dict, so a run loads, serves and exports (Gather + ReduceSum) with it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class NgramLogits(nn.Module):
    """``forward(ids (B, G) int64, 0 = padding) -> (B, C)`` scores; ``table`` (V + 1, C), ``bias`` (C,)."""

    def __init__(self, n_ngrams: int, n_classes: int):
        super().__init__()
        self.register_buffer("table", torch.zeros(n_ngrams + 1, n_classes))
        self.register_buffer("bias", torch.zeros(n_classes))

    def set_table(self, weights: np.ndarray, bias: np.ndarray) -> None:
        """Load fitted scores ``weights`` (V, C) for n-gram ids 1 .. V, and ``bias`` (C,)."""
        expected = (self.table.shape[0] - 1, self.table.shape[1])
        if tuple(weights.shape) != expected or tuple(bias.shape) != (expected[1],):
            raise ValueError(f"n-gram table of shape {tuple(weights.shape)} and bias {tuple(bias.shape)}: "
                             f"expected {expected} and ({expected[1]},)")
        with torch.no_grad():
            self.table[1:] = torch.as_tensor(weights, dtype=self.table.dtype)
            self.table[0] = 0.0
            self.bias.copy_(torch.as_tensor(bias, dtype=self.bias.dtype))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids].sum(1) + self.bias                    # (B, G, C) -> (B, C)
