"""The Jordan network on the ``triton`` engine: the autograd Function around ``jordan_kernels``'
persistent forward and backward kernels, its tiling, and the sums over all steps done in torch after
the backward kernel (dW_hy, dW_yh, db_y). The input side xp = W_hx x + b_ih is ``cell.project_input``
(all steps at once, differentiated by autograd)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

import triton

from ..base import without_autocast
from .jordan_kernels import jordan_bwd_kernel, jordan_fwd_kernel
from .plan import ACTIVATION_CODES, _precision, _sm_count, resident_limit
from .scan_engine import interpreting


@dataclass(frozen=True)
class JordanPlan:
    """NP programs owning BH units of h and BO units of y; HP / OP: H and O padded to powers of two;
    RESIDENT: both weight slices (OP x BH and HP x BO) kept on chip."""

    NP: int
    BB: int
    BH: int
    BO: int
    BK: int
    HP: int
    OP: int
    RESIDENT: bool
    num_warps: int


def jordan_plan(B: int, H: int, O: int, device: torch.device, dtype: torch.dtype) -> JordanPlan:
    """The smallest unit blocks (16, tl.dot's minimum) whose grid fits the SMs (all programs resident
    for the grid-wide barrier); on the interpreter one program owns every unit."""
    HP, OP = max(16, triton.next_power_of_2(H)), max(16, triton.next_power_of_2(O))
    BB = min(64, max(16, triton.next_power_of_2(B)))
    limit = resident_limit(dtype)
    if interpreting():
        return JordanPlan(1, BB, HP, OP, 16, HP, OP, OP * HP + HP * OP <= limit, 4)
    sms = _sm_count(device)
    BH = BO = 16
    while triton.cdiv(H, BH) > sms:
        BH *= 2
    while triton.cdiv(O, BO) > sms:
        BO *= 2
    NP = max(triton.cdiv(H, BH), triton.cdiv(O, BO))
    resident = OP * BH + HP * BO <= limit
    BK = 64 if dtype != torch.float32 else 32
    return JordanPlan(NP, BB, BH, BO, BK, HP, OP, resident, 4)


class FusedJordanFunction(torch.autograd.Function):
    """ys (T, B, O): every step's output y_t of one direction (also the state carried)."""

    @staticmethod
    def forward(ctx, xp: Tensor, w_hy: Tensor, w_yh: Tensor, b_y: Optional[Tensor], y0: Tensor,
                valid: Optional[Tensor], act: int, out_act: int, h_mask: Optional[Tensor] = None):
        xp = xp.contiguous()
        T, B, H = xp.shape
        O = w_yh.shape[0]
        dev, dt = xp.device, xp.dtype
        P = jordan_plan(B, H, O, dev, dt)
        ybuf = torch.empty(T + 1, B, O, device=dev, dtype=dt)
        ybuf[0] = y0
        hbuf = torch.empty(T, B, H, device=dev, dtype=dt)
        vc = valid.reshape(T, B).to(torch.int8).contiguous() if valid is not None else None
        why_t, wyh_t = w_hy.t().contiguous(), w_yh.t().contiguous()  # (O, H), (H, O)
        hm = h_mask.to(dt).contiguous() if h_mask is not None else None
        sync = torch.zeros(1, device=dev, dtype=torch.int32)
        jordan_fwd_kernel[(P.NP,)](xp, why_t, wyh_t, b_y if b_y is not None else why_t,
                                   vc if vc is not None else why_t, ybuf, hbuf, sync, T, B, H, O,
                                   ACT=act, OUT_ACT=out_act, HAS_BY=b_y is not None, HAS_VALID=vc is not None,
                                   NP=P.NP, BB=P.BB, BH=P.BH, BO=P.BO, BK=P.BK, HP=P.HP, OP=P.OP,
                                   RESIDENT=P.RESIDENT, PREC=_precision(dt), hm_ptr=hm,
                                   HAS_HMASK=hm is not None, num_warps=P.num_warps)
        ctx.save_for_backward(w_hy, w_yh, ybuf, hbuf, vc, hm)
        ctx.meta = (act, out_act, b_y is not None)
        return ybuf[1:]

    @staticmethod
    @without_autocast
    def backward(ctx, dys: Tensor):
        w_hy, w_yh, ybuf, hbuf, vc, hm = ctx.saved_tensors
        act, out_act, has_by = ctx.meta
        T, B, H = hbuf.shape
        O = ybuf.shape[-1]
        dev, dt = ybuf.device, ybuf.dtype
        P = jordan_plan(B, H, O, dev, dt)
        f32 = dict(device=dev, dtype=torch.float32)
        dz = torch.empty(T, B, O, **f32)
        dp = torch.empty(T, B, H, **f32)
        dyrec = torch.zeros(B, O, **f32)
        dydir = torch.zeros(B, O, **f32)
        why, wyh = w_hy.contiguous(), w_yh.contiguous()
        sync = torch.zeros(1, device=dev, dtype=torch.int32)
        jordan_bwd_kernel[(P.NP,)](why, wyh, vc if vc is not None else why, ybuf, hbuf, dys.contiguous(), dz, dp,
                                   dyrec, dydir, sync, T, B, H, O, ACT=act, OUT_ACT=out_act,
                                   HAS_VALID=vc is not None, NP=P.NP, BB=P.BB, BH=P.BH, BO=P.BO, BK=P.BK,
                                   HP=P.HP, OP=P.OP, RESIDENT=P.RESIDENT, PREC=_precision(dt), hm_ptr=hm,
                                   HAS_HMASK=hm is not None, num_warps=P.num_warps)
        need = ctx.needs_input_grad
        y_prev = (ybuf[:-1] * hm if hm is not None else ybuf[:-1]).reshape(T * B, O)  # what W_hy saw
        d_why = (dp.reshape(T * B, H).t().to(dt) @ y_prev).to(w_hy.dtype) if need[1] else None  # (H, O)
        d_wyh = (dz.reshape(T * B, O).t().to(dt) @ hbuf.reshape(T * B, H)).to(w_yh.dtype) if need[2] else None
        d_by = dz.sum((0, 1)).to(dt) if has_by and need[3] else None
        return (dp.to(dt) if need[0] else None, d_why, d_wyh, d_by, dyrec.to(dt) if need[4] else None,
                None, None, None, None)


def fused_jordan(cell, xp: Tensor, w_hy: Tensor, y0: Tensor, valid: Optional[Tensor],
                 h_mask: Optional[Tensor] = None) -> Tensor:
    """One direction of a JordanCell: xp = cell.project_input(x) (T, B, H), w_hy the effective W_hy
    (DropConnect applied). Returns ys (T, B, O)."""
    cfg = cell.config
    return FusedJordanFunction.apply(xp, w_hy, cell.weight_yh, cell.bias_y, y0, valid, ACTIVATION_CODES[cfg.activation],
                                     ACTIVATION_CODES[cfg.out_activation], h_mask)
