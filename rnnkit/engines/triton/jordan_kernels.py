"""Persistent Triton kernels over time for the Jordan network (Jordan 1986, ``rnnkit.cells.jordan``):

    h_t = act(xp_t + W_hy y_{t-1})          xp_t = W_hx x_t + b_ih (in torch, before)
    y_t = out_act(W_yh h_t + b_y)           y_t is the state carried and the layer's output

Two matrix products per step, the second needing the whole h_t, so each step has two phases
separated by grid-wide barriers. NP programs each own BH units of h (phase 1) and BO units of y
(phase 2); a program's slices of W_hy and W_yh stay on chip where they fit (RESIDENT):

    forward, step t:   1. h_t[:, own_h] = act(xp_t + y_{t-1} @ W_hy^T[:, own_h])  -> Hs[t]   | barrier
                       2. y_t[:, own_y] = out_act(h_t @ W_yh^T[:, own_y] + b_y)   -> Ys[t+1] | barrier
    backward, step t:  A. dz_t[:, own_y] = (dy_t + dy_rec) out_act'(y_t)          -> DZ[t]   | barrier
       (reverse)       B. dp_t[:, own_h] = (dz_t @ W_yh[:, own_h]) act'(h_t)     -> DP[t]   | barrier
                       C. dy_rec[:, own_y] = dy_direct + dp_t @ W_hy[:, own_y]

Steps past a sequence's end keep y (y_t = y_{t-1}): there dz = 0 and the gradient passes straight
to y_{t-1}. The weight gradients are sums over all steps, formed in torch after the backward kernel:
dW_hy = DP^T y_{t-1}, dW_yh = DZ^T h_t, db_y = sum DZ; dL/dxp = DP.
With NP = 1 (the CPU interpreter) the barriers are no-ops.
"""
from __future__ import annotations

import triton
import triton.language as tl

from .rnn_kernels import _act, _act_grad_from_out, _grid_sync, _recurrent_fwd, _slice


@triton.jit
def jordan_fwd_kernel(xp_ptr, why_t_ptr, wyh_t_ptr, by_ptr, valid_ptr, y_ptr, h_ptr, sync_ptr,
                      T, B, H, O,
                      ACT: tl.constexpr, OUT_ACT: tl.constexpr, HAS_BY: tl.constexpr, HAS_VALID: tl.constexpr,
                      NP: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr, BO: tl.constexpr,
                      BK: tl.constexpr, HP: tl.constexpr, OP: tl.constexpr, RESIDENT: tl.constexpr,
                      PREC: tl.constexpr, hm_ptr, HAS_HMASK: tl.constexpr):
    """xp (T, B, H); why_t (O, H) = W_hy^T; wyh_t (H, O) = W_yh^T; by (O,); y (T + 1, B, O) with y[0]
    the initial state; h (T, B, H) receives every h_t; hm (B, O): recurrent dropout on y entering W_hy."""
    pid = tl.program_id(0)
    jh = pid * BH + tl.arange(0, BH)
    hmask = jh < H
    jy = pid * BO + tl.arange(0, BO)
    ymask = jy < O
    w1 = _slice(why_t_ptr, O, H, jh, hmask, OP, RESIDENT)  # (OP, BH)
    w2 = _slice(wyh_t_ptr, H, O, jy, ymask, HP, RESIDENT)  # (HP, BO)
    if HAS_BY:
        by = tl.load(by_ptr + jy, mask=ymask, other=0.0).to(tl.float32)[None, :]
    rr = tl.arange(0, BB)
    for t in range(0, T):
        for b0 in range(0, B, BB):  # phase 1: h_t of the own units
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & hmask[None, :]
            pre = _recurrent_fwd(y_ptr + t * B * O, rows, rmask, why_t_ptr, w1, jh, hmask, O, H,
                                 BB, BH, BK, OP, RESIDENT, PREC, hm_ptr, HAS_HMASK)
            pre += tl.load(xp_ptr + t * B * H + rows[:, None] * H + jh[None, :], mask=m2, other=0.0).to(tl.float32)
            h = _act(pre, ACT)
            tl.store(h_ptr + t * B * H + rows[:, None] * H + jh[None, :], h.to(h_ptr.dtype.element_ty), mask=m2)
        _grid_sync(sync_ptr, (2 * t + 1) * NP, NP)
        for b0 in range(0, B, BB):  # phase 2: y_t of the own outputs
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & ymask[None, :]
            z = _recurrent_fwd(h_ptr + t * B * H, rows, rmask, wyh_t_ptr, w2, jy, ymask, H, O,
                               BB, BO, BK, HP, RESIDENT, PREC, hm_ptr, False)
            if HAS_BY:
                z += by
            y = _act(z, OUT_ACT)
            own = rows[:, None] * O + jy[None, :]
            if HAS_VALID:
                v = tl.load(valid_ptr + t * B + rows, mask=rmask, other=0)[:, None] != 0
                y = tl.where(v, y, tl.load(y_ptr + t * B * O + own, mask=m2, other=0.0).to(tl.float32))
            tl.store(y_ptr + (t + 1) * B * O + own, y.to(y_ptr.dtype.element_ty), mask=m2)
        _grid_sync(sync_ptr, (2 * t + 2) * NP, NP)


