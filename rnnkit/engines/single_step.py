"""Calls of one time step on the CPU that keep no gradient (generation, beam search, streaming
inference): which engine ``engine="auto"`` sends them to, as reasons the other engines give.

A whole-sequence engine pays per call for what only a long sequence amortises: an autograd Function,
the buffers its backward would read, weight copies in the layout its loop wants. For one step that
is most of the time, so

* torch's own cell functions (the native engine's ``one_step``) serve torch.nn's LSTM, GRU and RNN;
* the cpp engine's single-step kernel serves the GRU (``gru_kernel_serves``): faster than
  torch.gru_cell;
* every other cell (LayerNorm and peephole LSTM, zoneout, the reset-before and LayerNorm GRU, Elman
  with other activations, Jordan, IndRNN) runs the reference engine (``reference_serves``): its
  cell step, one call per layer, is 1.1-2.4x faster per token than the cpp and bptt engines for 2
  layers of 128-512 units (bench/RESULTS.md, "one step at a time").

Both apply under ``engine="auto"`` only; a named engine runs as asked.
"""
from __future__ import annotations

from typing import Optional

import torch

from .base import Request


def auto_single_step_without_grad(req: Request) -> bool:
    """A call under engine="auto" of one time step on the CPU that keeps no gradient (generation, beam
    search): the calls this module's rules and the registry's kept one-step choice apply to."""
    return (getattr(req.layer, "engine", "auto") == "auto" and req.steps == 1 and req.device.type == "cpu"
            and not req.needs_grad)


_CPP_CHECKS: dict = {}


def _cpp_checks() -> dict:
    """The cpp engine's two checks, imported on first use (the cpp package imports this module) and
    kept: a function-level import costs about a microsecond, and this runs on every one-step call."""
    if not _CPP_CHECKS:
        from .cpp.build import build_error
        from .cpp.gru import single_step_reason

        _CPP_CHECKS.update(build_error=build_error, single_step_reason=single_step_reason)
    return _CPP_CHECKS


def gru_kernel_serves(req: Request) -> Optional[str]:
    """A reason for other engines to step aside when the cpp engine's single-step GRU kernel serves the
    call: one step of torch.nn.GRU's equations without gradients, lengths or regulariser masks, in
    float32 or float64 (2 layers of 128, 256, 512 units: 0.77-2.12x torch.nn.GRU's per-token time
    where torch.gru_cell gave 0.58-0.90x), when the kernels can be built. None otherwise."""
    if not auto_single_step_without_grad(req) or req.family != "gru" or req.has_lengths:
        return None
    if req.dtype not in (torch.float32, torch.float64):
        return None
    reg = req.layer.regularization
    if req.training and (reg.dropconnect or reg.recurrent_dropout or reg.variational_dropout) or reg.zoneout:
        return None
    cpp = _cpp_checks()
    if cpp["single_step_reason"](req.layer.first_cell) is not None or cpp["build_error"]() is not None:
        return None
    return ("one GRU step without gradients on the CPU runs faster in the cpp engine's single-step kernel "
            "(no weight copies, no autograd node) than through torch.gru_cell")


def reference_serves(req: Request) -> Optional[str]:
    """A reason for the cpp and bptt engines to step aside for the reference engine: one step without
    gradients on the CPU that the single-step GRU kernel does not take. None otherwise."""
    if not auto_single_step_without_grad(req) or gru_kernel_serves(req) is not None:
        return None
    return ("one step without gradients on the CPU runs faster in the reference engine's cell step (no autograd "
            "Function, no saved buffers, no per-call weight copies): 1.1-2.4x per token for 2 layers of 128-512 "
            "units")
