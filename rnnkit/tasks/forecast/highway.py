"""The linear autoregressive highway of a forecaster and its least-squares fit.

LSTNet (Lai et al. 2018) adds a linear AR map of the window to the network's
output; :class:`~rnnkit.tasks.forecast.model.Forecaster` starts it at the
least-squares fit of the training windows.  Per target, a window ``x (L,)``
(scaled) becomes the features ::

    normalize="last", level:     x[0]-x[L-1], ..., x[L-2]-x[L-1], x[L-1]    (every linear AR of x)
    normalize="last", no level:  x[0]-x[L-1], ..., x[L-2]-x[L-1], 0        (ARs whose weights sum to 1)
    normalize="none":            x[0], ..., x[L-1]

plus an intercept, and the targets are ``y[h] - x[L-1]`` (or ``y[h]``).  The
ridge is relative to the mean diagonal of X'X and shrinks every weight, the
intercept too, towards 0, i.e. towards the naive forecast; ``auto`` picks it
from :data:`RIDGE_GRID` by the squared error on the validation windows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

RIDGE_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)  # relative ridges tried for highway_ridge=auto


@dataclass(frozen=True)
class HighwayFeatures:
    """What the highway reads: ``n_targets`` target columns, offsets from the last value or not, the level."""
    n_targets: int
    normalize: str = "last"
    level: bool = True

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) last observed target values, the origin of the forecast (zeros if not normalising)."""
        last = x[:, -1, : self.n_targets]
        return last if self.normalize == "last" else torch.zeros_like(last)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, L) per target: the window's offsets from :meth:`shift`, the last one replaced by the level."""
        last = self.shift(x)                                                   # (B, T)
        rel = (x[..., : self.n_targets] - last[:, None, :]).transpose(1, 2)    # (B, T, L)
        if self.normalize == "last" and self.level:
            rel = torch.cat([rel[..., :-1], last[..., None]], dim=-1)
        return rel

    def design(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The regression in float64: features (N*T, L + 1) with a ones column, targets (N*T, H).

        x: (N, L, C) scaled windows, y: (N, H, T) their scaled targets.
        """
        feats = self.inputs(x).reshape(-1, x.shape[1])                         # (N*T, L)
        X = torch.cat([feats, torch.ones(feats.shape[0], 1)], dim=1).double()
        rel = y - self.shift(x)[:, None, :]                                    # (N, H, T)
        return X, rel.transpose(1, 2).reshape(-1, y.shape[1]).double()


def least_squares(X: torch.Tensor, Y: torch.Tensor, ridge: float) -> torch.Tensor:
    """Ridge least squares ``(X'X + ridge * mean(diag X'X) I)^-1 X'Y`` in float64: (L + 1, H)."""
    A = X.T @ X
    A = A + ridge * A.diagonal().mean() * torch.eye(X.shape[1], dtype=torch.float64)
    return torch.linalg.solve(A, X.T @ Y)


@torch.no_grad()
def select_ridge(features: HighwayFeatures, train: tuple, val: tuple, grid=RIDGE_GRID) -> float:
    """The ridge of ``grid`` whose fit on ``train`` windows has the lowest mean squared error on ``val``
    windows (``(x, y)`` scaled tensors each; ties go to the smaller ridge)."""
    X, Y = features.design(*train)
    Xv, Yv = features.design(*val)
    errors = [float(((Xv @ least_squares(X, Y, r) - Yv) ** 2).mean()) for r in grid]
    return grid[errors.index(min(errors))]
