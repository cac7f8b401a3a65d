"""What the single-state bptt families (GRU, Elman, Jordan, IndRNN) share.

All four carry one state component s (h, or y for Jordan). Around the cell's own update
``new = F(xp_t, s_{t-1} * m)`` the layer adds the same two per-step mixes as ``reference.py``::

    zoneout (Krueger et al. 2017):   new <- new + zm_t * (s_{t-1} - new)
    lengths:                          s_t  = where(valid_t, new, s_{t-1})

Both are linear in (s_{t-1}, new), so the backward pass folds them into one keep weight
``K_t = where(valid_t, zm_t, 1)`` (zm = 0 without zoneout): ds_{t-1} += K_t ds_t through the direct
path, and the cell's own backward sees ds_t * (1 - K_t).

Buffers are time-major: ``S`` is (T+1, B, S) with S[0] = s_0, so ``S[:-1]`` are the previous states of
all steps (one matmul for the recurrent weight gradient) and ``S[1:]`` the per-step states.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

from ...cells.base import activation_name
from ..base import DirectionJob, DirectionResult, Request

#: dtypes the hand-written backward passes are tested in
DTYPES = (torch.float64, torch.float32, torch.bfloat16)

#: activations whose derivative the backward pass knows, written from the activation's output y
ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")


def common_reason(req: Request) -> Optional[str]:
    """Reasons shared by every family here, or None."""
    if req.dtype not in DTYPES:
        return f"dtype {req.dtype} is not supported (float64, float32, bfloat16)"
    return None


def activation_reason(cell, attr: str) -> Optional[str]:
    """None if the cell's activation ``attr`` (config field) has a known derivative, else why not."""
    act = getattr(cell.config, attr)
    name = activation_name(act)
    if name is None:
        return (f"{attr} is a user callable; the hand-written backward pass needs its derivative, "
                f"known only for {', '.join(ACTIVATIONS)}")
    if name not in ACTIVATIONS:
        return f"{attr} {name!r} has no hand-written derivative (known: {', '.join(ACTIVATIONS)})"
    return None


def activate_(name: str, x: Tensor) -> Tensor:
    """The activation applied in place."""
    if name == "tanh":
        return x.tanh_()
    if name == "sigmoid":
        return x.sigmoid_()
    if name == "relu":
        return x.relu_()
    return x  # identity


def activation_grad(name: str, y: Tensor) -> Optional[Tensor]:
    """d act(a) / da written from the output y = act(a), as torch's own backward passes compute it;
    None for identity (derivative 1)."""
    if name == "tanh":
        return 1 - y * y
    if name == "sigmoid":
        return y * (1 - y)
    if name == "relu":
        return (y > 0).to(y.dtype)  # torch's threshold_backward: 0 where the output is 0
    return None


def step_views(buf: Tensor, steps: int) -> List[Tensor]:
    """The T per-step views of a (T, ...) buffer, or T times its one slot when it has one (no grad)."""
    return list(buf.unbind(0)) if buf.shape[0] == steps else [buf[0]] * steps


#: elements of one (C, B, S) coefficient array in a backward chunk: small enough to stay in cache
CHUNK_ELEMENTS = 1 << 16


def time_chunks(steps: int, step_elements: int):
    """[lo, hi) time ranges from the end backwards, each of C steps with C * step_elements about
    CHUNK_ELEMENTS: the backward pass computes its gate coefficients a chunk at a time (in cache, no big
    temporaries) instead of over all T at once or step by step (one Python op per coefficient per step)."""
    C = max(1, min(steps, CHUNK_ELEMENTS // max(1, step_elements)))
    return [(max(0, hi - C), hi) for hi in range(steps, 0, -C)]


def keep_weight(zone: Optional[Tensor], valid: Optional[Tensor], dtype) -> Optional[Tensor]:
    """K_t, the weight of s_{t-1} in s_t: (T, B|1, S|1), or None when s_t = new."""
    if valid is None:
        return zone
    if zone is None:
        return (~valid).to(dtype)  # (T, B, 1)
    return torch.where(valid, zone, torch.ones((), dtype=dtype, device=zone.device))  # (T, B, S)


def mix_(new: Tensor, old: Tensor, zone_t: Optional[Tensor], valid_t: Optional[Tensor]) -> Tensor:
    """Zoneout then the lengths freeze, in place on ``new`` (B, S); same maths as reference.py."""
    if zone_t is not None:
        new.lerp_(old, zone_t)  # new + zm * (old - new)
    if valid_t is not None:
        torch.where(valid_t, new, old, out=new)
    return new


def new_state_buffer(S: Tensor, mixing: bool, slots: int) -> Tensor:
    """Where a step writes the cell's own new state: straight into S[1:] (T, B, S) when nothing mixes
    it, else a buffer of its own (kept for the backward pass: activation derivatives read it)."""
    if not mixing:
        return S[1:]
    return S.new_empty((slots,) + tuple(S.shape[1:]))


def mix_to(out: Tensor, new: Tensor, old: Tensor, zone_t: Optional[Tensor], valid_t: Optional[Tensor]) -> Tensor:
    """out = the zoneout/lengths mix of (new, old) (B, S), leaving ``new`` as it is."""
    if zone_t is not None:
        new = torch.lerp(new, old, zone_t, out=out)  # new + zm * (old - new)
    if valid_t is not None:
        torch.where(valid_t, new, old, out=out)
    elif new is not out:
        out.copy_(new)
    return out


def scale_new(coeff: Optional[Tensor], K: Optional[Tensor]) -> Optional[Tensor]:
    """coeff * (1 - K): the share of ds_t reaching the cell's own new state (None means 1)."""
    if K is None:
        return coeff
    return 1 - K if coeff is None else coeff * (1 - K)


def grad_buffer(grad_states: Tensor, grad_final: Tensor) -> Tensor:
    """dS (T+1, B, S): dS[t+1] starts as the gradient flowing into s_t from outside the recurrence
    (outputs and per-step states, the final state at t = T-1); dS[0] will collect ds_0."""
    T = grad_states.shape[0]
    dS = grad_states.new_empty((T + 1,) + tuple(grad_states.shape[1:]))  # (T+1, B, S)
    dS[0].zero_()
    dS[1:].copy_(grad_states)
    dS[T].add_(grad_final)
    return dS


#: apply(xp, step_context, s0, h_mask, zone, valid) -> (per-step states (T, B, S), final state (B, S))
ApplyFn = Callable[[Tensor, object, Tensor, Optional[Tensor], Optional[Tensor], Optional[Tensor]],
                   Tuple[Tensor, Tensor]]


def run_single_state(cell, x: Tensor, state0, job: DirectionJob, apply: ApplyFn) -> DirectionResult:
    """The part outside the Function: input projection (one matmul, autograd differentiates it),
    the DropConnect'ed recurrent weights, then the family's Function through ``apply``."""
    if job.probe is not None or job.trace is not None:
        raise ValueError("gradient probes and gate traces need the step-by-step reference engine")
    xp = cell.project_input(x)  # (T, B, G)
    ctx = cell.step_context(job.masks.dropconnect)
    zone = job.masks.zoneout[0] if job.masks.zoneout is not None else None  # (T, B|1, S|1)
    valid = job.valid  # (T, B, 1) bool or None
    states, final = apply(xp, ctx, state0[0], job.masks.h_mask, zone, valid)
    hidden = states * valid if valid is not None else states  # (T, B, S) zero past each length
    return DirectionResult(hidden=hidden, state=(final,), states=(hidden,) if job.want_states else None)
