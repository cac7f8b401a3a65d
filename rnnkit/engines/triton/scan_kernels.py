"""Fused minGRU/minLSTM scan kernels: gates, linear recurrence and their backward in one pass each.

One program owns one batch row and BC channels and walks the sequence in tiles of BT steps; inside
a tile ``tl.associative_scan`` composes the affine maps h -> a h + b, across tiles a carry (BC,) is
kept in registers. Reads xp (T, B, G) once, writes h (T, B, H) once (forward); the backward reads
xp, h and dh once and writes dxp once, recomputing the gates (nothing else is saved).

    forward   h_t = a_t h_{t-1} + b_t                     (a, b from xp_t: see rnnkit.cells.minrnn)
    backward  g_t = dh_t + a_{t+1} g_{t+1}                (a reversed scan of the same form)
              da_t = g_t h_{t-1}     db_t = g_t           dh0 = a_0 g_0

MODE 0 = minGRU ([z | h~] blocks), 1 = minLSTM ([f | i | h~]); POSITIVE applies Feng et al.'s g().
Steps with valid == 0 use a = 1, b = 0 (the state freezes past each sequence's end).
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _affine_combine(a1, b1, a2, b2):
    # (h -> a1 h + b1) then (h -> a2 h + b2)
    return a1 * a2, b1 * a2 + b2


@triton.jit
def _softplus(x):
    return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))


@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _candidate(kh, POSITIVE: tl.constexpr):
    if POSITIVE:
        return tl.where(kh >= 0, kh + 0.5, _sigmoid(kh))
    else:
        return kh


@triton.jit
def _candidate_grad(kh, POSITIVE: tl.constexpr):
    if POSITIVE:
        s = _sigmoid(kh)
        return tl.where(kh >= 0, 1.0, s * (1.0 - s))
    else:
        return kh * 0.0 + 1.0


@triton.jit
def _load_pre(xp_ptr, rows, cols, row_ok, T, B, H, pid_b,
              MODE: tl.constexpr):
    """Pre-activations of the gate blocks for rows (BT,) x cols (BC,), as float32."""
    G = H * (2 + MODE)
    base = xp_ptr + rows[:, None] * (B * G) + pid_b * G + cols[None, :]
    m = row_ok[:, None] & (cols[None, :] < H)
    k0 = tl.load(base, mask=m, other=0.0).to(tl.float32)
    k1 = tl.load(base + H, mask=m, other=0.0).to(tl.float32)
    if MODE == 1:
        k2 = tl.load(base + 2 * H, mask=m, other=0.0).to(tl.float32)
    else:
        k2 = k1
    return k0, k1, k2


@triton.jit
def _coefficients(k0, k1, k2, MODE: tl.constexpr, POSITIVE: tl.constexpr):
    """(a, b, c, s): h = a h_prev + b with b = s * c, c the candidate, s the input gate."""
    if MODE == 0:
        z = _sigmoid(k0)
        c = _candidate(k1, POSITIVE)
        a = 1.0 - z
        s = z
    else:
        d = _softplus(-k0) - _softplus(-k1)  # log i - log f
        a = _sigmoid(-d)  # f / (f + i)
        s = 1.0 - a
        c = _candidate(k2, POSITIVE)
    return a, s * c, c, s


@triton.jit
def _load_valid(valid_ptr, rows, row_ok, B, pid_b, HAS_VALID: tl.constexpr):
    if HAS_VALID:
        v = tl.load(valid_ptr + rows * B + pid_b, mask=row_ok, other=0)
        return (v != 0) & row_ok
    else:
        return row_ok


@triton.jit
def minrnn_scan_fwd_kernel(xp_ptr, h0_ptr, valid_ptr, out_ptr, T, B, H,
                           MODE: tl.constexpr, POSITIVE: tl.constexpr, HAS_H0: tl.constexpr,
                           HAS_VALID: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr):
    pid_b = tl.program_id(0)
    cols = tl.program_id(1) * BC + tl.arange(0, BC)
    cmask = cols < H
    if HAS_H0:
        carry = tl.load(h0_ptr + pid_b * H + cols, mask=cmask, other=0.0).to(tl.float32)
    else:
        carry = tl.zeros([BC], dtype=tl.float32)
    r = tl.arange(0, BT)
    # software prefetch: the next tile's loads are issued before this tile's scan (two in flight)
    n0, n1, n2 = _load_pre(xp_ptr, r, cols, r < T, T, B, H, pid_b, MODE)
    nv = _load_valid(valid_ptr, r, r < T, B, pid_b, HAS_VALID)
    for t0 in range(0, T, BT):
        rows = t0 + r
        row_ok = rows < T
        k0, k1, k2, ok = n0, n1, n2, nv
        nxt = rows + BT
        n0, n1, n2 = _load_pre(xp_ptr, nxt, cols, nxt < T, T, B, H, pid_b, MODE)
        nv = _load_valid(valid_ptr, nxt, nxt < T, B, pid_b, HAS_VALID)
        a, b, c, s = _coefficients(k0, k1, k2, MODE, POSITIVE)
        a = tl.where(ok[:, None], a, 1.0)
        b = tl.where(ok[:, None], b, 0.0)
        A, Bc = tl.associative_scan((a, b), 0, _affine_combine)
        h = A * carry[None, :] + Bc  # (BT, BC)
        tl.store(out_ptr + rows[:, None] * (B * H) + pid_b * H + cols[None, :],
                 h.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & cmask[None, :])
        carry = tl.sum(tl.where((r == BT - 1)[:, None], h, 0.0), axis=0)


@triton.jit
def minrnn_scan_bwd_kernel(xp_ptr, h0_ptr, valid_ptr, out_ptr, dout_ptr, dxp_ptr, dh0_ptr,
                           T, B, H,
                           MODE: tl.constexpr, POSITIVE: tl.constexpr, HAS_H0: tl.constexpr,
                           HAS_VALID: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr):
    pid_b = tl.program_id(0)
    cols = tl.program_id(1) * BC + tl.arange(0, BC)
    cmask = cols < H
    G = H * (2 + MODE)
    carry = tl.zeros([BC], dtype=tl.float32)  # g_{t+1} entering the tile from later steps
    r = tl.arange(0, BT)
    n_tiles = tl.cdiv(T, BT)
    for k in range(0, n_tiles):
        t_hi = T - 1 - k * BT
        rows = t_hi - r  # reversed: row 0 is the latest step of the tile
        row_ok = rows >= 0
        # a_{t+1} (1 past the end of the sequence, where nothing flows back)
        nxt = rows + 1
        nxt_ok = row_ok & (nxt < T)
        n0, n1, n2 = _load_pre(xp_ptr, nxt, cols, nxt_ok, T, B, H, pid_b, MODE)
        a_next, _b, _c, _s = _coefficients(n0, n1, n2, MODE, POSITIVE)
        vn = _load_valid(valid_ptr, nxt, nxt_ok, B, pid_b, HAS_VALID)[:, None]
        a_next = tl.where(vn, a_next, 1.0)
        a_next = tl.where(nxt_ok[:, None], a_next, 0.0)
        cm = row_ok[:, None] & cmask[None, :]
        offs = rows[:, None] * (B * H) + pid_b * H + cols[None, :]
        dh = tl.load(dout_ptr + offs, mask=cm, other=0.0).to(tl.float32)
        alpha = tl.where(row_ok[:, None], a_next, 1.0)
        A, Gs = tl.associative_scan((alpha, dh), 0, _affine_combine)
        g = A * carry[None, :] + Gs  # (BT, BC) total gradient reaching h_t
        carry = tl.sum(tl.where((r == BT - 1)[:, None], g, 0.0), axis=0)
        # h_{t-1}
        prv = rows - 1
        prv_ok = row_ok & (prv >= 0)
        h_prev = tl.load(out_ptr + prv[:, None] * (B * H) + pid_b * H + cols[None, :],
                         mask=prv_ok[:, None] & cmask[None, :], other=0.0).to(tl.float32)
        if HAS_H0:
            h0v = tl.load(h0_ptr + pid_b * H + cols, mask=cmask, other=0.0).to(tl.float32)
            h_prev = tl.where((rows == 0)[:, None], h0v[None, :], h_prev)
        k0, k1, k2 = _load_pre(xp_ptr, rows, cols, row_ok, T, B, H, pid_b, MODE)
        a, b, c, s = _coefficients(k0, k1, k2, MODE, POSITIVE)
        ok = _load_valid(valid_ptr, rows, row_ok, B, pid_b, HAS_VALID)[:, None]
        da = tl.where(ok, g * h_prev, 0.0)
        db = tl.where(ok, g, 0.0)
        base = dxp_ptr + rows[:, None] * (B * G) + pid_b * G + cols[None, :]
        if MODE == 0:
            dkz = (db * c - da) * s * (1.0 - s)
            dkh = db * s * _candidate_grad(k1, POSITIVE)
            tl.store(base, dkz.to(dxp_ptr.dtype.element_ty), mask=cm)
            tl.store(base + H, dkh.to(dxp_ptr.dtype.element_ty), mask=cm)
        else:
            dd = (db * c - da) * a * (1.0 - a)  # d/d(log i - log f)
            dkf = -dd * _sigmoid(-k0)
            dki = dd * _sigmoid(-k1)
            dkh = db * s * _candidate_grad(k2, POSITIVE)
            tl.store(base, dkf.to(dxp_ptr.dtype.element_ty), mask=cm)
            tl.store(base + H, dki.to(dxp_ptr.dtype.element_ty), mask=cm)
            tl.store(base + 2 * H, dkh.to(dxp_ptr.dtype.element_ty), mask=cm)
    if HAS_H0:
        z0 = tl.zeros([BT], dtype=tl.int32)
        first_ok = z0 == 0
        q0, q1, q2 = _load_pre(xp_ptr, z0, cols, first_ok, T, B, H, pid_b, MODE)
        a0, _b0, _c0, _s0 = _coefficients(q0, q1, q2, MODE, POSITIVE)
        v0 = _load_valid(valid_ptr, z0, first_ok, B, pid_b, HAS_VALID)[:, None]
        a0 = tl.where(v0, a0, 1.0)
        a0row = tl.sum(tl.where((r == 0)[:, None], a0, 0.0), axis=0)
        tl.store(dh0_ptr + pid_b * H + cols, (a0row * carry).to(dh0_ptr.dtype.element_ty), mask=cmask)
