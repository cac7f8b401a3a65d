"""Persistent Triton kernels over time for the GRU with the reset gate applied before the recurrent
matmul (Cho et al. 2014; ``GRUCell`` with ``reset_after=False``):

    r = sigmoid(xr + W_hr h)    z = sigmoid(xz + W_hz h)    n = tanh(xn + W_hn (r * h))
    h_t = n + z * (h_{t-1} - n)                              xp = W_ih x + b_ih + b_hh (in torch, before)

W_hn's product needs r * h of every unit, so each step has two phases separated by grid-wide
barriers; NP programs each own BH units (their r, z and n), their W slices on chip where they fit:

    forward, step t:   1. r, z of the own units; r * h_in -> RH[t]                       | barrier
                       2. n = tanh(xn + RH[t] @ W_hn^T[:, own]); h_t; zoneout, lengths     | barrier
    backward, step t:  A. dn, dz of the own units -> DN[t], DRZ[t][z]                    | barrier
       (reverse)       B. d(r h_in) = DN[t] @ W_hn[:, own]; dr -> DRZ[t][r]              | barrier
                       C. dh_{t-1}[:, own] = dh_direct + (DRZ[t] @ W_hrz[:, own]) * mask

h_in is h * the recurrent-dropout mask where there is one (h itself otherwise); the z * h path
always sees h. The weight gradients are sums over all steps, formed in torch after the backward
kernel: dW_hrz = DRZ^T h_in, dW_hn = DN^T RH; dL/dxp = [DRZ, DN]. With NP = 1 (the CPU
interpreter) the barriers are no-ops.
"""
from __future__ import annotations

import triton
import triton.language as tl

from .rnn_kernels import _grid_sync, _recurrent_fwd, _sigmoid, _slice, _tanh


@triton.jit
def _split2(acc, BB: tl.constexpr, BH: tl.constexpr):
    """(BB, 2*BH) with column q*BH + j -> two (BB, BH) blocks q = 0, 1."""
    return tl.split(tl.permute(tl.reshape(acc, (BB, 2, BH)), (0, 2, 1)))


@triton.jit
def _keep(valid_ptr, zh_ptr, t, B, H, rows, rmask, own, m2, HAS_VALID: tl.constexpr, HAS_ZONE: tl.constexpr):
    """kh: h' = kh * h_old + (1 - kh) * h_new; 1 past a sequence's end, else zoneout's keep (or 0)."""
    if HAS_VALID:
        v = tl.load(valid_ptr + t * B + rows, mask=rmask, other=0)[:, None] != 0
        kh = tl.where(v, 0.0, 1.0)
    else:
        kh = tl.zeros([1, 1], dtype=tl.float32)
    if HAS_ZONE:
        kh = kh + (1.0 - kh) * tl.load(zh_ptr + t * B * H + own, mask=m2, other=1.0)
    return kh


