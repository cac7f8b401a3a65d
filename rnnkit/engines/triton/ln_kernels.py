"""Persistent Triton kernels over time for the layer-normalised LSTM (Ba et al. 2016, as
``rnnkit.cells.lstm.LSTMCell`` with ``layer_norm=True``), optionally with peepholes:

    gates_t = xp_t + LN_hh(W_hh h_{t-1})          xp_t = LN_ih(x_t W_ih^T) + biases (in torch, before)
    i, f, g, o from gates_t (+ peepholes);  c_t = f c_{t-1} + i g;  h_t = o tanh(LN_c(c_t))

The layout is ``rnn_kernels``': NP programs each own BH hidden units (all four gates of them) and
all batch rows; W_hh's slice stays on chip where it fits. A LayerNorm couples every unit of a row,
so each step has three phases separated by grid-wide barriers, the row statistics crossing between
programs as per-program partials (count, mean, centred sum of squares) that every program combines
in the same order (Chan et al.'s pairwise update: deterministic and without the cancellation of a
one-pass sum of squares):

    forward, step t:
        1. r = h_{t-1} @ W_hh^T[:, own gates] -> R[t]; partial stats of r           | barrier
        2. mean/rstd of r over 4H; gates = xp + LN_hh(r) -> i, f, g, o, c_new;
           partial stats of c_new                                                   | barrier
        3. mean/rstd of c_new over H; h_t = o tanh(LN_c(c_new)); zoneout/lengths    | barrier
    backward, step t (reverse):
        A1. du = dL/dLN_c(c_new) -> DU[t]; partial sums of LN_c's backward          | barrier
        A2. dL/dc_new and the gate gradients -> DXP[t] (= dL/dxp_t);
            partial sums of LN_hh's backward                                        | barrier
        A3. dR[t] = dL/dr through LN_hh -> DG[t]                                    | barrier
        B.  dL/dh_{t-1}[:, own] = dh_direct + dR[t] @ W_hh[:, own]

The parameter gradients are sums over all steps, formed in torch after the backward kernel from
what it leaves: dW_hh = DG^T h_{t-1}, LN_hh's gain and bias from DXP and R, LN_c's from DU and c.
With NP = 1 (the CPU interpreter) the barriers are no-ops.
"""
from __future__ import annotations

import triton
import triton.language as tl

from .rnn_kernels import (_dh_prev_tile, _grid_sync, _peepholes, _recurrent_fwd, _sigmoid, _slice, _tanh,
                          _unit_row)


@triton.jit
def _partial_stats(v, cmask, n_own):
    """(mean, centred sum of squares) of each row of v (BB, N) over the columns in cmask."""
    mean = tl.sum(tl.where(cmask[None, :], v, 0.0), axis=1) / n_own
    d = tl.where(cmask[None, :], v - mean[:, None], 0.0)
    return mean, tl.sum(d * d, axis=1)


@triton.jit
def _combined_stats(part_ptr, rows, rmask, B, H, EPS, NP, BH: tl.constexpr, NPP: tl.constexpr,
                    WIDTH: tl.constexpr):
    """(mean, 1 / sqrt(var + eps)) of each row over WIDTH * H units from the NP programs' partials at
    part_ptr (NP, 2, B): program p's mean and centred sum of squares over its WIDTH * n_p units."""
    pp = tl.arange(0, NPP)
    pm = pp < NP
    n_p = (tl.minimum(tl.maximum(H - pp * BH, 0), BH) * WIDTH).to(tl.float32)  # (NPP,)
    m2 = pm[:, None] & rmask[None, :]
    means = tl.load(part_ptr + pp[:, None] * 2 * B + rows[None, :], mask=m2, other=0.0, cache_modifier=".cg")
    sqs = tl.load(part_ptr + pp[:, None] * 2 * B + B + rows[None, :], mask=m2, other=0.0, cache_modifier=".cg")
    n = H * WIDTH * 1.0
    mean = tl.sum(n_p[:, None] * means, axis=0) / n  # (BB,)
    dev = means - mean[None, :]
    m2sum = tl.sum(sqs + n_p[:, None] * dev * dev, axis=0)
    return mean, 1.0 / tl.sqrt(m2sum / n + EPS)


