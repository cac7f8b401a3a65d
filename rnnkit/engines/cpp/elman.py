"""The Elman family on the cpp engine: ``ElmanCppFunction`` has ``ElmanFunction``'s signature and
results (``rnnkit/engines/bptt/elman.py`` documents the equations and the backward pass); its forward
and backward time loops run in C++ (``csrc/elman.cpp``), one BLAS call plus one fused element-wise
pass per step. dW_hh, a sum over all steps, is one matmul here after the loop.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..base import DirectionJob, DirectionResult, without_autocast
from ..bptt import elman as bptt_elman
from ..bptt._common import ACTIVATIONS, keep_weight
from .build import kernels
from .gemm import transposed


def full_keep(zone: Optional[Tensor], valid: Optional[Tensor], shape, dtype) -> Optional[Tensor]:
    """The keep weight K_t of ``bptt._common.keep_weight`` (zoneout and lengths in one lerp weight),
    broadcast to its full (T, B, S) shape and contiguous, or None: lerp(new, old, K) with K = 1 where
    a sequence has ended is exactly the bptt engine's where(valid, lerp(new, old, zm), old)."""
    K = keep_weight(zone, valid, dtype)
    return None if K is None else K.expand(shape).contiguous()


class ElmanCppFunction(torch.autograd.Function):
    """xp (T, B, H), w_hh (H, H), s0 (B, H), h_mask (B, H) or None, zone (T, B|1, H|1) or None,
    valid (T, B, 1) bool or None, act name -> (per-step states (T, B, H), final state (B, H))."""

    @staticmethod
    def forward(ctx, xp, w, s0, m, zone, valid, act):
        T, B, H = xp.shape
        code = ACTIVATIONS.index(act)
        K = full_keep(zone, valid, (T, B, H), xp.dtype)
        m = m.contiguous() if m is not None else None
        S, Y, HIN = kernels().elman_forward(xp.contiguous(), transposed(w), s0.contiguous(), m, K, code)
        ctx.act_code = code
        ctx.save_for_backward(w, S, Y if K is not None else None, HIN if m is not None else None, m, K)
        return S[1:], S[T].clone()

    @staticmethod
    @without_autocast
    @once_differentiable  # the backward pass itself is not differentiable: say so if asked
    def backward(ctx, grad_states, grad_final):
        w, S, Y, HIN, m, K = ctx.saved_tensors
        T, B, H = grad_states.shape
        dA, ds0 = kernels().elman_backward(w.contiguous(), Y if Y is not None else S[1:], m, K,
                                           grad_states.contiguous(), grad_final.contiguous(), ctx.act_code)
        dw = None
        if ctx.needs_input_grad[1]:
            hin = HIN if HIN is not None else S[:-1]  # (T, B, H)
            dw = dA.reshape(T * B, H).t().mm(hin.reshape(T * B, H))  # (H, H) one matmul
        return dA, dw, ds0, None, None, None, None


def run(cell, x: Tensor, state0, job: DirectionJob) -> DirectionResult:
    """One direction of one layer through the C++ time loop (see ``rnnkit.engines.bptt.elman.run``)."""
    return bptt_elman.run(cell, x, state0, job, function=ElmanCppFunction)