@triton.jit
def gru_cho_fwd_kernel(xp_ptr, wrz_t_ptr, wn_t_ptr, valid_ptr, h_ptr, save_ptr, rh_ptr, sync_ptr, T, B, H,
                       HAS_VALID: tl.constexpr, SAVE: tl.constexpr, NP: tl.constexpr, BB: tl.constexpr,
                       BH: tl.constexpr, BK: tl.constexpr, HP: tl.constexpr, RESIDENT: tl.constexpr,
                       PREC: tl.constexpr, zh_ptr, HAS_ZONE: tl.constexpr, hm_ptr, HAS_HMASK: tl.constexpr):
    """xp (T, B, 3H) with every bias folded in; wrz_t (H, 2H) = W_h[r, z]^T; wn_t (H, H) = W_hn^T;
    h (T + 1, B, H) with h[0] the initial state. save: (T, B, 3H) r, z, n with SAVE, else one (B, 3H)
    slot; rh: (T, B, H) r * h_in with SAVE, else one (B, H) slot; zh (T, B, H) zoneout keep; hm (B, H)."""
    pid = tl.program_id(0)
    j = pid * BH + tl.arange(0, BH)
    jmask = j < H
    cq = tl.arange(0, 2 * BH)
    unit = pid * BH + cq % BH
    ccol = (cq // BH) * H + unit
    cmask = unit < H
    w_rz = _slice(wrz_t_ptr, H, 2 * H, ccol, cmask, HP, RESIDENT)  # (HP, 2BH)
    w_n = _slice(wn_t_ptr, H, H, j, jmask, HP, RESIDENT)  # (HP, BH)
    rr = tl.arange(0, BB)
    for t in range(0, T):
        h_prev = h_ptr + t * B * H
        sv = save_ptr  # one slot reused, or with SAVE step t's
        rh = rh_ptr
        if SAVE:
            sv = save_ptr + t * B * 3 * H
            rh = rh_ptr + t * B * H
        for b0 in range(0, B, BB):  # phase 1: r, z and r * h_in of the own units
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]
            acc = _recurrent_fwd(h_prev, rows, rmask, wrz_t_ptr, w_rz, ccol, cmask, H, 2 * H,
                                 BB, 2 * BH, BK, HP, RESIDENT, PREC, hm_ptr, HAS_HMASK)
            ar, az = _split2(acc, BB, BH)
            xrow = xp_ptr + t * B * 3 * H + rows[:, None] * 3 * H + j[None, :]
            r = _sigmoid(ar + tl.load(xrow, mask=m2, other=0.0).to(tl.float32))
            z = _sigmoid(az + tl.load(xrow + H, mask=m2, other=0.0).to(tl.float32))
            h_in = tl.load(h_prev + own, mask=m2, other=0.0, cache_modifier=".cg").to(tl.float32)
            if HAS_HMASK:
                h_in = h_in * tl.load(hm_ptr + own, mask=m2, other=0.0).to(tl.float32)
            tl.store(rh + own, (r * h_in).to(rh_ptr.dtype.element_ty), mask=m2)
            srow = sv + rows[:, None] * 3 * H + j[None, :]
            tl.store(srow, r, mask=m2)
            tl.store(srow + H, z, mask=m2)
        _grid_sync(sync_ptr, (2 * t + 1) * NP, NP)
        for b0 in range(0, B, BB):  # phase 2: n and h_t of the own units
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]
            hn = _recurrent_fwd(rh, rows, rmask, wn_t_ptr, w_n, j, jmask, H, H,
                                BB, BH, BK, HP, RESIDENT, PREC, hm_ptr, False)
            xn = tl.load(xp_ptr + t * B * 3 * H + rows[:, None] * 3 * H + 2 * H + j[None, :], mask=m2,
                         other=0.0).to(tl.float32)
            n = _tanh(xn + hn)
            srow = sv + rows[:, None] * 3 * H + j[None, :]
            tl.store(srow + 2 * H, n, mask=m2)
            z = tl.load(srow + H, mask=m2, other=0.0)
            h_old = tl.load(h_prev + own, mask=m2, other=0.0, cache_modifier=".cg").to(tl.float32)
            h_new = n + z * (h_old - n)
            if HAS_VALID or HAS_ZONE:
                kh = _keep(valid_ptr, zh_ptr, t, B, H, rows, rmask, own, m2, HAS_VALID, HAS_ZONE)
                h_new = kh * h_old + (1.0 - kh) * h_new
            tl.store(h_ptr + (t + 1) * B * H + own, h_new.to(h_ptr.dtype.element_ty), mask=m2)
        _grid_sync(sync_ptr, (2 * t + 2) * NP, NP)


