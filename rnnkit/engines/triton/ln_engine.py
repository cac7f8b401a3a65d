"""The layer-normalised LSTM (optionally with peepholes) on the ``triton`` engine: the autograd
Function around ``ln_kernels``' persistent forward and backward kernels, with the same inputs as the
fused LSTM's (``rnn_engine.FusedRNNFunction``) plus LN_hh's and LN_c's gains and biases.

In torch, around the kernels: the input side LN_ih(x W_ih^T) + biases (``cell.project_input``, all
steps at once, differentiated by autograd), and after the backward kernel the sums over all steps:
dW_hh = sum_t dR_t^T h_{t-1}, LN_hh's gain sum_t dxp_t * r_hat_t and bias sum_t dxp_t, LN_c's gain
sum_t du_t * c_hat_t and bias sum_t du_t, the peepholes' sum_t dxp_t * c.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

import triton

from ...cells.base import LAYER_NORM_EPS
from ..base import without_autocast
from .ln_kernels import lnlstm_bwd_kernel, lnlstm_fwd_kernel
from .plan import Plan, _launch_or_stream, _precision, plan


def _npp(P: Plan) -> int:
    """The programs' count padded to a power of two (at least 2) for the partials' loads."""
    return max(2, triton.next_power_of_2(P.NP))


def _scratch(NP: int, B: int, device) -> Tensor:
    return torch.zeros(2, NP, 2, B, device=device, dtype=torch.float32)  # partials of two phases


class FusedLNLSTMFunction(torch.autograd.Function):
    """hs, cs (T, B, H) of one direction of a layer-normalised LSTM."""

    @staticmethod
    def forward(ctx, xp: Tensor, w: Tensor, h0: Tensor, c0: Tensor, ln_hh_w: Tensor, ln_hh_b: Tensor,
                ln_c_w: Tensor, ln_c_b: Tensor, valid: Optional[Tensor], peep: Optional[Tensor] = None,
                zone: Optional[Tuple[Tensor, ...]] = None, h_mask: Optional[Tensor] = None):
        xp = xp.contiguous()
        T, B, G = xp.shape
        H = G // 4
        dev, dt = xp.device, xp.dtype
        P = plan(B, H, 4, dev, dt, backward=False)
        hbuf = torch.empty(T + 1, B, H, device=dev, dtype=dt)
        hbuf[0] = h0
        cbuf = torch.empty(T + 1, B, H, device=dev, dtype=torch.float32)
        cbuf[0] = c0
        train = any(ctx.needs_input_grad)
        f32 = dict(device=dev, dtype=torch.float32)
        save = torch.empty(T, B, G, **f32) if train else hbuf
        rbuf = torch.empty(T if train else 1, B, G, **f32)  # the raw W_hh h of every step (or one slot)
        stats = torch.empty(T, B, 4, **f32) if train else hbuf  # mean, rstd of r and of c_new
        scr = torch.empty(B, 2 * H, **f32)
        vc = valid.reshape(T, B).to(torch.int8).contiguous() if valid is not None else None
        wt = w.t().contiguous()  # (H, 4H)
        lnw, lnb = ln_hh_w.contiguous(), ln_hh_b.contiguous()
        lcw, lcb = ln_c_w.contiguous(), ln_c_b.contiguous()
        pc = peep.contiguous() if peep is not None else None
        hm = h_mask.to(dt).contiguous() if h_mask is not None else None
        zh = zc = None
        if zone is not None:
            zh = zone[0].expand(T, B, H).to(torch.float32).contiguous()
            zc = zone[1].expand(T, B, H).to(torch.float32).contiguous()

        def launch(P: Plan) -> None:
            sync = torch.zeros(1, device=dev, dtype=torch.int32)
            lnlstm_fwd_kernel[(P.NP,)](xp, wt, lnw, lnb, lcw, lcb, pc if pc is not None else lnw,
                                       vc if vc is not None else wt, hbuf, cbuf, save, rbuf, stats,
                                       _scratch(P.NP, B, dev), scr, sync, T, B, H, LAYER_NORM_EPS,
                                       HAS_VALID=vc is not None, SAVE=train, NP=P.NP, NPP=_npp(P), BB=P.BB,
                                       BH=P.BH, BK=P.BK, HP=P.HP, RESIDENT=P.RESIDENT, PREC=_precision(dt),
                                       PEEP=pc is not None, zh_ptr=zh, zc_ptr=zc, HAS_ZONE=zh is not None,
                                       hm_ptr=hm, HAS_HMASK=hm is not None, num_warps=P.num_warps)

        _launch_or_stream(launch, P)
        if train:
            ctx.save_for_backward(w, hbuf, cbuf, save, rbuf, stats, vc, lnw, lcw, lcb, pc, zh, zc, hm)
        return hbuf[1:], cbuf[1:].to(dt)

    @staticmethod
    @without_autocast
    def backward(ctx, dhs: Tensor, dcs: Tensor):
        w, hbuf, cbuf, save, rbuf, stats, vc, lnw, lcw, lcb, peep, zh, zc, hm = ctx.saved_tensors
        T1, B, H = hbuf.shape
        T, G = T1 - 1, 4 * H
        dev, dt = hbuf.device, hbuf.dtype
        P = plan(B, H, 4, dev, dt, backward=True)
        dhs = dhs.contiguous() if dhs is not None else torch.zeros(T, B, H, device=dev, dtype=dt)
        has_dc = dcs is not None
        dcs = dcs.contiguous() if has_dc else dhs
        f32 = dict(device=dev, dtype=torch.float32)
        dg = torch.empty(T, B, G, **f32)  # dL/dr, r = W_hh h_{t-1}
        dxp = torch.empty(T, B, G, **f32)  # dL/dxp: the gate pre-activations
        du = torch.empty(T, B, H, **f32)  # dL/dLN_c(c_new)
        dhrec = torch.zeros(B, H, **f32)
        dhdir = torch.empty(B, H, **f32)
        dcrec = torch.zeros(B, H, **f32)
        wc = w.contiguous()

        def launch(P: Plan) -> None:
            dhrec.zero_(), dcrec.zero_()
            sync = torch.zeros(1, device=dev, dtype=torch.int32)
            lnlstm_bwd_kernel[(P.NP,)](wc, lnw, lcw, lcb, peep if peep is not None else lnw,
                                       vc if vc is not None else wc, cbuf, save, rbuf, stats, dhs, dcs, dg, dxp,
                                       du, dhrec, dhdir, dcrec, _scratch(P.NP, B, dev), sync, T, B, H,
                                       HAS_VALID=vc is not None, HAS_DC=has_dc, NP=P.NP, NPP=_npp(P), BB=P.BB,
                                       BH=P.BH, BK=P.BK, GP=P.GP, RESIDENT=P.RESIDENT, PREC=_precision(dt),
                                       PEEP=peep is not None, zh_ptr=zh, zc_ptr=zc, HAS_ZONE=zh is not None,
                                       hm_ptr=hm, HAS_HMASK=hm is not None, num_warps=P.num_warps)

        _launch_or_stream(launch, P)
        need = ctx.needs_input_grad
        h_prev = (hbuf[:-1] * hm if hm is not None else hbuf[:-1]).reshape(T * B, H)  # what W_hh saw
        d_w = (dg.reshape(T * B, G).t().to(dt) @ h_prev).to(w.dtype) if need[1] else None  # (4H, H)
        r_hat = (rbuf - stats[..., 0:1]) * stats[..., 1:2]  # (T, B, 4H)
        d_lnw = (dxp * r_hat).sum((0, 1)).to(lnw.dtype) if need[4] else None
        d_lnb = dxp.sum((0, 1)).to(lnw.dtype) if need[5] else None
        i, f, g = save[..., :H], save[..., H:2 * H], save[..., 2 * H:3 * H]
        c_prev = cbuf[:-1]
        c_new = f * c_prev + i * g  # (T, B, H) before zoneout / freezing
        c_hat = (c_new - stats[..., 2:3]) * stats[..., 3:4]
        d_lcw = (du * c_hat).sum((0, 1)).to(lcw.dtype) if need[6] else None
        d_lcb = du.sum((0, 1)).to(lcw.dtype) if need[7] else None
        d_peep = None
        if peep is not None and need[9]:  # w_ci, w_cf: c_{t-1}; w_co: c_new
            d_peep = torch.stack([(dxp[..., :H] * c_prev).sum((0, 1)), (dxp[..., H:2 * H] * c_prev).sum((0, 1)),
                                  (dxp[..., 3 * H:] * c_new).sum((0, 1))]).to(peep.dtype)
        return (dxp.to(dt) if need[0] else None, d_w, dhrec.to(dt) if need[2] else None,
                dcrec.to(dt) if need[3] else None, d_lnw, d_lnb, d_lcw, d_lcb, None, d_peep, None, None)


def fused_ln_lstm(cell, xp: Tensor, w: Tensor, h0: Tensor, c0: Tensor, valid: Optional[Tensor],
                  zone: Optional[Tuple[Tensor, ...]] = None, h_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """One direction of ``cell`` (an LSTMCell with layer_norm): xp = cell.project_input(x) (T, B, 4H),
    w the effective W_hh (DropConnect applied). Returns hs, cs (T, B, H)."""
    peep = torch.stack([cell.weight_ci, cell.weight_cf, cell.weight_co]) if cell.config.peephole else None
    return FusedLNLSTMFunction.apply(xp, w, h0, c0, cell.ln_hh_weight, cell.ln_hh_bias, cell.ln_c_weight,
                                     cell.ln_c_bias, valid, peep, zone, h_mask)
