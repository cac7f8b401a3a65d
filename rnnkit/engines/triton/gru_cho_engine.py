"""The GRU with the reset gate before the matmul (Cho et al. 2014) on the ``triton`` engine: the
autograd Function around ``gru_cho_kernels``' forward and backward kernels, their tiling, and the
weight gradients (sums over all steps) formed in torch after the backward kernel."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

import triton

from ..base import without_autocast
from .gru_cho_kernels import gru_cho_bwd_kernel, gru_cho_fwd_kernel
from .plan import _precision, _sm_count, resident_limit
from .scan_engine import interpreting


@dataclass(frozen=True)
class ChoPlan:
    """NP programs of BH units; HP / H2P: H and 2H padded to powers of two; RESIDENT: the W slices
    (HP x 3BH forward, H2P x BH + HP x BH backward) kept on chip."""

    NP: int
    BB: int
    BH: int
    BK: int
    HP: int
    H2P: int
    RESIDENT: bool
    num_warps: int


def cho_plan(B: int, H: int, device: torch.device, dtype: torch.dtype) -> ChoPlan:
    """The smallest unit block (16, tl.dot's minimum) whose grid fits the SMs (all programs resident
    for the grid-wide barrier); on the interpreter one program owns every unit."""
    HP, H2P = max(16, triton.next_power_of_2(H)), max(16, triton.next_power_of_2(2 * H))
    BB = min(64, max(16, triton.next_power_of_2(B)))
    limit = resident_limit(dtype)
    BH = HP if interpreting() else 16
    while not interpreting() and triton.cdiv(H, BH) > _sm_count(device):
        BH *= 2
    resident = max(3 * HP, HP + H2P) * BH <= limit
    BK = 64 if dtype != torch.float32 else 32
    return ChoPlan(triton.cdiv(H, BH), BB, BH, 16 if interpreting() else BK, HP, H2P, resident, 4)


class FusedChoGRUFunction(torch.autograd.Function):
    """hs (T, B, H) of one direction of the reset-before GRU; xp (T, B, 3H) with every bias folded in."""

    @staticmethod
    def forward(ctx, xp: Tensor, w: Tensor, h0: Tensor, valid: Optional[Tensor],
                zone: Optional[Tensor] = None, h_mask: Optional[Tensor] = None):
        xp = xp.contiguous()
        T, B, G = xp.shape
        H = G // 3
        dev, dt = xp.device, xp.dtype
        P = cho_plan(B, H, dev, dt)
        hbuf = torch.empty(T + 1, B, H, device=dev, dtype=dt)
        hbuf[0] = h0
        train = any(ctx.needs_input_grad)
        save = torch.empty(T if train else 1, B, G, device=dev, dtype=torch.float32)  # r, z, n
        rh = torch.empty(T if train else 1, B, H, device=dev, dtype=dt)  # r * h_in
        vc = valid.reshape(T, B).to(torch.int8).contiguous() if valid is not None else None
        wrz_t, wn_t = w[:2 * H].t().contiguous(), w[2 * H:].t().contiguous()  # (H, 2H), (H, H)
        zh = zone.expand(T, B, H).to(torch.float32).contiguous() if zone is not None else None
        hm = h_mask.to(dt).contiguous() if h_mask is not None else None
        sync = torch.zeros(1, device=dev, dtype=torch.int32)
        gru_cho_fwd_kernel[(P.NP,)](xp, wrz_t, wn_t, vc if vc is not None else wn_t, hbuf, save, rh, sync, T, B, H,
                                    HAS_VALID=vc is not None, SAVE=train, NP=P.NP, BB=P.BB, BH=P.BH, BK=P.BK,
                                    HP=P.HP, RESIDENT=P.RESIDENT, PREC=_precision(dt), zh_ptr=zh,
                                    HAS_ZONE=zh is not None, hm_ptr=hm, HAS_HMASK=hm is not None,
                                    num_warps=P.num_warps)
        if train:
            ctx.save_for_backward(w, hbuf, save, rh, vc, zh, hm)
        return hbuf[1:]

    @staticmethod
    @without_autocast
    def backward(ctx, dhs: Tensor):
        w, hbuf, save, rh, vc, zh, hm = ctx.saved_tensors
        T1, B, H = hbuf.shape
        T = T1 - 1
        dev, dt = hbuf.device, hbuf.dtype
        P = cho_plan(B, H, dev, dt)
        f32 = dict(device=dev, dtype=torch.float32)
        drz = torch.empty(T, B, 2 * H, **f32)
        dn = torch.empty(T, B, H, **f32)
        dhrec = torch.zeros(B, H, **f32)
        dhdir = torch.empty(B, H, **f32)
        wrz, wn = w[:2 * H].contiguous(), w[2 * H:].contiguous()
        sync = torch.zeros(1, device=dev, dtype=torch.int32)
        gru_cho_bwd_kernel[(P.NP,)](wrz, wn, vc if vc is not None else wn, hbuf, save, dhs.contiguous(), drz, dn,
                                    dhrec, dhdir, sync, T, B, H, HAS_VALID=vc is not None, NP=P.NP, BB=P.BB,
                                    BH=P.BH, BK=P.BK, HP=P.HP, H2P=P.H2P, RESIDENT=P.RESIDENT,
                                    PREC=_precision(dt), zh_ptr=zh, HAS_ZONE=zh is not None, hm_ptr=hm,
                                    HAS_HMASK=hm is not None, num_warps=P.num_warps)
        need = ctx.needs_input_grad
        d_w = None
        if need[1]:
            h_in = (hbuf[:-1] * hm if hm is not None else hbuf[:-1]).reshape(T * B, H)  # what W_hr, W_hz saw
            d_wrz = drz.reshape(T * B, 2 * H).t().to(dt) @ h_in  # (2H, H)
            d_wn = dn.reshape(T * B, H).t().to(dt) @ rh.reshape(T * B, H)  # (H, H)
            d_w = torch.cat([d_wrz, d_wn]).to(w.dtype)
        dxp = torch.cat([drz, dn], dim=-1).to(dt) if need[0] else None  # (T, B, 3H)
        return dxp, d_w, dhrec.to(dt) if need[2] else None, None, None, None


def fused_cho_gru(cell, xp: Tensor, w: Tensor, h0: Tensor, valid: Optional[Tensor],
                  zone: Optional[Tensor] = None, h_mask: Optional[Tensor] = None) -> Tensor:
    """One direction of a GRUCell with reset_after=False: xp = cell.project_input(x) (T, B, 3H), w the
    effective W_hh (3H, H) (DropConnect applied); bias_hh folds into xp (it is added outside every
    product here). Returns hs (T, B, H)."""
    if cell.bias_hh is not None:
        xp = xp + cell.bias_hh
    return FusedChoGRUFunction.apply(xp, w, h0, valid, zone, h_mask)
