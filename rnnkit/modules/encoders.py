"""Sequence encoders shared by the classifier and the tagger, and the poolings of the classifier.

Each encoder maps ``(x (B, T, E), lengths (B,))`` to per-step features
``(B, T, out_size)`` with zeros past each length:

* :class:`RecurrentEncoder` - a stacked, optionally bidirectional rnnkit layer
  (any cell), run with ``lengths=`` so padding never leaks in either direction;
* :class:`TDNNEncoder` - a time-delay neural network (Waibel et al. 1989): two
  1-D convolutions over a fixed window of neighbouring steps, ReLU;
* :class:`MLPEncoder` - a feed-forward network applied to each step alone
  (no context at all): the non-sequential baseline.

Poolings turn per-step features into one vector per sequence: ``last`` (the
forward direction at the true last step, concatenated with the backward
direction at step 0), ``mean``, ``max``, ``attention`` (Bahdanau-style
additive scores, softmax over valid steps) and ``concat`` (last, max and mean side by side:
ULMFiT's concat pooling, Howard & Ruder 2018; ``out_size`` = 3 D).
"""
from __future__ import annotations

import torch
from torch import nn

from rnnkit.config import ConfigError
from rnnkit.layers import build_layer

ENCODERS = ("rnn", "tdnn", "mlp")
POOLINGS = ("last", "mean", "max", "attention", "concat")


def valid_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T) bool, True on real steps."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


class RecurrentEncoder(nn.Module):
    def __init__(self, input_size: int, cell: str, hidden: int, layers: int, bidirectional: bool,
                 dropout: float, engine: str = "auto", locked_dropout: float = 0.0, weight_drop: float = 0.0):
        super().__init__()
        # locked_dropout: one mask per sequence on each layer's input; weight_drop: DropConnect on the
        # hidden-to-hidden weights (AWD-LSTM, Merity et al. 2018), both sampled by the layer
        self.rnn = build_layer(cell, input_size, hidden, layers, bidirectional=bidirectional, batch_first=True,
                               dropout=dropout if layers > 1 else 0.0, engine=engine,
                               variational_dropout=locked_dropout, dropconnect=weight_drop)
        if weight_drop and self.rnn.cells[0].recurrent_weight_name is None:
            raise ConfigError(f"weight_drop={weight_drop}: the {cell} cell has no hidden-to-hidden weight to drop; "
                              f"set weight_drop=0 (--weight-drop 0)")
        self.out_size = self.rnn.output_size  # D * H
        self.directions = 2 if bidirectional else 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x, lengths=lengths.cpu())  # (B, T, D*H)
        return out


class TDNNEncoder(nn.Module):
    def __init__(self, input_size: int, hidden: int, window: int, dropout: float):
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ConfigError(f"window must be an odd number >= 1, got {window}")
        pad = window // 2
        self.conv1 = nn.Conv1d(input_size, hidden, window, padding=pad)
        self.conv2 = nn.Conv1d(hidden, hidden, window, padding=pad)
        self.drop = nn.Dropout(dropout)
        self.out_size, self.directions = hidden, 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = valid_mask(lengths, x.shape[1]).unsqueeze(-1)           # (B, T, 1)
        h = torch.relu(self.conv1((x * mask).transpose(1, 2)))         # (B, H, T)
        h = torch.relu(self.conv2(self.drop(h) * mask.transpose(1, 2)))
        return h.transpose(1, 2) * mask                                # (B, T, H)


class MLPEncoder(nn.Module):
    def __init__(self, input_size: int, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_size, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.ReLU())
        self.out_size, self.directions = hidden, 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.net(x) * valid_mask(lengths, x.shape[1]).unsqueeze(-1)


def build_encoder(kind: str, input_size: int, *, cell: str, hidden: int, layers: int, bidirectional: bool,
                  dropout: float, window: int, engine: str, locked_dropout: float = 0.0,
                  weight_drop: float = 0.0) -> nn.Module:
    if kind == "rnn":
        return RecurrentEncoder(input_size, cell, hidden, layers, bidirectional, dropout, engine, locked_dropout,
                                weight_drop)
    if kind == "tdnn":
        return TDNNEncoder(input_size, hidden, window, dropout)
    if kind == "mlp":
        return MLPEncoder(input_size, hidden, dropout)
    raise ConfigError(f"model must be one of {', '.join(ENCODERS)}, got {kind!r}")


class Pooling(nn.Module):
    """(B, T, D) per-step features + lengths -> (B, D)."""

    def __init__(self, mode: str, size: int, directions: int):
        super().__init__()
        if mode not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {mode!r}")
        self.mode, self.directions = mode, directions
        self.out_size = 3 * size if mode == "concat" else size
        if mode == "attention":
            self.proj = nn.Linear(size, size)
            self.score = nn.Linear(size, 1, bias=False)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.mode == "concat":
            return torch.cat([self._pool(m, h, lengths) for m in ("last", "max", "mean")], dim=-1)  # (B, 3D)
        return self._pool(self.mode, h, lengths)

    def _pool(self, mode: str, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, D = h.shape
        mask = valid_mask(lengths, T)                                           # (B, T)
        if mode == "last":
            idx = (lengths - 1).clamp(min=0).to(h.device)
            last = h[torch.arange(B, device=h.device), idx]                    # (B, D)
            if self.directions == 1:
                return last
            half = D // 2
            return torch.cat([last[:, :half], h[:, 0, half:]], dim=-1)
        if mode == "mean":
            return (h * mask.unsqueeze(-1)).sum(1) / lengths.clamp(min=1).to(h.dtype).unsqueeze(-1)
        if mode == "max":
            return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values
        scores = self.score(torch.tanh(self.proj(h))).squeeze(-1)              # (B, T)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return torch.einsum("bt,btd->bd", weights, h)
