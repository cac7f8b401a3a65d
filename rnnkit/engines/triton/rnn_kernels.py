"""Persistent Triton kernels over time for LSTM, GRU (reset gate after the matmul, as cuDNN) and Elman.

One launch runs the whole sequence. NP programs each own BH hidden units (all their gates) and all
batch rows; at every step each program reads the full h_{t-1} (B, H) from the h buffer (L2, never
L1: ``.cg``), multiplies it with its slice of W_hh (read-only, so it stays in L1/L2 across steps),
applies the cell's pointwise maths for its units and writes its slice of h_t. A grid-wide barrier
(an atomic counter, release/acquire) separates the steps, so NP must not exceed the number of
SMs (all programs resident). With NP = 1 (the CPU interpreter) the barrier is a no-op.

    forward, step t (program p, units j = p*BH .. p*BH+BH-1):
        pre[:, q, j] = xp[t, :, q*H + j] + h_{t-1} @ W^T[:, q*H + j]      (q over the NG gates)
        cell maths -> h_t[:, j] (and c_t[:, j] for LSTM); saved gate activations for backward
        grid barrier
    backward, step t (reverse):
        phase A: dgates[t, :, q*H + j] from dh_t[:, j] = dout + dh_rec, saved activations
        grid barrier
        phase B: dh_rec[:, j] = dgates[t] @ W[:, j] (+ the direct paths z*dh for GRU, frozen steps)
        (dh_rec, dc_rec are read back by the same program only: no second barrier)

CELL: 0 LSTM (gates i, f, g, o; xp holds both biases), 1 GRU reset-after (gates r, z, n; xp holds
b_ih + b_hr/b_hz; b_hn stays inside r * (W_hn h + b_hn)), 2 Elman (ACT 0 tanh, 1 relu, 2 sigmoid,
3 identity).
Saved per step (SAVE, (T, B, NS*H) float32): LSTM i, f, g, o; GRU r, z, n, W_hn h + b_hn; Elman none.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _tanh(x):
    # tanh through exp of a non-positive argument (no overflow)
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x >= 0, t, -t)


@triton.jit
def _act(x, ACT: tl.constexpr):
    if ACT == 0:
        return _tanh(x)
    elif ACT == 1:
        return tl.maximum(x, 0.0)
    elif ACT == 2:
        return _sigmoid(x)
    else:
        return x


@triton.jit
def _act_grad_from_out(y, ACT: tl.constexpr):
    """d act / d pre, written with the activation's output y."""
    if ACT == 0:
        return 1.0 - y * y
    elif ACT == 1:
        return tl.where(y > 0, 1.0, 0.0)
    elif ACT == 2:
        return y * (1.0 - y)
    else:
        return y * 0.0 + 1.0


@triton.jit
def _grid_sync(sync_ptr, target, NP: tl.constexpr):
    """All NP programs arrive before any leaves; target = NP * (number of syncs so far)."""
    tl.debug_barrier()
    if NP > 1:
        tl.atomic_add(sync_ptr, 1, sem="release")
        cnt = tl.atomic_add(sync_ptr, 0, sem="acquire")
        while cnt < target:
            cnt = tl.atomic_add(sync_ptr, 0, sem="acquire")
        tl.debug_barrier()


@triton.jit
def _unit_row(ptr, j, jmask):
    """A per-unit parameter vector's entries for units j, as a (1, BH) float32 row."""
    return tl.load(ptr + j, mask=jmask, other=0.0).to(tl.float32)[None, :]


@triton.jit
def _peepholes(peep_ptr, j, jmask, H):
    """The LSTM peephole weights (3, H) w_ci, w_cf, w_co for units j, each a (1, BH) row."""
    return _unit_row(peep_ptr, j, jmask), _unit_row(peep_ptr + H, j, jmask), _unit_row(peep_ptr + 2 * H, j, jmask)


@triton.jit
def _slice(w_ptr, K, N, col, cmask, KP: tl.constexpr, RESIDENT: tl.constexpr):
    """Columns col of a row-major (K, N) matrix, (KP, len(col)), kept on chip; 0.0 when streamed."""
    if RESIDENT:
        kr = tl.arange(0, KP)
        return tl.load(w_ptr + kr[:, None] * N + col[None, :], mask=(kr < K)[:, None] & cmask[None, :], other=0.0)
    else:
        return 0.0


@triton.jit
def _split4(acc, BB: tl.constexpr, BH: tl.constexpr):
    """(BB, 4*BH) with column q*BH + j -> four (BB, BH) blocks q = 0..3."""
    y = tl.permute(tl.reshape(acc, (BB, 2, 2, BH)), (0, 3, 1, 2))
    even, odd = tl.split(y)
    q0, q2 = tl.split(even)
    q1, q3 = tl.split(odd)
    return q0, q1, q2, q3