@triton.jit
def gru_cho_bwd_kernel(wrz_ptr, wn_ptr, valid_ptr, h_ptr, save_ptr, dh_ptr, drz_ptr, dn_ptr, dhrec_ptr,
                       dhdir_ptr, sync_ptr, T, B, H,
                       HAS_VALID: tl.constexpr, NP: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr,
                       BK: tl.constexpr, HP: tl.constexpr, H2P: tl.constexpr, RESIDENT: tl.constexpr,
                       PREC: tl.constexpr, zh_ptr, HAS_ZONE: tl.constexpr, hm_ptr, HAS_HMASK: tl.constexpr):
    """wrz (2H, H) = W_h[r, z]; wn (H, H) = W_hn; dh (T, B, H) upstream gradients of h_1..h_T. Writes
    drz (T, B, 2H) = dL/d[xr, xz], dn (T, B, H) = dL/dxn; dhrec (B, H) ends as dL/dh_0; dhdir: scratch."""
    pid = tl.program_id(0)
    j = pid * BH + tl.arange(0, BH)
    jmask = j < H
    w_n = _slice(wn_ptr, H, H, j, jmask, HP, RESIDENT)  # W_hn[:, own] (HP, BH)
    w_rz = _slice(wrz_ptr, 2 * H, H, j, jmask, H2P, RESIDENT)  # W_hrz[:, own] (H2P, BH)
    rr = tl.arange(0, BB)
    for s in range(0, T):
        t = T - 1 - s
        for b0 in range(0, B, BB):  # A: dn and dz of the own units
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]
            dh = tl.load(dh_ptr + t * B * H + own, mask=m2, other=0.0).to(tl.float32)
            dh += tl.load(dhrec_ptr + own, mask=m2, other=0.0)
            kh = _keep(valid_ptr, zh_ptr, t, B, H, rows, rmask, own, m2, HAS_VALID, HAS_ZONE)
            srow = save_ptr + t * B * 3 * H + rows[:, None] * 3 * H + j[None, :]
            z = tl.load(srow + H, mask=m2, other=0.0)
            n = tl.load(srow + 2 * H, mask=m2, other=0.0)
            h_old = tl.load(h_ptr + t * B * H + own, mask=m2, other=0.0).to(tl.float32)
            dhv = dh * (1.0 - kh)
            tl.store(dn_ptr + t * B * H + own, dhv * (1.0 - z) * (1.0 - n * n), mask=m2)
            tl.store(drz_ptr + t * B * 2 * H + rows[:, None] * 2 * H + H + j[None, :],
                     dhv * (h_old - n) * z * (1.0 - z), mask=m2)
            tl.store(dhdir_ptr + own, dhv * z + dh * kh, mask=m2)
        _grid_sync(sync_ptr, (2 * s + 1) * NP, NP)
        for b0 in range(0, B, BB):  # B: d(r * h_in) of the own units -> dr, and its h_in path
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]
            drh = _recurrent_fwd(dn_ptr + t * B * H, rows, rmask, wn_ptr, w_n, j, jmask, H, H,
                                 BB, BH, BK, HP, RESIDENT, PREC, hm_ptr, False)
            r = tl.load(save_ptr + t * B * 3 * H + rows[:, None] * 3 * H + j[None, :], mask=m2, other=0.0)
            h_in = tl.load(h_ptr + t * B * H + own, mask=m2, other=0.0).to(tl.float32)
            dh_in = drh * r
            if HAS_HMASK:
                hm = tl.load(hm_ptr + own, mask=m2, other=0.0).to(tl.float32)
                h_in = h_in * hm
                dh_in = dh_in * hm
            tl.store(drz_ptr + t * B * 2 * H + rows[:, None] * 2 * H + j[None, :], drh * h_in * r * (1.0 - r),
                     mask=m2)
            tl.store(dhdir_ptr + own, tl.load(dhdir_ptr + own, mask=m2, other=0.0) + dh_in, mask=m2)
        _grid_sync(sync_ptr, (2 * s + 2) * NP, NP)
        for b0 in range(0, B, BB):  # C: dh_{t-1} of the own units
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]
            acc = _recurrent_fwd(drz_ptr + t * B * 2 * H, rows, rmask, wrz_ptr, w_rz, j, jmask, 2 * H, H,
                                 BB, BH, BK, H2P, RESIDENT, PREC, hm_ptr, False)
            if HAS_HMASK:  # W_hr, W_hz saw h * mask
                acc = acc * tl.load(hm_ptr + own, mask=m2, other=0.0)
            tl.store(dhrec_ptr + own, acc + tl.load(dhdir_ptr + own, mask=m2, other=0.0), mask=m2)
        tl.debug_barrier()  # dhrec and dhdir are read back by this program only
