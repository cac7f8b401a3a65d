"""Explicit BPTT for IndRNN (Li et al. 2018, "Independently Recurrent Neural Network";
equations in ``rnnkit/cells/indrnn.py``)::

    a_t = xp_t + u * (h_{t-1} * h_mask)       h_t = act(a_t)         u = clamp(w_hh, -m, m)  (H,)

The clamp (and DropConnect before it) stays outside the Function, so autograd gives its gradient
exactly as the reference does (zero outside [-m, m]). The recurrence is element-wise, so the backward
pass is a first-order linear recurrence per unit, one fused op per step (d = dL/dh_t in total)::

    D_t      = (1 - K_t) act'(a_t)
    dh_{t-1} = d * (K_t + D_t * u * h_mask)
    du       = sum_{t,b} d D_t (h_{t-1} * h_mask)
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..base import DirectionJob, DirectionResult, Request, without_autocast
from ._common import (activate_, activation_grad, activation_reason, common_reason, grad_buffer,
                      keep_weight, mix_to, new_state_buffer, run_single_state, scale_new, step_views)


def supports(cell, req: Request) -> Optional[str]:
    return common_reason(req) or activation_reason(cell, "activation")


def run(cell, x: Tensor, state0, job: DirectionJob) -> DirectionResult:
    act = cell.config.activation

    def apply(xp, ctx, s0, h_mask, zone, valid):
        u = cell.recurrent_vector(ctx.weights["weight_hh"])  # (H,) clamped, differentiable
        return IndRNNFunction.apply(xp, u, s0, h_mask, zone, valid, act)

    return run_single_state(cell, x, state0, job, apply)


class IndRNNFunction(torch.autograd.Function):
    """xp (T, B, H), u (H,), s0 (B, H), h_mask (B, H) or None, zone (T, B|1, H|1) or None,
    valid (T, B, 1) bool or None, act name -> (per-step states (T, B, H), final state (B, H))."""

    @staticmethod
    def forward(ctx, xp, u, s0, m, zone, valid, act):
        T, B, H = xp.shape
        slots = T if any(ctx.needs_input_grad) else 1
        mixing = zone is not None or valid is not None
        S = xp.new_empty(T + 1, B, H)  # (T+1, B, H) S[0] = s0
        S[0].copy_(s0)
        Y = new_state_buffer(S, mixing, slots)  # (T, B, H) act(a_t) before the mix
        sv, yv, xv = S.unbind(0), step_views(Y, T), xp.unbind(0)
        zmv = zone.unbind(0) if zone is not None else [None] * T
        vv = valid.unbind(0) if valid is not None else [None] * T
        um = u * m if m is not None else u  # (B, H) or (H,)
        for t in range(T):
            h = sv[t]  # (B, H)
            y = activate_(act, torch.addcmul(xv[t], um, h, out=yv[t]))
            if mixing:
                mix_to(sv[t + 1], y, h, zmv[t], vv[t])
        ctx.act = act
        ctx.save_for_backward(u, S, Y, m, zone, valid)
        return S[1:], S[T].clone()

    @staticmethod
    @without_autocast
    @once_differentiable  # the backward pass itself is not differentiable: say so if asked
    def backward(ctx, grad_states, grad_final):
        u, S, Y, m, zone, valid = ctx.saved_tensors
        T = grad_states.shape[0]
        dS = grad_buffer(grad_states, grad_final)  # (T+1, B, H)
        K = keep_weight(zone, valid, S.dtype)
        D = scale_new(activation_grad(ctx.act, Y), K)  # (T, B|1, H|1) or None
        um = u * m if m is not None else u  # (B, H) or (H,)
        C = um if D is None else D * um  # (T, B, H) d h_t / d h_{t-1} through the cell
        if K is not None:
            C = C + K
        dsv = dS.unbind(0)
        if C.dim() == 3:
            cv = C.unbind(0)
            for t in range(T - 1, -1, -1):
                dsv[t].addcmul_(dsv[t + 1], cv[t])
        else:  # identity activation, no mixing: the same coefficient at every step
            for t in range(T - 1, -1, -1):
                dsv[t].addcmul_(dsv[t + 1], C)
        dA = dS[1:] if D is None else dS[1:] * D  # (T, B, H) dL/da
        hin = S[:-1] * m if m is not None else S[:-1]  # (T, B, H)
        du = (dA * hin).sum((0, 1))  # (H,)
        return dA, du, dS[0], None, None, None, None
