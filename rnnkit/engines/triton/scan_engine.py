"""The ``triton_scan`` engine: minGRU/minLSTM with the fused Triton scan (forward and backward).

The input projection stays one cuBLAS matmul (``cell.project_input``); the kernel then reads the
pre-activations once and writes h once (see ``scan_kernels``). Gradients flow to xp (hence to the
projection's weights through autograd) and to h0.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import Tensor

import triton

from ..base import DirectionJob, DirectionResult, Engine, Request, State, without_autocast
from ..scan import finish_direction, scan_features_reason
from .scan_kernels import minrnn_scan_bwd_kernel, minrnn_scan_fwd_kernel

_MODES = {"mingru": 0, "minlstm": 1}
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def interpreting() -> bool:
    """True when Triton kernels run on the CPU through its interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _blocks(T: int, B: int, H: int, backward: bool = False, mode: int = 0):
    """(BT, BC, warps): tiles of BT steps by BC channels, one program per (batch row, BC channels).
    From the H100 runs at T=4096, B=16, H=512 (bench/NOTES_gpu.md). minGRU: forward BT=64, BC=16,
    4 warps; backward BT=128, BC=32, 8 warps (fwd+bwd 0.99 -> 0.85 ms fp32). minLSTM kept the first
    tiles (forward BT=128, BC=32, 8 warps; backward BT=64, BC=32, 8 warps): the minGRU tiles made
    it slower (1.39 -> 1.77 ms)."""
    if mode == 0:
        BT, BC, warps = (128, 32, 8) if backward else (64, 16, 4)
    else:
        BT, BC, warps = (64, 32, 8) if backward else (128, 32, 8)
    BC = min(BC, max(16, triton.next_power_of_2(H)))
    BT = min(BT, max(16, triton.next_power_of_2(T)))
    if interpreting():
        BT = min(BT, 16)
    return BT, BC, warps


class MinRNNScanFunction(torch.autograd.Function):
    """h (T, B, H) = scan of the minGRU/minLSTM recurrence over xp (T, B, G)."""

    @staticmethod
    def forward(ctx, xp: Tensor, h0: Optional[Tensor], valid: Optional[Tensor], mode: int,
                positive: bool) -> Tensor:
        xp = xp.contiguous()
        T, B, G = xp.shape
        H = G // (2 + mode)
        out = torch.empty(T, B, H, device=xp.device, dtype=xp.dtype)
        h0c = h0.contiguous() if h0 is not None else None
        vc = valid.reshape(T, B).to(torch.int8).contiguous() if valid is not None else None
        BT, BC, warps = _blocks(T, B, H, mode=mode)
        grid = (B, triton.cdiv(H, BC))
        minrnn_scan_fwd_kernel[grid](xp, h0c if h0c is not None else xp, vc if vc is not None else xp,
                                     out, T, B, H, MODE=mode, POSITIVE=positive,
                                     HAS_H0=h0c is not None, HAS_VALID=vc is not None, BT=BT, BC=BC,
                                     num_warps=warps)
        ctx.save_for_backward(xp, h0c, vc, out)
        ctx.mode, ctx.positive = mode, positive
        return out

    @staticmethod
    @without_autocast
    def backward(ctx, dout: Tensor):
        xp, h0, vc, out = ctx.saved_tensors
        T, B, G = xp.shape
        H = out.shape[2]
        dout = dout.contiguous()
        dxp = torch.empty_like(xp)
        dh0 = torch.empty_like(h0) if h0 is not None else None
        BT, BC, warps = _blocks(T, B, H, backward=True, mode=ctx.mode)
        grid = (B, triton.cdiv(H, BC))
        minrnn_scan_bwd_kernel[grid](xp, h0 if h0 is not None else xp, vc if vc is not None else xp,
                                     out, dout, dxp, dh0 if dh0 is not None else xp, T, B, H,
                                     MODE=ctx.mode, POSITIVE=ctx.positive, HAS_H0=h0 is not None,
                                     HAS_VALID=vc is not None, BT=BT, BC=BC, num_warps=warps)
        return dxp, dh0, None, None, None


def fused_min_scan(xp: Tensor, h0: Optional[Tensor], family: str, positive: bool = True,
                   valid: Optional[Tensor] = None) -> Tensor:
    """Fused scan of minGRU ('mingru', xp (T,B,2H)) or minLSTM ('minlstm', (T,B,3H)) -> h (T,B,H)."""
    return MinRNNScanFunction.apply(xp, h0, valid, _MODES[family], positive)


class TritonScanEngine(Engine):
    name = "triton_scan"
    scope = "direction"
    #: counts run_direction calls: tests spy on it to prove the fused path ran
    calls = 0

    def supports(self, req: Request) -> Optional[str]:
        reason = scan_features_reason(req)
        if reason:
            return reason
        if req.device.type != "cuda" and not interpreting():
            return "the Triton kernels need a CUDA device (or TRITON_INTERPRET=1 on the CPU)"
        if req.dtype not in _DTYPES:
            return f"the fused scan runs float32, bfloat16 and float16, not {req.dtype}"
        if req.regularization.zoneout:
            return "zoneout is not fused into the Triton scan (the torch 'scan' engine handles it)"
        return None

    def run_direction(self, cell, x: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
        if job.masks.zoneout is not None:
            raise ValueError("triton_scan does not fuse zoneout; use engine='scan'")
        type(self).calls += 1
        xp = cell.project_input(x)  # (T, B, G)
        h = fused_min_scan(xp, state0[0], cell.family, cell.config.positive_candidate, job.valid)
        return finish_direction(h, job)
