"""The Jordan network on the cpp engine: ``JordanCppFunction`` has ``JordanFunction``'s signature and
results (``rnnkit/engines/bptt/jordan.py`` documents the equations and the backward pass); its forward
and backward time loops run in C++ (``csrc/jordan.cpp``), two products plus two fused element-wise
passes per step. The weight gradients, sums over all steps, are one matmul each here after the loop.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..base import DirectionJob, DirectionResult, without_autocast
from ..bptt import jordan as bptt_jordan
from ..bptt._common import ACTIVATIONS
from .build import kernels
from .elman import full_keep
from .gemm import transposed


class JordanCppFunction(torch.autograd.Function):
    """``JordanFunction.apply``'s arguments and results (xp (T, B, H) ... -> (y (T, B, O), y_T (B, O)))."""

    @staticmethod
    def forward(ctx, xp, w_hy, w_yh, b_y, s0, m, zone, valid, act, out_act):
        T, B, _ = xp.shape
        O = w_yh.shape[0]
        codes = (ACTIVATIONS.index(act), ACTIVATIONS.index(out_act))
        K = full_keep(zone, valid, (T, B, O), xp.dtype)
        m = m.contiguous() if m is not None else None
        S, Y, Hh, YIN = kernels().jordan_forward(
            xp.contiguous(), transposed(w_hy), transposed(w_yh), b_y.contiguous() if b_y is not None else None,
            s0.contiguous(), m, K, *codes)
        ctx.codes = codes
        ctx.has_b = b_y is not None
        ctx.save_for_backward(w_hy, w_yh, S, Y if K is not None else None, Hh, YIN if m is not None else None, m, K)
        return S[1:], S[T].clone()

    @staticmethod
    @without_autocast
    @once_differentiable  # the backward pass itself is not differentiable: say so if asked
    def backward(ctx, grad_states, grad_final):
        w_hy, w_yh, S, Y, Hh, YIN, m, K = ctx.saved_tensors
        T, B, O = grad_states.shape
        H = Hh.shape[-1]
        dO, dA, dy0 = kernels().jordan_backward(
            w_hy.contiguous(), w_yh.contiguous(), Y if Y is not None else S[1:], Hh, m, K,
            grad_states.contiguous(), grad_final.contiguous(), *ctx.codes)
        need = ctx.needs_input_grad
        dOf = dO.view(T * B, O)
        dw_yh = dOf.t().mm(Hh.view(T * B, H)) if need[2] else None  # (O, H)
        yin = YIN if YIN is not None else S[:-1]  # (T, B, O) the contexts that entered the product
        dw_hy = dA.view(T * B, H).t().mm(yin.reshape(T * B, O)) if need[1] else None  # (H, O)
        db_y = dOf.sum(0) if ctx.has_b and need[3] else None  # (O,)
        return dA, dw_hy, dw_yh, db_y, dy0, None, None, None, None, None


def run(cell, x: Tensor, state0, job: DirectionJob) -> DirectionResult:
    """One direction of one layer through the C++ time loop (see ``rnnkit.engines.bptt.jordan.run``)."""
    return bptt_jordan.run(cell, x, state0, job, function=JordanCppFunction)
