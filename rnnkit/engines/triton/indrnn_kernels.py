"""IndRNN (Li et al. 2018) over a whole sequence: h_t = act(xp_t + u * h_{t-1}), u a vector.

No matrix couples the units, so no barrier: one program owns one batch row and BC units and walks
the sequence; the backward walks it in reverse with g_t = dh_t + u * act'_{t+1} g_{t+1}:

    dpre_t = g_t * act'(h_t)      du += dpre_t * h_{t-1}      g_{t-1} += u * dpre_t
Steps with valid == 0 keep the state (h_t = h_{t-1}): there the gradient passes straight through.
"""
from __future__ import annotations

import triton
import triton.language as tl

from .rnn_kernels import _act, _act_grad_from_out


@triton.jit
def indrnn_fwd_kernel(xp_ptr, u_ptr, valid_ptr, h_ptr, T, B, H,
                      ACT: tl.constexpr, HAS_VALID: tl.constexpr, BC: tl.constexpr):
    """h_ptr: (T + 1, B, H), h[0] holds h0 on entry."""
    b = tl.program_id(0)
    cols = tl.program_id(1) * BC + tl.arange(0, BC)
    cm = cols < H
    u = tl.load(u_ptr + cols, mask=cm, other=0.0).to(tl.float32)
    h = tl.load(h_ptr + b * H + cols, mask=cm, other=0.0).to(tl.float32)
    for t in range(0, T):
        x = tl.load(xp_ptr + (t * B + b) * H + cols, mask=cm, other=0.0).to(tl.float32)
        new = _act(x + u * h, ACT)
        if HAS_VALID:
            v = tl.load(valid_ptr + t * B + b) != 0
            new = tl.where(v, new, h)
        h = new
        tl.store(h_ptr + ((t + 1) * B + b) * H + cols, h.to(h_ptr.dtype.element_ty), mask=cm)


@triton.jit
def indrnn_bwd_kernel(u_ptr, valid_ptr, h_ptr, dh_ptr, dxp_ptr, du_ptr, dh0_ptr, T, B, H,
                      ACT: tl.constexpr, HAS_VALID: tl.constexpr, BC: tl.constexpr):
    """dxp (T, B, H) float32; du (B, H) per-row partial sums; dh0 (B, H)."""
    b = tl.program_id(0)
    cols = tl.program_id(1) * BC + tl.arange(0, BC)
    cm = cols < H
    u = tl.load(u_ptr + cols, mask=cm, other=0.0).to(tl.float32)
    g = tl.zeros([BC], dtype=tl.float32)
    du = tl.zeros([BC], dtype=tl.float32)
    for s in range(0, T):
        t = T - 1 - s
        g += tl.load(dh_ptr + (t * B + b) * H + cols, mask=cm, other=0.0).to(tl.float32)
        y = tl.load(h_ptr + ((t + 1) * B + b) * H + cols, mask=cm, other=0.0).to(tl.float32)
        hp = tl.load(h_ptr + (t * B + b) * H + cols, mask=cm, other=0.0).to(tl.float32)
        dpre = g * _act_grad_from_out(y, ACT)
        if HAS_VALID:
            v = tl.load(valid_ptr + t * B + b) != 0
            dpre = tl.where(v, dpre, 0.0)
            g = tl.where(v, u * dpre, g)
        else:
            g = u * dpre
        du += dpre * hp
        tl.store(dxp_ptr + (t * B + b) * H + cols, dpre, mask=cm)
    tl.store(du_ptr + b * H + cols, du, mask=cm)
    tl.store(dh0_ptr + b * H + cols, g, mask=cm)