@triton.jit
def _summed(part_ptr, rows, rmask, B, NP, NPP: tl.constexpr):
    """The NP programs' partial sums at part_ptr (NP, 2, B), added in program order: two (BB,) rows."""
    pp = tl.arange(0, NPP)
    m2 = (pp < NP)[:, None] & rmask[None, :]
    s1 = tl.load(part_ptr + pp[:, None] * 2 * B + rows[None, :], mask=m2, other=0.0, cache_modifier=".cg")
    s2 = tl.load(part_ptr + pp[:, None] * 2 * B + B + rows[None, :], mask=m2, other=0.0, cache_modifier=".cg")
    return tl.sum(s1, axis=0), tl.sum(s2, axis=0)


@triton.jit
def _ln_gate(x_ptrs, r_ptrs, m2, mean, rstd, gain, bias):
    """One gate's pre-activation: xp + LN_hh(r) for a (BB, BH) block, r's row statistics given."""
    r = tl.load(r_ptrs, mask=m2, other=0.0)
    return tl.load(x_ptrs, mask=m2, other=0.0).to(tl.float32) + (r - mean) * rstd * gain + bias


@triton.jit
def _keep_factors(valid_ptr, zh_ptr, zc_ptr, t, B, H, rows, rmask, own, m2,
                  HAS_VALID: tl.constexpr, HAS_ZONE: tl.constexpr):
    """(kh, kc): state' = k * old + (1 - k) * new; k = 1 past a sequence's end, else zoneout's keep."""
    if HAS_VALID:
        v = tl.load(valid_ptr + t * B + rows, mask=rmask, other=0)[:, None] != 0
        kh = tl.where(v, 0.0, 1.0)
    else:
        kh = tl.zeros([1, 1], dtype=tl.float32)
    kc = kh
    if HAS_ZONE:
        zh = tl.load(zh_ptr + t * B * H + own, mask=m2, other=1.0)
        zc = tl.load(zc_ptr + t * B * H + own, mask=m2, other=1.0)
        kh = kh + (1.0 - kh) * zh
        kc = kc + (1.0 - kc) * zc
    return kh, kc


@triton.jit
def _step_state(dh_ptr, dhrec_ptr, valid_ptr, zh_ptr, zc_ptr, save_ptr, c_ptr, st_ptr, lcw, lcb, t, B, H, rows,
                rmask, j, m2, own, HAS_VALID: tl.constexpr, HAS_ZONE: tl.constexpr):
    """What the backward's phases A1 and A2 both need of step t for a (BB, BH) block of own units: dh
    (upstream + recurrent), the keep factors, the saved gates i, f, g, o, c_{t-1}, c_hat = LN_c's
    normalised c_new, tanh(LN_c(c_new)) and LN_c's rstd (BB, 1)."""
    dh = tl.load(dh_ptr + t * B * H + own, mask=m2, other=0.0).to(tl.float32)
    dh += tl.load(dhrec_ptr + own, mask=m2, other=0.0)
    kh, kc = _keep_factors(valid_ptr, zh_ptr, zc_ptr, t, B, H, rows, rmask, own, m2, HAS_VALID, HAS_ZONE)
    srow = save_ptr + t * B * 4 * H + rows[:, None] * 4 * H + j[None, :]
    i = tl.load(srow, mask=m2, other=0.0)
    f = tl.load(srow + H, mask=m2, other=0.0)
    g = tl.load(srow + 2 * H, mask=m2, other=0.0)
    o = tl.load(srow + 3 * H, mask=m2, other=0.0)
    c_old = tl.load(c_ptr + t * B * H + own, mask=m2, other=0.0)
    st = st_ptr + (t * B + rows) * 4
    rstd_c = tl.load(st + 3, mask=rmask, other=0.0)[:, None]
    chat = (f * c_old + i * g - tl.load(st + 2, mask=rmask, other=0.0)[:, None]) * rstd_c
    return dh, kh, kc, i, f, g, o, c_old, chat, _tanh(chat * lcw + lcb), rstd_c


