"""Explicit BPTT for the Elman network (Elman 1990; equations in ``rnnkit/cells/elman.py``).

ElmanCell folds both biases into ``project_input``, so the recurrence inside the Function is::

    a_t = xp_t + (h_{t-1} * h_mask) W_hh^T        h_t = act(a_t)     (then zoneout / lengths)

Backward (Werbos 1990), d = dL/dh_t in total, K_t the keep weight of ``_common``::

    da_t     = d * (1 - K_t) * act'(a_t)            (act' from the output: tanh 1-h^2, sigmoid h(1-h))
    dh_{t-1} = d * K_t + (da_t W_hh) * h_mask
    dW_hh    = sum_t da_t^T (h_{t-1} * h_mask)      one matmul over all steps

The optional output layer (``readout``) runs outside the engine, on the layer.
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


def run(cell, x: Tensor, state0, job: DirectionJob, function=None) -> DirectionResult:
    """One direction of one layer. function: the autograd.Function running the time loop, with
    ``ElmanFunction``'s signature (default ElmanFunction; the cpp engine passes its C++ one)."""
    act = cell.config.activation
    function = function or ElmanFunction

    def apply(xp, ctx, s0, h_mask, zone, valid):
        return function.apply(xp, ctx.weights["weight_hh"], s0, h_mask, zone, valid, act)

    return run_single_state(cell, x, state0, job, apply)


class ElmanFunction(torch.autograd.Function):
    """xp (T, B, H), w_hh (H, H), s0 (B, H), h_mask (B, H) or None, zone (T, B|1, H|1) or None,
    valid (T, B, 1) bool or None, act name -> (per-step states (T, B, H), final state (B, H))."""

    @staticmethod
    def forward(ctx, xp, w, s0, m, zone, valid, act):
        T, B, H = xp.shape
        slots = T if any(ctx.needs_input_grad) else 1
        mixing = zone is not None or valid is not None
        S = xp.new_empty(T + 1, B, H)  # (T+1, B, H) S[0] = s0
        S[0].copy_(s0)
        Y = new_state_buffer(S, mixing, slots)  # (T, B, H) act(a_t) before the mix
        sv, yv, xv = S.unbind(0), step_views(Y, T), xp.unbind(0)
        zmv = zone.unbind(0) if zone is not None else [None] * T
        vv = valid.unbind(0) if valid is not None else [None] * T
        wt = w.t()  # (H, H)
        for t in range(T):
            h = sv[t]  # (B, H)
            y = activate_(act, torch.addmm(xv[t], h * m if m is not None else h, wt, out=yv[t]))
            if mixing:
                mix_to(sv[t + 1], y, h, zmv[t], vv[t])
        ctx.act = act
        ctx.save_for_backward(w, S, Y, m, zone, valid)
        return S[1:], S[T].clone()

    @staticmethod
    @without_autocast
    @once_differentiable  # the backward pass itself is not differentiable: say so if asked
    def backward(ctx, grad_states, grad_final):
        w, S, Y, m, zone, valid = ctx.saved_tensors
        T, B, H = grad_states.shape
        dS = grad_buffer(grad_states, grad_final)  # (T+1, B, H)
        K = keep_weight(zone, valid, S.dtype)
        D = scale_new(activation_grad(ctx.act, Y), K)  # (T, B|1, H|1) or None: da = d * D
        dA = dS[1:] if D is None else S.new_empty(T, B, H)  # (T, B, H) dL/da
        dsv, dav = dS.unbind(0), dA.unbind(0)
        Dv = D.unbind(0) if D is not None else None
        Kv = K.unbind(0) if K is not None else None
        tmp = S.new_empty(B, H) if m is not None else None
        for t in range(T - 1, -1, -1):
            d = dsv[t + 1]  # (B, H) total dL/dh_t
            da = torch.mul(d, Dv[t], out=dav[t]) if Dv is not None else d
            prev = dsv[t]
            if Kv is not None:
                prev.addcmul_(d, Kv[t])
            if m is None:
                prev.addmm_(da, w)
            else:
                prev.addcmul_(torch.mm(da, w, out=tmp), m)
        hin = S[:-1] * m if m is not None else S[:-1]  # (T, B, H)
        dw = dA.reshape(T * B, H).t().mm(hin.reshape(T * B, H))  # (H, H) one matmul
        return dA, dw, dS[0], None, None, None, None
