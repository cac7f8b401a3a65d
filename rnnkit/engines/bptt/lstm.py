"""Explicit BPTT for the LSTM family: plain, projection (Sak et al. 2014), peepholes (Gers &
Schmidhuber 2000), LayerNorm-LSTM (Ba et al. 2016), with DropConnect, recurrent dropout, zoneout and
lengths. The equations are ``rnnkit.cells.lstm.LSTMCell.recur``'s; the Function that runs them
forward and backward is ``_lstm_function.LSTMBPTTFunction``.

Outside the Function, so autograd differentiates them: the input projection of all steps
(``cell.project_input``: one matmul, LayerNorm of the input part, both biases) and the effective
recurrent weight (``cell.step_context``: DropConnect mask applied to weight_hh).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ...cells.lstm import LSTMCell
from ..base import DirectionJob, DirectionResult, EngineError, Request, State
from ._lstm_function import LSTMBPTTFunction, LSTMMasks

_DTYPES = (torch.float64, torch.float32, torch.bfloat16, torch.float16)


def supports(cell, req: Request) -> Optional[str]:
    """None when this engine runs the cell's exact equations for the request, else why not."""
    if not isinstance(cell, LSTMCell):
        return f"the lstm BPTT engine runs LSTMCell, got {type(cell).__name__}"
    for method in ("project_input", "recur", "hidden_of", "step_context"):
        if getattr(type(cell), method) is not getattr(LSTMCell, method):
            return (f"{type(cell).__name__} overrides LSTMCell.{method}; the BPTT Function implements "
                    f"LSTMCell's equations only")
    if req.dtype not in _DTYPES:
        return f"dtype {req.dtype} is not supported (floating point {[str(d) for d in _DTYPES]} only)"
    return None


def _keep_weights(job: DirectionJob, valid: Optional[Tensor]):
    """Lerp weights of the old state per component: 1 - valid * (1 - zoneout), or None."""
    zone = job.masks.zoneout
    if zone is None:
        if valid is None:
            return None, None
        keep = 1 - valid  # (T, B, 1)
        return keep, keep
    keep = []
    for z in zone:  # (T, B, S) in training, (T, 1, 1) in evaluation
        keep.append(z if valid is None else 1 - valid * (1 - z))
    return tuple(keep)


def project(cell: LSTMCell, x: Tensor):
    """The Function's input projections (T, B, 4H) and its extra trailing arguments (none here)."""
    return cell.project_input(x), ()


def run(cell: LSTMCell, x: Tensor, state0: State, job: DirectionJob, function=LSTMBPTTFunction,
        project=project) -> DirectionResult:
    """One direction of one layer: x (T, B, I), state0 (h0 (B, P), c0 (B, H)).

    function: the autograd.Function running the time loop, with ``LSTMBPTTFunction``'s signature
    followed by the extra arguments that ``project(cell, x) -> (xp, extra)`` returns (the cpp engine
    passes its C++ Function, which also fuses the input LayerNorm)."""
    if job.probe is not None or job.trace is not None:
        raise EngineError("the lstm BPTT engine has no gradient probes or gate traces; use engine='reference'")
    masks = job.masks
    for name, mask in (("h_mask", masks.h_mask), ("zoneout", masks.zoneout)):
        tensors = mask if isinstance(mask, tuple) else (mask,)
        if any(m is not None and m.requires_grad for m in tensors):
            raise ValueError(f"the {name} mask must not require grad (the BPTT Function treats it as a constant)")
    xp, extra = project(cell, x)  # (T, B, 4H)
    w_hh = cell.step_context(masks.dropconnect).weights["weight_hh"]  # (4H, P)
    valid = job.valid.to(xp.dtype) if job.valid is not None else None  # (T, B, 1)
    keep_h, keep_c = _keep_weights(job, valid)
    peep = (torch.stack([cell.weight_ci, cell.weight_cf, cell.weight_co])
            if cell.config.peephole else None)  # (3, H)
    ln = cell.config.layer_norm
    h0, c0 = state0
    hidden, h_T, c_T, c_seq = function.apply(
        xp, w_hh, h0, c0, cell.weight_hr, peep,
        cell.ln_hh_weight if ln else None, cell.ln_hh_bias if ln else None,
        cell.ln_c_weight if ln else None, cell.ln_c_bias if ln else None,
        LSTMMasks(h_mask=masks.h_mask, keep_h=keep_h, keep_c=keep_c, valid=valid), *extra)
    states = (hidden, c_seq) if job.want_states else None
    return DirectionResult(hidden=hidden, state=(h_T, c_T), states=states)