@triton.jit
def jordan_bwd_kernel(why_ptr, wyh_ptr, valid_ptr, y_ptr, h_ptr, dy_ptr, dz_ptr, dp_ptr, dyrec_ptr, dydir_ptr,
                      sync_ptr, T, B, H, O,
                      ACT: tl.constexpr, OUT_ACT: tl.constexpr, HAS_VALID: tl.constexpr, NP: tl.constexpr,
                      BB: tl.constexpr, BH: tl.constexpr, BO: tl.constexpr, BK: tl.constexpr,
                      HP: tl.constexpr, OP: tl.constexpr, RESIDENT: tl.constexpr, PREC: tl.constexpr,
                      hm_ptr, HAS_HMASK: tl.constexpr):
    """why (H, O) = W_hy, wyh (O, H) = W_yh; dy (T, B, O) the upstream gradients of y_1..y_T. Writes dz
    (T, B, O) = dL/d(W_yh h_t + b_y), dp (T, B, H) = dL/dxp_t; dyrec (B, O) ends as dL/dy_0; dydir:
    scratch (B, O)."""
    pid = tl.program_id(0)
    jh = pid * BH + tl.arange(0, BH)
    hmask = jh < H
    jy = pid * BO + tl.arange(0, BO)
    ymask = jy < O
    w_b = _slice(wyh_ptr, O, H, jh, hmask, OP, RESIDENT)  # W_yh[:, own_h] (OP, BH)
    w_c = _slice(why_ptr, H, O, jy, ymask, HP, RESIDENT)  # W_hy[:, own_y] (HP, BO)
    rr = tl.arange(0, BB)
    for s in range(0, T):
        t = T - 1 - s
        for b0 in range(0, B, BB):  # A: dz of the own outputs
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & ymask[None, :]
            own = rows[:, None] * O + jy[None, :]
            dy = tl.load(dy_ptr + t * B * O + own, mask=m2, other=0.0).to(tl.float32)
            dy += tl.load(dyrec_ptr + own, mask=m2, other=0.0)
            y = tl.load(y_ptr + (t + 1) * B * O + own, mask=m2, other=0.0).to(tl.float32)
            dz = dy * _act_grad_from_out(y, OUT_ACT)
            if HAS_VALID:
                v = tl.load(valid_ptr + t * B + rows, mask=rmask, other=0)[:, None] != 0
                dz = tl.where(v, dz, 0.0)
                tl.store(dydir_ptr + own, tl.where(v, 0.0, dy), mask=m2)
            tl.store(dz_ptr + t * B * O + own, dz, mask=m2)
        _grid_sync(sync_ptr, (2 * s + 1) * NP, NP)
        for b0 in range(0, B, BB):  # B: dp of the own hidden units
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & hmask[None, :]
            dh = _recurrent_fwd(dz_ptr + t * B * O, rows, rmask, wyh_ptr, w_b, jh, hmask, O, H,
                                BB, BH, BK, OP, RESIDENT, PREC, hm_ptr, False)
            ownh = rows[:, None] * H + jh[None, :]
            h = tl.load(h_ptr + t * B * H + ownh, mask=m2, other=0.0).to(tl.float32)
            tl.store(dp_ptr + t * B * H + ownh, dh * _act_grad_from_out(h, ACT), mask=m2)
        _grid_sync(sync_ptr, (2 * s + 2) * NP, NP)
        for b0 in range(0, B, BB):  # C: dL/dy_{t-1} of the own outputs
            rows = b0 + rr
            rmask = rows < B
            m2 = rmask[:, None] & ymask[None, :]
            own = rows[:, None] * O + jy[None, :]
            acc = _recurrent_fwd(dp_ptr + t * B * H, rows, rmask, why_ptr, w_c, jy, ymask, H, O,
                                 BB, BO, BK, HP, RESIDENT, PREC, hm_ptr, False)
            if HAS_HMASK:  # W_hy saw y * mask
                acc = acc * tl.load(hm_ptr + own, mask=m2, other=0.0)
            if HAS_VALID:
                acc += tl.load(dydir_ptr + own, mask=m2, other=0.0)
            tl.store(dyrec_ptr + own, acc, mask=m2)
        tl.debug_barrier()  # dyrec is read back by this program only