@triton.jit
def _recurrent_fwd(h_base, rows, rmask, wt_ptr, w_res, ccol, cmask, H, G,
                   BB: tl.constexpr, NC: tl.constexpr, BK: tl.constexpr, HP: tl.constexpr,
                   RESIDENT: tl.constexpr, PREC: tl.constexpr, hm_ptr, HAS_HMASK: tl.constexpr):
    """h_{t-1} (BB, H) @ W^T[:, ccol] -> (BB, NC) float32; W^T (H, G) resident or read per K tile.
    HAS_HMASK: h is multiplied by the recurrent-dropout mask (B, H) before the matmul. The left factor
    is cast to W's dtype (a no-op where h is stored in it; the Jordan backward's float32 gradients)."""
    if RESIDENT:
        kk = tl.arange(0, HP)
        m = rmask[:, None] & (kk < H)[None, :]
        hk = tl.load(h_base + rows[:, None] * H + kk[None, :], mask=m, other=0.0, cache_modifier=".cg")
        if HAS_HMASK:
            hk = (hk * tl.load(hm_ptr + rows[:, None] * H + kk[None, :], mask=m, other=0.0)).to(hk.dtype)
        acc = tl.dot(hk.to(w_res.dtype), w_res, input_precision=PREC)
    else:
        acc = tl.zeros([BB, NC], dtype=tl.float32)
        kk = tl.arange(0, BK)
        for k0 in range(0, H, BK):
            k = k0 + kk
            kmask = k < H
            hk = tl.load(h_base + rows[:, None] * H + k[None, :], mask=rmask[:, None] & kmask[None, :],
                         other=0.0, cache_modifier=".cg")
            if HAS_HMASK:
                hk = (hk * tl.load(hm_ptr + rows[:, None] * H + k[None, :],
                                   mask=rmask[:, None] & kmask[None, :], other=0.0)).to(hk.dtype)
            w = tl.load(wt_ptr + k[:, None] * G + ccol[None, :], mask=kmask[:, None] & cmask[None, :],
                        other=0.0)
            acc = tl.dot(hk.to(w.dtype), w, acc, input_precision=PREC)
    return acc


@triton.jit
def _dh_prev_tile(dg_base, w_ptr, w_res, dhdir_ptr, dhrec_ptr, hm_ptr, rows, rmask, j, jmask, H, G,
                  BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, GP: tl.constexpr,
                  RESIDENT: tl.constexpr, PREC: tl.constexpr, HAS_HMASK: tl.constexpr):
    """dhrec[rows, j] = dhdir + (dg_t[rows] @ W[:, j]) (* the recurrent-dropout mask): dL/dh_{t-1} of a
    program's units for one batch tile, from every unit's recurrent pre-activation gradients dg_t
    (B, G) at dg_base; W (G, H), its column slice w_res resident or read per K tile."""
    m2 = rmask[:, None] & jmask[None, :]
    own = rows[:, None] * H + j[None, :]
    if HAS_HMASK:
        acc = tl.zeros([BB, BH], dtype=tl.float32)
    else:
        acc = tl.load(dhdir_ptr + own, mask=m2, other=0.0)
    if RESIDENT:
        kg = tl.arange(0, GP)
        dgk = tl.load(dg_base + rows[:, None] * G + kg[None, :], mask=rmask[:, None] & (kg < G)[None, :],
                      other=0.0, cache_modifier=".cg")
        acc = tl.dot(dgk.to(w_res.dtype), w_res, acc, input_precision=PREC)
    else:
        kk = tl.arange(0, BK)
        for k0 in range(0, G, BK):
            k = k0 + kk
            kmask = k < G
            dgk = tl.load(dg_base + rows[:, None] * G + k[None, :], mask=rmask[:, None] & kmask[None, :],
                          other=0.0, cache_modifier=".cg")
            w = tl.load(w_ptr + k[:, None] * H + j[None, :], mask=kmask[:, None] & jmask[None, :], other=0.0)
            acc = tl.dot(dgk.to(w.dtype), w, acc, input_precision=PREC)
    if HAS_HMASK:  # the matmul saw h * mask
        acc = acc * tl.load(hm_ptr + own, mask=m2, other=0.0) + tl.load(dhdir_ptr + own, mask=m2, other=0.0)
    tl.store(dhrec_ptr + own, acc, mask=m2)


