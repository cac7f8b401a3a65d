"""The cpp engine: the explicit-BPTT engine's time loops compiled to C++ for the CPU.

Same equations, buffers and gradients as the bptt engine (``rnnkit/engines/bptt``), but each time
step is one BLAS call for the recurrent matmul plus one fused element-wise pass per batch row in C++,
instead of a dozen small torch ops issued from Python: on a CPU those per-op costs dominate the
cells torch has no fused kernel for (LayerNorm-LSTM, peepholes, zoneout, DropConnect).

The library is compiled once per install (``build.py``: the installed torch's headers, a C++ compiler
and ninja; cached per key of everything that changes the binary). Under ``engine="auto"`` the first
call starts the build in a background process and the engine answers "being built" until it is loaded
(the other engines serve meanwhile); a layer with ``engine="cpp"`` waits for it. Where it cannot be
built the engine is not eligible and its reason, with the compiler's error, shows in ``explain()``;
``engine="auto"`` also warns once.

Each family module provides ``supports(cell, req)`` and ``run(cell, x, state0, job)``.

The kernels' sequence buffers come from a pool of freed blocks (``csrc/pool.cpp``; capped by
``RNNKIT_CPU_POOL_MB``, default 1024, 0 turns it off): ``pool_stats()`` reads it, ``empty_cache()``
gives its blocks back to the system, as ``torch.cuda.empty_cache()`` does for the GPU's.
"""
from __future__ import annotations

import warnings
from typing import Dict, Optional

import torch

from ..base import DirectionJob, DirectionResult, Engine, Request, family_module_loader
from .build import CppBuildError, build_error, current, disabled_reason, kernels

#: family -> module implementing it on this engine
FAMILY_MODULES = {
    "lstm": "rnnkit.engines.cpp.lstm",
    "gru": "rnnkit.engines.cpp.gru",
    "elman": "rnnkit.engines.cpp.elman",
    "jordan": "rnnkit.engines.cpp.jordan",
}

_DTYPES = (torch.float32, torch.float64)
_warned = {"build": False}


def pool_stats() -> Dict[str, int]:
    """The sequence-buffer pool: bytes cached now, the cap in bytes, allocations served from the cache
    (``hits``) and allocations that took new memory (``misses``); builds the kernels if needed."""
    from .build import kernels

    cached, cap, hits, misses = kernels().pool_stats()
    return {"cached_bytes": cached, "cap_bytes": cap, "hits": hits, "misses": misses}


def empty_cache() -> None:
    """Give every cached sequence buffer back to the system (buffers in use are not touched). A no-op
    when the kernels were never built."""
    from .build import loaded_kernels

    ops = loaded_kernels()
    if ops is not None:
        ops.pool_empty()


_family_module = family_module_loader(FAMILY_MODULES)


class CppEngine(Engine):
    name = "cpp"
    scope = "direction"

    def prepare(self) -> None:
        """A layer that names the cpp engine waits for the kernel build (with a progress bar) instead of
        being refused while it runs; a failed build is then :meth:`supports`'s answer."""
        if disabled_reason() is None:
            try:
                kernels()
            except CppBuildError:
                return  # build_error() now holds the compiler's message, which supports() returns

    def supports(self, req: Request) -> Optional[str]:
        if req.device.type != "cpu":
            return f"runs on cpu only; the input is on {req.device.type}"
        if req.family not in FAMILY_MODULES:
            return f"no C++ time loop for the {req.family} cell (families: {sorted(FAMILY_MODULES)})"
        if req.dtype not in _DTYPES:
            return f"dtype {req.dtype} is not supported (float32 and float64 only; the bptt engine runs the others)"
        if req.probe_grads or req.record_gates:
            return "gradient probes and gate traces need the step-by-step reference engine"
        from ..bptt import _family_module as bptt_module

        reason = bptt_module(req.family).supports(req.cell, req)
        if reason is not None:
            return reason
        disabled = disabled_reason()
        if disabled is not None:
            return disabled
        error = build_error()
        if error is not None and current().error is not None:
            if not _warned["build"]:
                _warned["build"] = True
                warnings.warn(f"rnnkit: the cpp engine is unavailable, slower engines run instead: {error}",
                              RuntimeWarning, stacklevel=2)
        if error is not None:
            return error
        return None

    def run_direction(self, cell, x, state0, job: DirectionJob) -> DirectionResult:
        return _family_module(cell.family).run(cell, x, state0, job)
