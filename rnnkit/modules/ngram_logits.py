"""Fixed linear models over binarised n-grams, run beside a network: ``NgramLogits(ids) -> (B, K, C)``.

Holds K tables fitted elsewhere (NBSVM, :mod:`rnnkit.tasks.baselines.nbsvm`; e.g. one over word n-grams and
one over character n-grams): one score per (n-gram, model, class) and a bias per model and class; a text's
scores under each model are its bias plus the sum of the rows of the text's distinct n-grams. The K models
share one id space (an n-gram one model does not use has zero scores in it), so one id input feeds all of
them. Row 0 is the padding row (zeros). Everything is a buffer: nothing here trains, the tables are saved in
the state_dict, so a run loads, serves and exports (Gather + ReduceSum) with them.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class NgramLogits(nn.Module):
    """``forward(ids (B, G) int64, 0 = padding) -> (B, K, C)`` scores; ``table`` (V + 1, K, C), ``bias`` (K, C)."""

    def __init__(self, n_ngrams: int, n_classes: int, n_models: int = 1):
        super().__init__()
        self.register_buffer("table", torch.zeros(n_ngrams + 1, n_models, n_classes))
        self.register_buffer("bias", torch.zeros(n_models, n_classes))

    @property
    def n_models(self) -> int:
        return self.table.shape[1]

    def set_table(self, weights: np.ndarray, bias: np.ndarray, model: int = 0) -> None:
        """Load model ``model``'s fitted scores ``weights`` (V, C) for n-gram ids 1 .. V, and ``bias`` (C,)."""
        expected = (self.table.shape[0] - 1, self.table.shape[2])
        if tuple(weights.shape) != expected or tuple(bias.shape) != (expected[1],):
            raise ValueError(f"n-gram table of shape {tuple(weights.shape)} and bias {tuple(bias.shape)}: "
                             f"expected {expected} and ({expected[1]},)")
        if not 0 <= model < self.n_models:
            raise ValueError(f"model {model} of an n-gram table holding {self.n_models}")
        with torch.no_grad():
            self.table[1:, model] = torch.as_tensor(weights, dtype=self.table.dtype)
            self.table[0] = 0.0
            self.bias[model] = torch.as_tensor(bias, dtype=self.bias.dtype)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids].sum(1) + self.bias                    # (B, G, K, C) -> (B, K, C)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # runs saved when the table held one model: table (V + 1, C), bias (C,)
        for name, dims in (("table", 2), ("bias", 1)):
            key = prefix + name
            if key in state_dict and state_dict[key].dim() == dims:
                state_dict[key] = state_dict[key].unsqueeze(-2)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
