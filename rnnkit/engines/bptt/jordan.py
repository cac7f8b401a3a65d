"""Explicit BPTT for the Jordan network (Jordan 1986; equations in ``rnnkit/cells/jordan.py``).
The state fed back is the output y (B, O)::

    a_t = xp_t + (y_{t-1} * h_mask) W_hy^T      h_t = act(a_t)                  (B, H)
    o_t = h_t W_yh^T + b_y                      y_t = out_act(o_t)              (B, O), then zoneout / lengths

Backward (Werbos 1990), d = dL/dy_t in total, K_t the keep weight of ``_common``::

    do_t     = d * (1 - K_t) * out_act'(o_t)
    da_t     = (do_t W_yh) * act'(a_t)
    dy_{t-1} = d * K_t + (da_t W_hy) * h_mask
    dW_yh = sum_t do_t^T h_t,  db_y = sum do_t,  dW_hy = sum_t da_t^T (y_{t-1} * h_mask)   (one matmul each)
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
    return (common_reason(req) or activation_reason(cell, "activation")
            or activation_reason(cell, "out_activation"))


def run(cell, x: Tensor, state0, job: DirectionJob, function=None) -> DirectionResult:
    """One direction of one layer. function: the autograd.Function running the time loop, with
    ``JordanFunction``'s signature (default JordanFunction; the cpp engine passes its C++ one)."""
    cfg = cell.config
    function = function or JordanFunction

    def apply(xp, ctx, s0, h_mask, zone, valid):
        return function.apply(xp, ctx.weights["weight_hy"], cell.weight_yh, cell.bias_y, s0, h_mask,
                              zone, valid, cfg.activation, cfg.out_activation)

    return run_single_state(cell, x, state0, job, apply)


class JordanFunction(torch.autograd.Function):
    """xp (T, B, H), w_hy (H, O), w_yh (O, H), b_y (O) or None, s0 (B, O), h_mask (B, O) or None,
    zone (T, B|1, O|1) or None, valid (T, B, 1) bool or None, act and out_act names
    -> (per-step states y (T, B, O), final state (B, O))."""

    @staticmethod
    def forward(ctx, xp, w_hy, w_yh, b_y, s0, m, zone, valid, act, out_act):
        T, B, H = xp.shape
        O = w_yh.shape[0]
        slots = T if any(ctx.needs_input_grad) else 1
        mixing = zone is not None or valid is not None
        S = xp.new_empty(T + 1, B, O)  # (T+1, B, O) S[0] = y_0
        S[0].copy_(s0)
        Y = new_state_buffer(S, mixing, slots)  # (T, B, O) out_act(o_t) before the mix
        Hh = xp.new_empty(slots, B, H)  # (T, B, H) hidden h_t
        sv, yv, hv, xv = S.unbind(0), step_views(Y, T), step_views(Hh, T), xp.unbind(0)
        zmv = zone.unbind(0) if zone is not None else [None] * T
        vv = valid.unbind(0) if valid is not None else [None] * T
        w_hy_t, w_yh_t = w_hy.t(), w_yh.t()  # (O, H), (H, O)
        for t in range(T):
            y = sv[t]  # (B, O)
            h = activate_(act, torch.addmm(xv[t], y * m if m is not None else y, w_hy_t, out=hv[t]))
            if b_y is not None:
                o = torch.addmm(b_y, h, w_yh_t, out=yv[t])
            else:
                o = torch.mm(h, w_yh_t, out=yv[t])
            y_new = activate_(out_act, o)  # (B, O)
            if mixing:
                mix_to(sv[t + 1], y_new, y, zmv[t], vv[t])
        ctx.acts = (act, out_act)
        ctx.has_b = b_y is not None
        ctx.save_for_backward(w_hy, w_yh, S, Y, Hh, m, zone, valid)
        return S[1:], S[T].clone()

    @staticmethod
    @without_autocast
    @once_differentiable  # the backward pass itself is not differentiable: say so if asked
    def backward(ctx, grad_states, grad_final):
        w_hy, w_yh, S, Y, Hh, m, zone, valid = ctx.saved_tensors
        act, out_act = ctx.acts
        T, B, O = grad_states.shape
        H = Hh.shape[-1]
        dS = grad_buffer(grad_states, grad_final)  # (T+1, B, O)
        K = keep_weight(zone, valid, S.dtype)
        Dy = scale_new(activation_grad(out_act, Y), K)  # (T, B|1, O|1) or None: do = d * Dy
        Dh = activation_grad(act, Hh)  # (T, B, H) or None: da = dh * Dh
        dO = dS[1:] if Dy is None else S.new_empty(T, B, O)  # (T, B, O) dL/do
        dA = S.new_empty(T, B, H)  # (T, B, H) dL/da
        dsv, dov, dav = dS.unbind(0), dO.unbind(0), dA.unbind(0)
        Dyv = Dy.unbind(0) if Dy is not None else None
        Dhv = Dh.unbind(0) if Dh is not None else None
        Kv = K.unbind(0) if K is not None else None
        tmp = S.new_empty(B, O) if m is not None else None
        for t in range(T - 1, -1, -1):
            d = dsv[t + 1]  # (B, O) total dL/dy_t
            do = torch.mul(d, Dyv[t], out=dov[t]) if Dyv is not None else d
            da = torch.mm(do, w_yh, out=dav[t])  # (B, H) dL/dh_t
            if Dhv is not None:
                da.mul_(Dhv[t])
            prev = dsv[t]
            if Kv is not None:
                prev.addcmul_(d, Kv[t])
            if m is None:
                prev.addmm_(da, w_hy)
            else:
                prev.addcmul_(torch.mm(da, w_hy, out=tmp), m)
        yin = S[:-1] * m if m is not None else S[:-1]  # (T, B, O)
        dOf = dO.reshape(T * B, O)
        dw_yh = dOf.t().mm(Hh.reshape(T * B, H))  # (O, H)
        dw_hy = dA.reshape(T * B, H).t().mm(yin.reshape(T * B, O))  # (H, O)
        db_y = dOf.sum(0) if ctx.has_b else None  # (O,)
        return dA, dw_hy, dw_yh, db_y, dS[0], None, None, None, None, None
