"""The explicit-BPTT ``autograd.Function`` of the LSTM family (used by ``rnnkit.engines.bptt.lstm``).

Forward runs the time loop of ``rnnkit.cells.lstm.LSTMCell.recur`` (gate order i, f, g, o as
torch.nn.LSTM) plus the engine's zoneout and end-of-sequence freezing, writing every step into
preallocated (T, ...) buffers with in-place ops. Backward is backpropagation through time as in
Graves & Schmidhuber 2005 (Neural Networks 18(5), "Framewise phoneme classification with
bidirectional LSTM", appendix) and Greff et al. 2017 ("LSTM: A Search Space Odyssey", IEEE TNNLS,
section II-B, with peepholes): walking t = T-1 .. 0 it carries dL/dh_t and dL/dc_t to step t-1;
the recurrent weight, projection, peephole and LayerNorm gradients are each one matmul or one
reduction over all steps after the loop. The LayerNorm backward (Ba et al. 2016) is written out:

    y = x_hat * w + b,  x_hat = (x - mean) * rstd
    dx = rstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)),  dx_hat = dy * w

Zoneout (Krueger et al. 2017) and the freeze past each sequence's end fold into one lerp per state
component: state_t = lerp(new_t, state_{t-1}, keep_t), keep_t = 1 - valid_t * (1 - zoneout_t)
(keep 1 past the end gives exactly the old state: torch.lerp computes end - (end - start) * 0).

Speed (CPU): every step is a handful of in-place ops on views of the (T, ...) buffers; from
SIGMOID_TANH_MIN_UNITS units per step on, tanh(x) = 2 sigmoid(2x) - 1 (torch's CPU tanh kernel is
4-6x slower than its sigmoid); the backward's per-step factors are computed per cache-sized chunk of
steps (``_lstm_factors``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..base import without_autocast
from ...cells.base import LAYER_NORM_EPS
from ._lstm_factors import ChunkFactors

#: the cells' LayerNorm epsilon
LN_EPS: float = LAYER_NORM_EPS

#: from this many units per step (B * H) on, tanh(x) is computed as 2 * sigmoid(2x) - 1: torch's CPU
#: tanh kernel measured 4-6x slower than its sigmoid at (32, 128) and (64, 512) (bench/cpu_bptt_lstm.py)
SIGMOID_TANH_MIN_UNITS = 2048


@dataclass
class LSTMMasks:
    """Non-differentiable masks of one sequence (already scaled; none of them requires grad).

    h_mask: (B, P) recurrent dropout on h_{t-1} entering the recurrent matmul.
    keep_h, keep_c: (T, B, P) / (T, B, H) (or broadcastable, e.g. (T, 1, 1)) weight of the old state:
        1 - valid * (1 - zoneout). None: the new state is always taken.
    valid: (T, B, 1) float, 1 where step t lies inside sequence b; hidden and per-step c are zeroed
        past the end. None: every sequence fills T.
    """

    h_mask: Optional[Tensor] = None
    keep_h: Optional[Tensor] = None
    keep_c: Optional[Tensor] = None
    valid: Optional[Tensor] = None


def _ln_stats(stats: List[tuple], dtype) -> tuple:
    """Stack per-step (mean, rstd) of native_layer_norm into two (T, B, 1) tensors."""
    mean = torch.stack([m for m, _ in stats]).to(dtype)  # (T, B, 1)
    rstd = torch.stack([r for _, r in stats]).to(dtype)  # (T, B, 1)
    return mean, rstd


def _ln_backward_step(a: Tensor, xhat: Tensor, n: int, out: Optional[Tensor] = None) -> Tensor:
    """dx = a - mean(a) - x_hat * mean(a * x_hat) for a = dy * w * rstd and x_hat, both (B, N)."""
    s1 = a.sum(1, keepdim=True)  # (B, 1)
    s2 = torch.mul(a, xhat).sum(1, keepdim=True)  # (B, 1)
    return torch.addcmul(a, xhat, s2, value=-1.0 / n, out=out).sub_(s1, alpha=1.0 / n)  # (B, N)


def _prev(first: Tensor, seq: Tensor) -> Tensor:
    """(T, B, S) sequence of the values at t-1: first (B, S) then seq[0..T-2]."""
    out = torch.empty_like(seq)  # (T, B, S)
    out[0] = first
    out[1:] = seq[:-1]
    return out


class _StepWeights:
    """The weights one forward loop uses, prepared once per call.

    twice: tanh(x) is computed as 2 * sigmoid(2x) - 1; the factor 2 of the g gate and of the cell's
    tanh is then folded into W_hh's g rows (after the LayerNorm when there is one) and LN_c's affine.
    """

    def __init__(self, xp, w_hh, w_hr, peep, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b):
        B, G4 = xp.shape[1], xp.shape[2]
        H = G4 // 4
        self.twice = B * H >= SIGMOID_TANH_MIN_UNITS and xp.device.type == "cpu"
        self.neg_one = xp.new_full((), -1.0)  # 0-dim: tanh = neg_one + 2 * sigmoid(2x)
        self.w_hh_t = w_hh.t()  # (P, 4H)
        self.ln_hh = (ln_hh_w, ln_hh_b) if ln_hh_w is not None else None  # (4H,) each
        self.ln_c = (ln_c_w, ln_c_b) if ln_c_w is not None else None  # (H,) each
        if self.twice:
            scale = xp.new_ones(G4)  # (4H,)
            scale[2 * H:3 * H] = 2
            if self.ln_hh is not None:  # its statistics must see the unscaled W_hh h
                self.ln_hh = (ln_hh_w * scale, ln_hh_b * scale)
            else:
                self.w_hh_t = self.w_hh_t * scale  # (P, 4H)
            if self.ln_c is not None:
                self.ln_c = (ln_c_w * 2, ln_c_b * 2)
        self.w_hr_t = w_hr.t() if w_hr is not None else None  # (H, P)
        self.w_cif = peep[:2] if peep is not None else None  # (2, H) peepholes into i, f
        self.w_co = peep[2] if peep is not None else None  # (H,) peephole into o


def _forward_loop(wts: _StepWeights, m: LSTMMasks, h0, c0, G, Cn, TC, C, Hs, HF, R):
    """Run the T steps into the buffers (shapes as in ``LSTMBPTTFunction.forward``); G holds xp.

    Returns the per-step LayerNorm statistics [(mean (B, 1), rstd (B, 1))] of W_hh h and of c_new.
    """
    T, B, G4 = G.shape
    H, P = G4 // 4, Hs.shape[-1]
    twice, neg_one, w_hh_t, w_cif, w_co = wts.twice, wts.neg_one, wts.w_hh_t, wts.w_cif, wts.w_co
    h_scratch = G.new_empty(B, P) if m.keep_h is not None else None  # (B, P) h_new before zoneout
    hm_scratch = G.new_empty(B, P) if m.h_mask is not None else None  # (B, P) h_{t-1} * h_mask
    gs, Cns, TCs, Hss = G.unbind(0), Cn.unbind(0), TC.unbind(0), Hs.unbind(0)
    g_if = G[:, :, :2 * H].unflatten(-1, (2, H)).unbind(0)  # T x (B, 2, H)
    g_ifg = G[:, :, :3 * H].unbind(0)  # T x (B, 3H)
    g_i, g_f = G[:, :, :H].unbind(0), G[:, :, H:2 * H].unbind(0)  # T x (B, H)
    g_g, g_o = G[:, :, 2 * H:3 * H].unbind(0), G[:, :, 3 * H:].unbind(0)  # T x (B, H)
    Cs = C.unbind(0) if m.keep_c is not None else Cns
    HFs = HF.unbind(0) if HF is not None else None
    Rs = R.unbind(0) if R is not None else None
    keep_h = m.keep_h.unbind(0) if m.keep_h is not None else None
    keep_c = m.keep_c.unbind(0) if m.keep_c is not None else None
    stats_r: List[tuple] = []
    stats_c: List[tuple] = []

    h, c = h0, c0
    for t in range(T):
        hin = torch.mul(h, m.h_mask, out=hm_scratch) if hm_scratch is not None else h  # (B, P)
        g = gs[t]  # (B, 4H)
        if Rs is not None:  # gates = xp_t + LN(W_hh h)
            r = torch.mm(hin, w_hh_t, out=Rs[t])  # (B, 4H)
            rn, mu, rs = torch.native_layer_norm(r, (G4,), wts.ln_hh[0], wts.ln_hh[1], LN_EPS)
            g.add_(rn)
            stats_r.append((mu, rs))
        else:
            g.addmm_(hin, w_hh_t)
        if w_cif is not None:
            g_if[t].addcmul_(w_cif, c.unsqueeze(1))
        if twice:  # without peepholes o is ready too: one sigmoid over all four gates
            torch.sigmoid_(g if w_co is None else g_ifg[t])
            torch.add(neg_one, g_g[t], alpha=2, out=g_g[t])
        else:
            torch.sigmoid_(g_if[t])
            torch.tanh_(g_g[t])
        cn = torch.mul(g_f[t], c, out=Cns[t])  # (B, H)
        cn.addcmul_(g_i[t], g_g[t])
        if w_co is not None:
            g_o[t].addcmul_(w_co, cn)
        if w_co is not None or not twice:
            torch.sigmoid_(g_o[t])
        tc = TCs[t]  # (B, H)
        if wts.ln_c is not None:
            co, mu, rs = torch.native_layer_norm(cn, (H,), wts.ln_c[0], wts.ln_c[1], LN_EPS)
            stats_c.append((mu, rs))
            if twice:
                torch.add(neg_one, torch.sigmoid(co, out=tc), alpha=2, out=tc)
            else:
                torch.tanh(co, out=tc)
        elif twice:
            torch.add(neg_one, torch.sigmoid_(torch.mul(cn, 2, out=tc)), alpha=2, out=tc)
        else:
            torch.tanh(cn, out=tc)
        h_dst = Hss[t] if h_scratch is None else h_scratch
        if HFs is not None:
            hn = torch.mm(torch.mul(g_o[t], tc, out=HFs[t]), wts.w_hr_t, out=h_dst)  # (B, P)
        else:
            hn = torch.mul(g_o[t], tc, out=h_dst)  # (B, P)
        h = torch.lerp(hn, h, keep_h[t], out=Hss[t]) if keep_h is not None else hn
        c = torch.lerp(cn, c, keep_c[t], out=Cs[t]) if keep_c is not None else cn
    return stats_r, stats_c


class LSTMBPTTFunction(torch.autograd.Function):
    """apply(xp, w_hh, h0, c0, w_hr, peep, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, masks).

    xp (T, B, 4H): input projections with both biases (``cell.project_input``); w_hh (4H, P): the
    effective recurrent weight (DropConnect applied); h0 (B, P), c0 (B, H); w_hr (P, H) or None;
    peep (3, H) rows w_ci, w_cf, w_co or None; ln_hh_* (4H,) and ln_c_* (H,) or None; masks: LSTMMasks.
    Returns hidden (T, B, P) (zero past lengths), h_T (B, P), c_T (B, H), c_seq (T, B, H) (per-step
    c, zero past lengths): the final state is the state at each sequence's own end.
    """

    @staticmethod
    def forward(ctx, xp, w_hh, h0, c0, w_hr, peep, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, masks: LSTMMasks):
        T, B, G4 = xp.shape
        H, P = G4 // 4, w_hh.shape[1]
        m = masks
        wts = _StepWeights(xp, w_hh, w_hr, peep, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b)
        new = xp.new_empty
        G = new(T, B, G4)  # (T, B, 4H) pre-activations, then activations i, f, g, o in place
        Cn = new(T, B, H)  # (T, B, H) c_new of each step (before zoneout / freezing)
        TC = new(T, B, H)  # (T, B, H) tanh(c_new) or tanh(LN(c_new))
        C = Cn if m.keep_c is None else new(T, B, H)  # (T, B, H) c state
        Hs = new(T, B, P)  # (T, B, P) h state
        HF = new(T, B, H) if w_hr is not None else None  # (T, B, H) o * tanh(.) before the projection
        R = new(T, B, G4) if ln_hh_w is not None else None  # (T, B, 4H) W_hh h_{t-1} before LayerNorm
        G.copy_(xp)  # one pass; then each step adds W_hh h_{t-1} in place
        if wts.twice:
            G[:, :, 2 * H:3 * H].mul_(2)
        stats_r, stats_c = _forward_loop(wts, m, h0, c0, G, Cn, TC, C, Hs, HF, R)

        h_T, c_T = Hs[T - 1].clone(), C[T - 1].clone()  # (B, P), (B, H)
        if m.valid is not None:
            hidden, c_seq = Hs * m.valid, C * m.valid  # (T, B, P), (T, B, H)
        else:
            hidden, c_seq = Hs, C
        ctx.set_materialize_grads(False)
        ctx.masks = m
        ctx.stats_r, ctx.stats_c = stats_r, stats_c
        ctx.save_for_backward(w_hh, h0, c0, w_hr, peep, ln_hh_w, ln_c_w, G, Cn, TC, C, Hs, HF, R)
        return hidden, h_T, c_T, c_seq

    @staticmethod
    @without_autocast
    @once_differentiable
    def backward(ctx, d_hidden, d_hT, d_cT, d_cseq):
        w_hh, h0, c0, w_hr, peep, ln_hh_w, ln_c_w, G, Cn, TC, C, Hs, HF, R = ctx.saved_tensors
        m: LSTMMasks = ctx.masks
        T, B, G4 = G.shape
        H, P = G4 // 4, w_hh.shape[1]
        ln_c = (ln_c_w,) + _ln_stats(ctx.stats_c, G.dtype) if ln_c_w is not None else None
        ln_hh = (R,) + _ln_stats(ctx.stats_r, G.dtype) if R is not None else None
        fac = ChunkFactors(G, TC, C, Cn, c0, peep, ln_c, ln_hh)

        dY = d_hidden * m.valid if (d_hidden is not None and m.valid is not None) else d_hidden  # (T, B, P)
        dCs = d_cseq * m.valid if (d_cseq is not None and m.valid is not None) else d_cseq  # (T, B, H)
        dY = dY.contiguous() if dY is not None else None  # an expanded grad would be copied at every step
        dh = d_hT.clone() if d_hT is not None else G.new_zeros(B, P)  # (B, P) dL/dh state at t
        dc = d_cT.clone() if d_cT is not None else G.new_zeros(B, H)  # (B, H) dL/dc state at t
        if dY is not None:
            dh += dY[T - 1]
        if dCs is not None:
            dc += dCs[T - 1]

        dG = torch.empty_like(G)  # (T, B, 4H) dL/d(gate pre-activations) = dL/dxp
        dGs = dG.unbind(0)
        dG_ifg = dG[:, :, :3 * H].unflatten(-1, (3, H)).unbind(0)  # T x (B, 3, H)
        dG_i, dG_f = dG[:, :, :H].unbind(0), dG[:, :, H:2 * H].unbind(0)  # T x (B, H)
        dG_o = dG[:, :, 3 * H:].unbind(0)  # T x (B, H)
        DR = torch.empty_like(R) if R is not None else None  # (T, B, 4H) dL/d(W_hh h_{t-1})
        DRs = DR.unbind(0) if DR is not None else None
        keep_h = m.keep_h.unbind(0) if m.keep_h is not None else None
        keep_c = m.keep_c.unbind(0) if m.keep_c is not None else None
        new_h = (1 - m.keep_h).unbind(0) if m.keep_h is not None else None
        new_c = (1 - m.keep_c).unbind(0) if m.keep_c is not None else None
        w_ci, w_cf, w_co = (peep[0], peep[1], peep[2]) if peep is not None else (None, None, None)
        dhn_list: List[Tensor] = []  # dL/dh_new (B, P) per step, reversed (projection)

        lo = hi = T  # the chunk [lo, hi) whose factors are in fac
        for t in range(T - 1, -1, -1):
            if t < lo:
                if hi > lo:
                    fac.reduce(lo, hi, dG)
                hi, lo = t + 1, max(0, t + 1 - fac.K)
                F = fac.fill(lo, hi)
                Q, TCDo, PD, f_s = F["Q"], F["TCDo"], F["PD"], F["f"]
            k = t - lo
            if keep_h is not None:  # state = lerp(new, old, keep)
                dh_state = dh  # (B, P) dL/dh state at t; keep * dh_state goes to h_{t-1}
                dh = dh * new_h[t]  # (B, P) dL/dh_new
            if keep_c is not None:
                dc_state = dc  # (B, H)
                dc = dc * new_c[t]  # (B, H) dL/dc_new (from later steps)
            if w_hr is not None:
                dhn_list.append(dh)
                dhf = torch.mm(dh, w_hr)  # (B, H)
            else:
                dhf = dh
            dgo = torch.mul(dhf, TCDo[k], out=dG_o[t])  # (B, H)
            if ln_c is not None:
                F["dhf"][k].copy_(dhf)
                dc += _ln_backward_step(dhf * Q[k], F["chat"][k], H)  # (B, H)
            else:
                dc.addcmul_(dhf, Q[k])  # (B, H)
            if w_co is not None:
                dc.addcmul_(dgo, w_co)
            torch.mul(dc.unsqueeze(1), PD[k], out=dG_ifg[t])  # (B, 3, H) i, f, g
            dc.mul_(f_s[k])  # (B, H) dL/dc_{t-1} through the forget gate
            if w_ci is not None:
                dc.addcmul_(dG_i[t], w_ci).addcmul_(dG_f[t], w_cf)
            if keep_c is not None:
                dc.addcmul_(dc_state, keep_c[t])
            if dCs is not None and t > 0:
                dc += dCs[t - 1]
            if R is not None:
                a = torch.mul(dGs[t], ln_hh_w).mul_(F["rs_r"][k])  # (B, 4H)
                dgw = _ln_backward_step(a, F["rhat"][k], G4, out=DRs[t])  # (B, 4H)
            else:
                dgw = dGs[t]  # (B, 4H)
            base = dY[t - 1] if (dY is not None and t > 0) else None  # (B, P)
            if keep_h is not None:
                base = dh_state * keep_h[t] if base is None else torch.addcmul(base, dh_state, keep_h[t])
            if m.h_mask is not None:
                dh = torch.mm(dgw, w_hh).mul_(m.h_mask)  # (B, P)
                if base is not None:
                    dh += base
            else:
                dh = torch.mm(dgw, w_hh) if base is None else torch.addmm(base, dgw, w_hh)  # (B, P)
        fac.reduce(lo, hi, dG)

        need = ctx.needs_input_grad
        d_w_hh = _recurrent_weight_grad(DR if R is not None else dG, h0, Hs, m.h_mask) if need[1] else None
        d_w_hr = None
        if w_hr is not None and need[4]:
            dhn = torch.stack(dhn_list[::-1])  # (T, B, P)
            d_w_hr = torch.mm(dhn.reshape(T * B, P).t(), HF.reshape(T * B, H))  # (P, H)
        d_peep = fac.d_peep if peep is not None and need[5] else None  # (3, H)
        d_ln_hh_w = fac.d_ln_hh_w if R is not None and need[6] else None  # (4H,)
        d_ln_hh_b = fac.d_ln_hh_b if R is not None and need[7] else None  # (4H,)
        d_ln_c_w = fac.d_ln_c_w if ln_c is not None and need[8] else None  # (H,)
        d_ln_c_b = fac.d_ln_c_b if ln_c is not None and need[9] else None  # (H,)
        d_h0 = dh if need[2] else None  # (B, P)
        d_c0 = dc if need[3] else None  # (B, H)
        return (dG, d_w_hh, d_h0, d_c0, d_w_hr, d_peep, d_ln_hh_w, d_ln_hh_b, d_ln_c_w, d_ln_c_b, None)


def _recurrent_weight_grad(dgw: Tensor, h0: Tensor, Hs: Tensor, h_mask: Optional[Tensor]) -> Tensor:
    """dL/dW_hh = sum_t dgw_t^T (h_{t-1} * h_mask): one matmul over all steps. dgw (T, B, 4H), Hs (T, B, P)."""
    T, B, G4 = dgw.shape
    P = Hs.shape[-1]
    if h_mask is not None:
        h_prev = _prev(h0, Hs).mul_(h_mask)  # (T, B, P)
        return torch.mm(dgw.reshape(T * B, G4).t(), h_prev.reshape(T * B, P))  # (4H, P)
    d_w = torch.mm(dgw[1:].reshape((T - 1) * B, G4).t(), Hs[:-1].reshape((T - 1) * B, P))  # (4H, P)
    return d_w.addmm_(dgw[0].t(), h0)