@triton.jit
def lnlstm_fwd_kernel(xp_ptr, wt_ptr, lnw_ptr, lnb_ptr, lncw_ptr, lncb_ptr, peep_ptr, valid_ptr,
                      h_ptr, c_ptr, save_ptr, r_ptr, st_ptr, part_ptr, scr_ptr, sync_ptr,
                      T, B, H, EPS,
                      HAS_VALID: tl.constexpr, SAVE: tl.constexpr, NP: tl.constexpr, NPP: tl.constexpr,
                      BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, HP: tl.constexpr,
                      RESIDENT: tl.constexpr, PREC: tl.constexpr, PEEP: tl.constexpr,
                      zh_ptr, zc_ptr, HAS_ZONE: tl.constexpr, hm_ptr, HAS_HMASK: tl.constexpr):
    """xp (T, B, 4H): LN_ih(x W_ih^T) + biases; wt (H, 4H) = W_hh^T; ln* (4H,) LN_hh gain/bias, (H,)
    LN_c gain/bias; h (T + 1, B, H), c (T + 1, B, H) float32, slot 0 holding the initial state.
    SAVE (training): save (T, B, 4H) the activations i, f, g, o; r (T, B, 4H) the raw W_hh h; st (T, B, 4)
    mean and rstd of r and of c_new. Without SAVE, r is one (B, 4H) slot. part: (2, NP, 2, B) the
    partial statistics of phases 1 and 2; scr: (B, 2H) c_new and o between phases 2 and 3."""
    pid = tl.program_id(0)
    G = 4 * H
    j = pid * BH + tl.arange(0, BH)
    jmask = j < H
    cq = tl.arange(0, 4 * BH)
    q = cq // BH
    unit = pid * BH + cq % BH
    ccol = q * H + unit
    cmask = unit < H
    n_own = tl.minimum(H - pid * BH, BH).to(tl.float32)
    if RESIDENT:
        kr = tl.arange(0, HP)
        w_res = tl.load(wt_ptr + kr[:, None] * G + ccol[None, :], mask=(kr < H)[:, None] & cmask[None, :],
                        other=0.0)
    else:
        w_res = 0.0
    lw0 = _unit_row(lnw_ptr, j, jmask)
    lw1 = _unit_row(lnw_ptr + H, j, jmask)
    lw2 = _unit_row(lnw_ptr + 2 * H, j, jmask)
    lw3 = _unit_row(lnw_ptr + 3 * H, j, jmask)
    lb0 = _unit_row(lnb_ptr, j, jmask)
    lb1 = _unit_row(lnb_ptr + H, j, jmask)
    lb2 = _unit_row(lnb_ptr + 2 * H, j, jmask)
    lb3 = _unit_row(lnb_ptr + 3 * H, j, jmask)
    lcw = _unit_row(lncw_ptr, j, jmask)
    lcb = _unit_row(lncb_ptr, j, jmask)
    if PEEP:
        w_ci, w_cf, w_co = _peepholes(peep_ptr, j, jmask, H)
    part1 = part_ptr + pid * 2 * B
    part2 = part_ptr + NP * 2 * B + pid * 2 * B
    rr = tl.arange(0, BB)
    for t in range(0, T):
        h_prev_base = h_ptr + t * B * H
        r_base = r_ptr  # one slot reused, or with SAVE step t's
        if SAVE:
            r_base = r_ptr + t * B * G
        # phase 1: the raw recurrent product of the own gate columns, and its partial statistics
        for b0 in range(0, B, BB):
            rows = b0 + rr
            rmask = rows < B
            acc = _recurrent_fwd(h_prev_base, rows, rmask, wt_ptr, w_res, ccol, cmask, H, G,
                                 BB, 4 * BH, BK, HP, RESIDENT, PREC, hm_ptr, HAS_HMASK)
            tl.store(r_base + rows[:, None] * G + ccol[None, :], acc, mask=rmask[:, None] & cmask[None, :])
            mean, sq = _partial_stats(acc, cmask, 4.0 * n_own)
            tl.store(part1 + rows, mean, mask=rmask)
            tl.store(part1 + B + rows, sq, mask=rmask)
        _grid_sync(sync_ptr, (3 * t + 1) * NP, NP)
        # phase 2: LN_hh, the gates and c_new of the own units; partial statistics of c_new
        for b0 in range(0, B, BB):
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]
            mean, rstd = _combined_stats(part_ptr, rows, rmask, B, H, EPS, NP, BH, NPP, 4)
            if SAVE:
                if pid == 0:
                    tl.store(st_ptr + (t * B + rows) * 4, mean, mask=rmask)
                    tl.store(st_ptr + (t * B + rows) * 4 + 1, rstd, mask=rmask)
            rrow = r_base + rows[:, None] * G + j[None, :]
            xrow = xp_ptr + t * B * G + rows[:, None] * G + j[None, :]
            mu, rs = mean[:, None], rstd[:, None]
            a0 = _ln_gate(xrow, rrow, m2, mu, rs, lw0, lb0)
            a1 = _ln_gate(xrow + H, rrow + H, m2, mu, rs, lw1, lb1)
            a2 = _ln_gate(xrow + 2 * H, rrow + 2 * H, m2, mu, rs, lw2, lb2)
            a3 = _ln_gate(xrow + 3 * H, rrow + 3 * H, m2, mu, rs, lw3, lb3)
            c_old = tl.load(c_ptr + t * B * H + own, mask=m2, other=0.0)
            if PEEP:
                a0 += w_ci * c_old
                a1 += w_cf * c_old
            i = _sigmoid(a0)
            f = _sigmoid(a1)
            g = _tanh(a2)
            c_new = f * c_old + i * g
            if PEEP:
                a3 += w_co * c_new
            o = _sigmoid(a3)
            if SAVE:
                srow = save_ptr + t * B * G + rows[:, None] * G + j[None, :]
                tl.store(srow, i, mask=m2)
                tl.store(srow + H, f, mask=m2)
                tl.store(srow + 2 * H, g, mask=m2)
                tl.store(srow + 3 * H, o, mask=m2)
            tl.store(scr_ptr + rows[:, None] * 2 * H + j[None, :], c_new, mask=m2)
            tl.store(scr_ptr + rows[:, None] * 2 * H + H + j[None, :], o, mask=m2)
            cm, csq = _partial_stats(c_new, jmask, n_own)
            tl.store(part2 + rows, cm, mask=rmask)
            tl.store(part2 + B + rows, csq, mask=rmask)
        _grid_sync(sync_ptr, (3 * t + 2) * NP, NP)
        # phase 3: LN_c, h_t; zoneout and sequence ends
        for b0 in range(0, B, BB):
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]
            mean, rstd = _combined_stats(part_ptr + NP * 2 * B, rows, rmask, B, H, EPS, NP, BH, NPP, 1)
            if SAVE:
                if pid == 0:
                    tl.store(st_ptr + (t * B + rows) * 4 + 2, mean, mask=rmask)
                    tl.store(st_ptr + (t * B + rows) * 4 + 3, rstd, mask=rmask)
            c_new = tl.load(scr_ptr + rows[:, None] * 2 * H + j[None, :], mask=m2, other=0.0)
            o = tl.load(scr_ptr + rows[:, None] * 2 * H + H + j[None, :], mask=m2, other=0.0)
            h_new = o * _tanh((c_new - mean[:, None]) * rstd[:, None] * lcw + lcb)
            if HAS_VALID or HAS_ZONE:
                kh, kc = _keep_factors(valid_ptr, zh_ptr, zc_ptr, t, B, H, rows, rmask, own, m2,
                                       HAS_VALID, HAS_ZONE)
                h_old = tl.load(h_prev_base + own, mask=m2, other=0.0, cache_modifier=".cg").to(tl.float32)
                c_old = tl.load(c_ptr + t * B * H + own, mask=m2, other=0.0)
                c_new = kc * c_old + (1.0 - kc) * c_new
                h_new = kh * h_old + (1.0 - kh) * h_new
            tl.store(c_ptr + (t + 1) * B * H + own, c_new, mask=m2)
            tl.store(h_ptr + (t + 1) * B * H + own, h_new.to(h_ptr.dtype.element_ty), mask=m2)
        _grid_sync(sync_ptr, (3 * t + 3) * NP, NP)


