"""The GRU family on the cpp engine: ``GRUCppFunction`` has ``GRUFunction``'s signature and results
(``rnnkit/engines/bptt/gru.py`` documents both variants' equations and the backward pass); its forward
and backward time loops run in C++ (``csrc/gru.cpp``), one BLAS call per recurrent product plus one
fused element-wise pass per step. The gradients that are sums over all steps (W_hh, b_hh, the
LayerNorm gains and biases) are one matmul or one reduction each, here, after the loop.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..base import DirectionJob, DirectionResult, without_autocast
from ..bptt import gru as bptt_gru
from ..bptt.gru import LN_EPS
from .build import kernels
from .elman import full_keep
from .gemm import transposed


def _opt(t: Optional[Tensor]) -> Optional[Tensor]:
    return None if t is None else t.contiguous()


def _added(ln_b: Optional[Tensor], b: Optional[Tensor]) -> Optional[Tensor]:
    """What is added after a recurrent product (and its LN): LN beta + b_hh, either, or None."""
    if ln_b is None:
        return _opt(b)
    return (ln_b + b if b is not None else ln_b).contiguous()


def _normalised(U: Tensor, stats: Tensor) -> Tensor:
    """x_hat (T, B, G) of pre-LN products U from their (mean, rstd) (T, B, 2)."""
    return (U - stats[..., :1]) * stats[..., 1:]


class GRUCppFunction(torch.autograd.Function):
    """xp (T, B, 3H), w_hh (3H, H), b_hh (3H) or None, LN weights or None, s0 (B, H), h_mask (B, H) or None,
    zone (T, B|1, H|1) or None, valid (T, B, 1) bool or None, reset_after
    -> (per-step states (T, B, H), final state (B, H)), as GRUFunction."""

    @staticmethod
    def forward(ctx, xp, w, b, ln_w, ln_b, ln_hn_w, ln_hn_b, s0, m, zone, valid, reset_after):
        T, B, G = xp.shape
        H = G // 3
        K = full_keep(zone, valid, (T, B, H), xp.dtype)
        m = _opt(m)
        ops = kernels()
        ln = ln_w is not None
        ctx.reset_after, ctx.ln, ctx.has_b = reset_after, ln, b is not None
        if reset_after:
            S, R, Z, HN, N, U, ST, HIN = ops.gru_after_forward(
                xp.contiguous(), transposed(w), _added(ln_b, b), _opt(ln_w), s0.contiguous(), m, K, LN_EPS)
            bufs = (R, Z, HN, N, U if ln else None, ST if ln else None)
        else:
            S, RZ, RH, N, Urz, Un, STrz, STn, HIN = ops.gru_before_forward(
                xp.contiguous(), transposed(w[:2 * H]), transposed(w[2 * H:]),
                _added(ln_b, b[:2 * H] if b is not None else None),
                _added(ln_hn_b, b[2 * H:] if b is not None else None), _opt(ln_w), _opt(ln_hn_w),
                s0.contiguous(), m, K, LN_EPS)
            bufs = (RZ, RH, N) + ((Urz, Un, STrz, STn) if ln else (None,) * 4)
        ctx.save_for_backward(w, ln_w, ln_hn_w, S, HIN if m is not None else None, m, K, *bufs)
        return S[1:], S[T].clone()

    @staticmethod
    @without_autocast
    @once_differentiable  # the backward pass itself is not differentiable: say so if asked
    def backward(ctx, grad_states, grad_final):
        w, ln_w, ln_hn_w, S, HIN, m, K, *bufs = ctx.saved_tensors
        grads = (grad_states.contiguous(), grad_final.contiguous())
        hin = HIN if HIN is not None else S[:-1]  # (T, B, H) h_{t-1} * h_mask
        bwd = _backward_after if ctx.reset_after else _backward_before
        dxp, dw, db, dln, ds0 = bwd(w, ln_w, ln_hn_w, S, HIN, hin, m, K, bufs, grads)
        need = ctx.needs_input_grad
        return (dxp, dw if need[1] else None, db if ctx.has_b and need[2] else None,
                *(g if n else None for g, n in zip(dln, need[3:7])), ds0, None, None, None, None)


def _backward_after(w, ln_w, ln_hn_w, S, HIN, hin, m, K, bufs, grads):
    R, Z, HN, N, U, ST = bufs
    T, B, H = N.shape
    G = 3 * H
    dXP, DHN, dU, ds0 = kernels().gru_after_backward(w.contiguous(), S, R, Z, HN, N, U, ST, _opt(ln_w), HIN, m, K,
                                                     *grads)
    # dL/dgh = [da_r, da_z, dhn]: dXP's r and z blocks, DHN (dXP's n block is da_n: r multiplies hn, not xn)
    drz = dXP[..., :2 * H].reshape(T * B, 2 * H)  # a view (row stride 3H)
    hin2 = hin.reshape(T * B, H)
    if ln_w is not None:
        dw = dU.view(T * B, G).t().mm(hin2)  # (3H, H) one matmul
    else:
        dw = S.new_empty(G, H)  # (3H, H)
        torch.mm(drz.t(), hin2, out=dw[:2 * H])
        torch.mm(DHN.view(T * B, H).t(), hin2, out=dw[2 * H:])
    db = torch.cat([drz.sum(0), DHN.sum((0, 1))])  # (3H,)
    dln = (None,) * 4
    if ln_w is not None:
        xhat = _normalised(U, ST)  # (T, B, 3H)
        dgamma = torch.cat([(dXP[..., :2 * H] * xhat[..., :2 * H]).sum((0, 1)), (DHN * xhat[..., 2 * H:]).sum((0, 1))])
        dln = (dgamma, db, None, None)
    return dXP, dw, db, dln, ds0


def _backward_before(w, ln_w, ln_hn_w, S, HIN, hin, m, K, bufs, grads):
    RZ, RH, N, Urz, Un, STrz, STn = bufs
    T, B, H = N.shape
    G = 3 * H
    dG, dUrz, dUn, ds0 = kernels().gru_before_backward(
        w[:2 * H].contiguous(), w[2 * H:].contiguous(), S, RZ, N, Urz, Un, STrz, STn, _opt(ln_w), _opt(ln_hn_w),
        HIN, m, K, *grads)
    ln = ln_w is not None
    drz = dUrz if ln else dG[..., :2 * H]  # (T, B, 2H) dL/d(h_in W_rz^T)
    dnn = dUn if ln else dG[..., 2 * H:]  # (T, B, H) dL/d((r h_in) W_n^T)
    dw = S.new_empty(G, H)  # (3H, H): one matmul per weight block over all steps
    torch.mm(drz.reshape(T * B, 2 * H).t(), hin.reshape(T * B, H), out=dw[:2 * H])
    torch.mm(dnn.reshape(T * B, H).t(), RH.reshape(T * B, H), out=dw[2 * H:])
    db = dG.sum((0, 1))  # (3H,)
    if ln:
        dln = ((dG[..., :2 * H] * _normalised(Urz, STrz)).sum((0, 1)), db[:2 * H],
               (dG[..., 2 * H:] * _normalised(Un, STn)).sum((0, 1)), db[2 * H:])
    else:
        dln = (None,) * 4
    return dG, dw, db, dln, ds0


def single_step_reason(cell, job: Optional[DirectionJob] = None) -> Optional[str]:
    """Why a one-step call of this GRU cannot take the single-step kernel (``csrc/step.cpp``), or None:
    it runs torch.nn.GRU's equations only (reset gate after the matmul, no LayerNorm), with no
    lengths and no regulariser masks, and keeps no gradient."""
    cfg = cell.config
    if not cfg.reset_after or cfg.layer_norm:
        return "the single-step GRU kernel runs the reset-after GRU without LayerNorm only"
    if job is not None and (job.valid is not None or job.masks.any or job.probe is not None or job.trace is not None):
        return "the single-step GRU kernel takes no lengths, regulariser masks, probes or traces"
    return None


def _keeps_grad(cell, x: Tensor, h0: Tensor) -> bool:
    return torch.is_grad_enabled() and (x.requires_grad or h0.requires_grad or
                                        any(p.requires_grad for p in cell.parameters()))


def run(cell, x: Tensor, state0, job: DirectionJob) -> DirectionResult:
    """One direction of one layer through the C++ time loop (see ``rnnkit.engines.bptt.gru.run``); one
    step without gradients (generation, beam search) through the single-step kernel instead."""
    if x.shape[0] == 1 and single_step_reason(cell, job) is None and not _keeps_grad(cell, x, state0[0]):
        b = (cell.bias_ih.contiguous(), cell.bias_hh.contiguous()) if cell.bias_ih is not None else (None, None)
        h = kernels().gru_step(x[0].contiguous(), state0[0].contiguous(), cell.weight_ih.contiguous(),
                               cell.weight_hh.contiguous(), *b)  # (B, H)
        hidden = h.unsqueeze(0)  # (1, B, H)
        return DirectionResult(hidden=hidden, state=(h,), states=(hidden,) if job.want_states else None)
    return bptt_gru.run(cell, x, state0, job, function=GRUCppFunction)