@triton.jit
def rnn_fwd_kernel(xp_ptr, wt_ptr, bn_ptr, valid_ptr, h_ptr, c_ptr, save_ptr, sync_ptr,
                   T, B, H,
                   CELL: tl.constexpr, ACT: tl.constexpr, NG: tl.constexpr, NS: tl.constexpr,
                   HAS_VALID: tl.constexpr, SAVE: tl.constexpr, NP: tl.constexpr,
                   BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, HP: tl.constexpr,
                   NGP: tl.constexpr, RESIDENT: tl.constexpr, PREC: tl.constexpr,
                   PEEP: tl.constexpr = False, zh_ptr=None, zc_ptr=None, HAS_ZONE: tl.constexpr = False,
                   hm_ptr=None, HAS_HMASK: tl.constexpr = False):
    """bn_ptr: GRU's b_hn (H,), or with PEEP the LSTM peephole weights (3, H): w_ci, w_cf, w_co.
    HAS_ZONE: zoneout (Krueger et al. 2017), zh/zc (T, B, H) the probability of keeping the old h/c:
    state' = keep * old + (1 - keep) * new, with keep = 1 on steps past a sequence's end."""
    pid = tl.program_id(0)
    G = NG * H
    j = pid * BH + tl.arange(0, BH)
    jmask = j < H
    if PEEP:
        w_ci, w_cf, w_co = _peepholes(bn_ptr, j, jmask, H)
    # the program's columns of W^T, all gates side by side: q*H + j (q < NGP, padded gates masked)
    cq = tl.arange(0, NGP * BH)
    q = cq // BH
    unit = pid * BH + cq % BH
    ccol = q * H + unit
    cmask = (q < NG) & (unit < H)
    if RESIDENT:  # W^T slice (HP, NGP*BH) loaded once, kept on chip for the whole sequence
        kr = tl.arange(0, HP)
        w_res = tl.load(wt_ptr + kr[:, None] * G + ccol[None, :], mask=(kr < H)[:, None] & cmask[None, :],
                        other=0.0)
    else:
        w_res = 0.0
    rr = tl.arange(0, BB)
    for t in range(0, T):
        h_prev_base = h_ptr + t * B * H
        for b0 in range(0, B, BB):
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]  # (BB, BH) offsets in a (B, H) plane
            xrow = xp_ptr + t * B * G + rows[:, None] * G + j[None, :]
            h_old = tl.load(h_prev_base + own, mask=m2, other=0.0, cache_modifier=".cg").to(tl.float32)
            acc = _recurrent_fwd(h_prev_base, rows, rmask, wt_ptr, w_res, ccol, cmask, H, G,
                                 BB, NGP * BH, BK, HP, RESIDENT, PREC, hm_ptr, HAS_HMASK)
            if NGP == 4:
                acc0, acc1, acc2, acc3 = _split4(acc, BB, BH)
            else:
                acc0 = acc
            acc0 += tl.load(xrow, mask=m2, other=0.0).to(tl.float32)
            if CELL == 0:
                acc1 += tl.load(xrow + H, mask=m2, other=0.0).to(tl.float32)
                acc2 += tl.load(xrow + 2 * H, mask=m2, other=0.0).to(tl.float32)
                acc3 += tl.load(xrow + 3 * H, mask=m2, other=0.0).to(tl.float32)
                c_old = tl.load(c_ptr + t * B * H + own, mask=m2, other=0.0)
                if PEEP:  # Gers & Schmidhuber 2000: the cell state looks into the gates
                    acc0 += w_ci * c_old
                    acc1 += w_cf * c_old
                i = _sigmoid(acc0)
                f = _sigmoid(acc1)
                g = _tanh(acc2)
                c_new = f * c_old + i * g
                if PEEP:
                    acc3 += w_co * c_new
                o = _sigmoid(acc3)
                h_new = o * _tanh(c_new)
                if HAS_ZONE:
                    kh = tl.load(zh_ptr + t * B * H + own, mask=m2, other=1.0)
                    kc = tl.load(zc_ptr + t * B * H + own, mask=m2, other=1.0)
                    if HAS_VALID:
                        v = tl.load(valid_ptr + t * B + rows, mask=rmask, other=0)[:, None] != 0
                        kh = tl.where(v, kh, 1.0)
                        kc = tl.where(v, kc, 1.0)
                    c_new = kc * c_old + (1.0 - kc) * c_new
                    h_new = kh * h_old + (1.0 - kh) * h_new
                elif HAS_VALID:
                    v = tl.load(valid_ptr + t * B + rows, mask=rmask, other=0)[:, None] != 0
                    c_new = tl.where(v, c_new, c_old)
                    h_new = tl.where(v, h_new, h_old)
                tl.store(c_ptr + (t + 1) * B * H + own, c_new, mask=m2)
                if SAVE:
                    srow = save_ptr + t * B * (NS * H) + rows[:, None] * (NS * H) + j[None, :]
                    tl.store(srow, i, mask=m2)
                    tl.store(srow + H, f, mask=m2)
                    tl.store(srow + 2 * H, g, mask=m2)
                    tl.store(srow + 3 * H, o, mask=m2)
            elif CELL == 1:
                acc1 += tl.load(xrow + H, mask=m2, other=0.0).to(tl.float32)
                hn = acc2 + tl.load(bn_ptr + j, mask=jmask, other=0.0).to(tl.float32)[None, :]
                xn = tl.load(xrow + 2 * H, mask=m2, other=0.0).to(tl.float32)
                r = _sigmoid(acc0)
                z = _sigmoid(acc1)
                n = _tanh(xn + r * hn)
                h_new = n + z * (h_old - n)
                if HAS_ZONE:
                    kh = tl.load(zh_ptr + t * B * H + own, mask=m2, other=1.0)
                    if HAS_VALID:
                        v = tl.load(valid_ptr + t * B + rows, mask=rmask, other=0)[:, None] != 0
                        kh = tl.where(v, kh, 1.0)
                    h_new = kh * h_old + (1.0 - kh) * h_new
                elif HAS_VALID:
                    v = tl.load(valid_ptr + t * B + rows, mask=rmask, other=0)[:, None] != 0
                    h_new = tl.where(v, h_new, h_old)
                if SAVE:
                    srow = save_ptr + t * B * (NS * H) + rows[:, None] * (NS * H) + j[None, :]
                    tl.store(srow, r, mask=m2)
                    tl.store(srow + H, z, mask=m2)
                    tl.store(srow + 2 * H, n, mask=m2)
                    tl.store(srow + 3 * H, hn, mask=m2)
            else:
                h_new = _act(acc0, ACT)
                if HAS_VALID:
                    v = tl.load(valid_ptr + t * B + rows, mask=rmask, other=0)[:, None] != 0
                    h_new = tl.where(v, h_new, h_old)
            tl.store(h_ptr + (t + 1) * B * H + own, h_new.to(h_ptr.dtype.element_ty), mask=m2)
        _grid_sync(sync_ptr, (t + 1) * NP, NP)


