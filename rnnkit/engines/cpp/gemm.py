"""The whole-sequence products of the cpp engine (x W_ih^T before the time loop, dL/dx after it):
through oneDNN's matmul where torch has it, otherwise torch.mm; and ``transposed``, the weights'
transposed copies the kernels take.

On the AMD CPU these engines are measured on, torch.mm (MKL's sgemm) reaches 74-76 GFLOP/s on one
thread for (3200 x 128) x (128 x 512) and (3200 x 512) x (512 x 128), oneDNN's JIT kernels 91-94
(2 threads: 138-157 against 164-196). torch exposes oneDNN's linear only as the operator
``torch.ops.mkldnn._linear_pointwise`` (what torch.compile uses for CPU linears), so it is taken only
where that operator is registered and, once per process, gives torch.mm's result on a small product;
``route()`` says which route runs.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor


@functools.lru_cache(maxsize=None)
def onednn_linear_usable() -> bool:
    """Whether ``torch.ops.mkldnn._linear_pointwise`` exists here and computes x @ w.T."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        op = torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):  # not registered in this torch build
        return False
    # small integers: the products and sums are exact in float32, so the two routes must agree exactly
    x = (torch.arange(6 * 5, dtype=torch.float32).remainder(7) - 3).view(6, 5)
    w = (torch.arange(4 * 5, dtype=torch.float32).remainder(5) - 2).view(4, 5)
    with torch.no_grad():
        got = op(x, w, None, "none", [], "")
    return bool(torch.equal(got, x @ w.t()))


def route(dtype: torch.dtype) -> str:
    """'onednn' or 'torch.mm': which route ``linear`` takes for tensors of ``dtype`` (torch.mm also
    while the user has turned oneDNN off with ``torch.backends.mkldnn.flags(enabled=False)``)."""
    if dtype == torch.float32 and torch.backends.mkldnn.enabled and onednn_linear_usable():
        return "onednn"
    return "torch.mm"


def linear(x: Tensor, w: Tensor) -> Tensor:
    """x @ w.T for x (M, K) and w (N, K), both contiguous: a new (M, N) tensor."""
    if route(x.dtype) == "onednn":
        return torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
    return torch.mm(x, w.t())


def transposed(w: Tensor) -> Tensor:
    """A contiguous copy of w.T for a 2-D w with contiguous rows (a weight, or a block of its rows), by
    the compiled kernel's tiled transpose: 3-4x torch's strided copy here (``w.t().contiguous()``:
    0.24 ms for 1024 x 256 floats against 0.07)."""
    from .build import kernels

    return kernels().transposed(w)