@triton.jit
def lnlstm_bwd_kernel(w_ptr, lnw_ptr, lncw_ptr, lncb_ptr, peep_ptr, valid_ptr, c_ptr, save_ptr, r_ptr,
                      st_ptr, dh_ptr, dc_ptr, dg_ptr, dxp_ptr, du_ptr, dhrec_ptr, dhdir_ptr, dcrec_ptr,
                      part_ptr, sync_ptr, T, B, H,
                      HAS_VALID: tl.constexpr, HAS_DC: tl.constexpr, NP: tl.constexpr, NPP: tl.constexpr,
                      BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, GP: tl.constexpr,
                      RESIDENT: tl.constexpr, PREC: tl.constexpr, PEEP: tl.constexpr,
                      zh_ptr, zc_ptr, HAS_ZONE: tl.constexpr, hm_ptr, HAS_HMASK: tl.constexpr):
    """dh/dc: upstream gradients of h_1..h_T / c_1..c_T (T, B, H). Writes dg (T, B, 4H) = dL/dr (the raw
    W_hh h), dxp (T, B, 4H) = dL/dxp (the gate pre-activations), du (T, B, H) = dL/dLN_c(c_new);
    dhrec (B, H) ends as dL/dh_0, dcrec (B, H) as dL/dc_0; dhdir: scratch (B, H); part (2, NP, 2, B)."""
    pid = tl.program_id(0)
    G = 4 * H
    j = pid * BH + tl.arange(0, BH)
    jmask = j < H
    rr = tl.arange(0, BB)
    lw0 = _unit_row(lnw_ptr, j, jmask)
    lw1 = _unit_row(lnw_ptr + H, j, jmask)
    lw2 = _unit_row(lnw_ptr + 2 * H, j, jmask)
    lw3 = _unit_row(lnw_ptr + 3 * H, j, jmask)
    lcw = _unit_row(lncw_ptr, j, jmask)
    lcb = _unit_row(lncb_ptr, j, jmask)
    if PEEP:
        w_ci, w_cf, w_co = _peepholes(peep_ptr, j, jmask, H)
    w_res = _slice(w_ptr, G, H, j, jmask, GP, RESIDENT)  # W[:, j] (GP, BH), on chip when RESIDENT
    part1 = part_ptr + pid * 2 * B
    part2 = part_ptr + NP * 2 * B + pid * 2 * B
    for s in range(0, T):
        t = T - 1 - s
        # A1: dL/dLN_c(c_new) of the own units and the partial sums of LN_c's backward
        for b0 in range(0, B, BB):
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]
            dh, kh, kc, i, f, g, o, c_old, chat, tc, rstd_c = _step_state(
                dh_ptr, dhrec_ptr, valid_ptr, zh_ptr, zc_ptr, save_ptr, c_ptr, st_ptr, lcw, lcb, t, B, H, rows,
                rmask, j, m2, own, HAS_VALID, HAS_ZONE)
            du = dh * (1.0 - kh) * o * (1.0 - tc * tc)
            tl.store(du_ptr + t * B * H + own, du, mask=m2)
            a = du * lcw * rstd_c
            tl.store(part1 + rows, tl.sum(tl.where(m2, a, 0.0), axis=1), mask=rmask)
            tl.store(part1 + B + rows, tl.sum(tl.where(m2, a * chat, 0.0), axis=1), mask=rmask)
        _grid_sync(sync_ptr, (3 * s + 1) * NP, NP)
        # A2: dL/dc_new, the gate gradients (dL/dxp), dc_{t-1}; partial sums of LN_hh's backward
        for b0 in range(0, B, BB):
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            own = rows[:, None] * H + j[None, :]
            s1, s2 = _summed(part_ptr, rows, rmask, B, NP, NPP)
            s1 = s1 / H
            s2 = s2 / H
            dh, kh, kc, i, f, g, o, c_old, chat, tc, rstd_c = _step_state(
                dh_ptr, dhrec_ptr, valid_ptr, zh_ptr, zc_ptr, save_ptr, c_ptr, st_ptr, lcw, lcb, t, B, H, rows,
                rmask, j, m2, own, HAS_VALID, HAS_ZONE)
            du = tl.load(du_ptr + t * B * H + own, mask=m2, other=0.0)
            a = du * lcw * rstd_c
            dcn = a - s1[:, None] - chat * s2[:, None]  # dL/dc_new through h_t = o tanh(LN_c(c_new))
            do_pre = dh * (1.0 - kh) * tc * o * (1.0 - o)
            dc = tl.load(dcrec_ptr + own, mask=m2, other=0.0)
            if HAS_DC:
                dc += tl.load(dc_ptr + t * B * H + own, mask=m2, other=0.0).to(tl.float32)
            dct = dc * (1.0 - kc) + dcn
            if PEEP:
                dct += do_pre * w_co
            d0 = dct * g * i * (1.0 - i)
            d1 = dct * c_old * f * (1.0 - f)
            d2 = dct * i * (1.0 - g * g)
            xrow = dxp_ptr + t * B * G + rows[:, None] * G + j[None, :]
            tl.store(xrow, d0, mask=m2)
            tl.store(xrow + H, d1, mask=m2)
            tl.store(xrow + 2 * H, d2, mask=m2)
            tl.store(xrow + 3 * H, do_pre, mask=m2)
            dc_prev = dct * f + dc * kc
            if PEEP:
                dc_prev += d0 * w_ci + d1 * w_cf
            tl.store(dcrec_ptr + own, dc_prev, mask=m2)
            tl.store(dhdir_ptr + own, dh * kh, mask=m2)
            # LN_hh's backward: a_q = dxp_q * gain_q * rstd, r_hat = (r - mean) * rstd
            rrow = r_ptr + t * B * G + rows[:, None] * G + j[None, :]
            st = st_ptr + (t * B + rows) * 4
            mu = tl.load(st, mask=rmask, other=0.0)[:, None]
            rs = tl.load(st + 1, mask=rmask, other=0.0)[:, None]
            q0 = d0 * lw0 * rs
            q1 = d1 * lw1 * rs
            q2 = d2 * lw2 * rs
            q3 = do_pre * lw3 * rs
            p1 = tl.where(m2, q0 + q1 + q2 + q3, 0.0)
            p2 = tl.where(m2, q0 * (tl.load(rrow, mask=m2, other=0.0) - mu)
                          + q1 * (tl.load(rrow + H, mask=m2, other=0.0) - mu)
                          + q2 * (tl.load(rrow + 2 * H, mask=m2, other=0.0) - mu)
                          + q3 * (tl.load(rrow + 3 * H, mask=m2, other=0.0) - mu), 0.0) * rs
            tl.store(part2 + rows, tl.sum(p1, axis=1), mask=rmask)
            tl.store(part2 + B + rows, tl.sum(p2, axis=1), mask=rmask)
        _grid_sync(sync_ptr, (3 * s + 2) * NP, NP)
        # A3: dL/dr = a - mean(a) - r_hat mean(a r_hat) over the row's 4H units
        for b0 in range(0, B, BB):
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & jmask[None, :]
            s1, s2 = _summed(part_ptr + NP * 2 * B, rows, rmask, B, NP, NPP)
            s1 = (s1 / G)[:, None]
            s2 = (s2 / G)[:, None]
            st = st_ptr + (t * B + rows) * 4
            mu = tl.load(st, mask=rmask, other=0.0)[:, None]
            rs = tl.load(st + 1, mask=rmask, other=0.0)[:, None]
            off = t * B * G + rows[:, None] * G + j[None, :]
            for qq in tl.static_range(4):
                lw = tl.load(lnw_ptr + qq * H + j, mask=jmask, other=0.0).to(tl.float32)[None, :]
                dpre = tl.load(dxp_ptr + off + qq * H, mask=m2, other=0.0)
                rhat = (tl.load(r_ptr + off + qq * H, mask=m2, other=0.0) - mu) * rs
                tl.store(dg_ptr + off + qq * H, dpre * lw * rs - s1 - rhat * s2, mask=m2)
        _grid_sync(sync_ptr, (3 * s + 3) * NP, NP)
        # B: dh_{t-1}[:, own] = dh_direct + dR[t] @ W[:, own]
        for b0 in range(0, B, BB):
            rows = b0 + rr
            _dh_prev_tile(dg_ptr + t * B * G, w_ptr, w_res, dhdir_ptr, dhrec_ptr, hm_ptr, rows, rows < B, j, jmask,
                          H, G, BB, BH, BK, GP, RESIDENT, PREC, HAS_HMASK)
        tl.debug_barrier()  # dhrec/dcrec are read back by this program only