@triton.jit
def rnn_bwd_kernel(wt_ptr, w_ptr, valid_ptr, h_ptr, c_ptr, save_ptr, dh_ptr, dc_ptr,
                   dg_ptr, dxn_ptr, dhrec_ptr, dhdir_ptr, dcrec_ptr, sync_ptr,
                   T, B, H,
                   CELL: tl.constexpr, ACT: tl.constexpr, NG: tl.constexpr, NS: tl.constexpr,
                   HAS_VALID: tl.constexpr, HAS_DC: tl.constexpr, NP: tl.constexpr,
                   BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, GP: tl.constexpr,
                   RESIDENT: tl.constexpr, PREC: tl.constexpr, peep_ptr=None, PEEP: tl.constexpr = False,
                   zh_ptr=None, zc_ptr=None, HAS_ZONE: tl.constexpr = False,
                   hm_ptr=None, HAS_HMASK: tl.constexpr = False):
    """dh_ptr/dc_ptr: upstream grads of h_1..h_T / c_1..c_T (T, B, H). Writes dg (T, B, G): the
    grads of the recurrent pre-activations (for GRU the n block is r * dn_pre, the grad of
    W_hn h + b_hn; dxn (T, B, H) holds dn_pre, the grad of the input-side n pre-activation);
    dhrec (B, H) ends as dL/dh_0, dcrec (B, H) as dL/dc_0. dhdir: scratch (B, H)."""
    pid = tl.program_id(0)
    G = NG * H
    j = pid * BH + tl.arange(0, BH)
    jmask = j < H
    rr = tl.arange(0, BB)
    if PEEP:
        w_ci, w_cf, w_co = _peepholes(peep_ptr, j, jmask, H)
    w_res = _slice(w_ptr, G, H, j, jmask, GP, RESIDENT)  # W[:, j] (GP, BH), on chip when RESIDENT
    for s in range(0, T):
        t = T - 1 - s
        # phase A: gate gradients of own units
        for b0 in range(0, B, BB):
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]
            dh = tl.load(dh_ptr + t * B * H + own, mask=m2, other=0.0).to(tl.float32)
            dh += tl.load(dhrec_ptr + own, mask=m2, other=0.0)
            # keep factors: state' = k * old + (1 - k) * new (k = 1 past the end; zoneout's mask)
            if HAS_VALID:
                v = tl.load(valid_ptr + t * B + rows, mask=rmask, other=0)[:, None] != 0
                kh = tl.where(v, 0.0, 1.0)
            else:
                kh = 0.0
            kc = kh
            if HAS_ZONE:
                zh = tl.load(zh_ptr + t * B * H + own, mask=m2, other=1.0)
                kh = kh + (1.0 - kh) * zh
                if CELL == 0:
                    zc = tl.load(zc_ptr + t * B * H + own, mask=m2, other=1.0)
                    kc = kc + (1.0 - kc) * zc
            srow = save_ptr + t * B * (NS * H) + rows[:, None] * (NS * H) + j[None, :]
            drow = dg_ptr + t * B * G + rows[:, None] * G + j[None, :]
            if CELL == 0:
                dc = tl.load(dcrec_ptr + own, mask=m2, other=0.0)
                if HAS_DC:
                    dc += tl.load(dc_ptr + t * B * H + own, mask=m2, other=0.0).to(tl.float32)
                i = tl.load(srow, mask=m2, other=0.0)
                f = tl.load(srow + H, mask=m2, other=0.0)
                g = tl.load(srow + 2 * H, mask=m2, other=0.0)
                o = tl.load(srow + 3 * H, mask=m2, other=0.0)
                c_old = tl.load(c_ptr + t * B * H + own, mask=m2, other=0.0)
                c_new = f * c_old + i * g  # the cell's new c before zoneout / freezing
                tc = _tanh(c_new)
                dhv = dh * (1.0 - kh)
                do_pre = dhv * tc * o * (1.0 - o)
                dct = dc * (1.0 - kc) + dhv * o * (1.0 - tc * tc)
                if PEEP:
                    dct += do_pre * w_co
                di_pre = dct * g * i * (1.0 - i)
                df_pre = dct * c_old * f * (1.0 - f)
                tl.store(drow, di_pre, mask=m2)
                tl.store(drow + H, df_pre, mask=m2)
                tl.store(drow + 2 * H, dct * i * (1.0 - g * g), mask=m2)
                tl.store(drow + 3 * H, do_pre, mask=m2)
                dc_prev = dct * f + dc * kc
                if PEEP:
                    dc_prev += di_pre * w_ci + df_pre * w_cf
                tl.store(dcrec_ptr + own, dc_prev, mask=m2)
                tl.store(dhdir_ptr + own, dh * kh, mask=m2)
            elif CELL == 1:
                r = tl.load(srow, mask=m2, other=0.0)
                z = tl.load(srow + H, mask=m2, other=0.0)
                n = tl.load(srow + 2 * H, mask=m2, other=0.0)
                hn = tl.load(srow + 3 * H, mask=m2, other=0.0)
                h_old = tl.load(h_ptr + t * B * H + own, mask=m2, other=0.0).to(tl.float32)
                dhv = dh * (1.0 - kh)
                dn_pre = dhv * (1.0 - z) * (1.0 - n * n)
                dr_pre = dn_pre * hn * r * (1.0 - r)
                dz_pre = dhv * (h_old - n) * z * (1.0 - z)
                tl.store(drow, dr_pre, mask=m2)
                tl.store(drow + H, dz_pre, mask=m2)
                tl.store(drow + 2 * H, dn_pre * r, mask=m2)
                tl.store(dxn_ptr + t * B * H + own, dn_pre, mask=m2)
                tl.store(dhdir_ptr + own, dhv * z + dh * kh, mask=m2)
            else:
                y = tl.load(h_ptr + (t + 1) * B * H + own, mask=m2, other=0.0).to(tl.float32)
                tl.store(drow, dh * (1.0 - kh) * _act_grad_from_out(y, ACT), mask=m2)
                tl.store(dhdir_ptr + own, dh * kh, mask=m2)
        _grid_sync(sync_ptr, (s + 1) * NP, NP)
        # phase B: dh_{t-1}[:, j] = dhdir + dg[t] @ W[:, j]
        for b0 in range(0, B, BB):
            rows = b0 + rr
            _dh_prev_tile(dg_ptr + t * B * G, w_ptr, w_res, dhdir_ptr, dhrec_ptr, hm_ptr, rows, rows < B, j, jmask,
                          H, G, BB, BH, BK, GP, RESIDENT, PREC, HAS_HMASK)
        tl.debug_barrier()  # dhrec/dcrec are read back by this program only
