"""Explicit BPTT for the GRU, both variants (equations in ``rnnkit/cells/gru.py``).

reset_after=True (cuDNN / torch.nn.GRU; Cho et al. 2014 as implemented by cuDNN)::

    gh  = LN?(h_in W_hh^T) + b_hh                      (B, 3H) = [hr, hz, hn]
    r   = sigmoid(xr + hr)      z = sigmoid(xz + hz)    n = tanh(xn + r * hn)

reset_after=False (Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder")::

    r, z = sigmoid([xr, xz] + LN?(h_in W_rz^T) + b_rz)
    n    = tanh(xn + LN?((r * h_in) W_n^T) + b_n)

and in both ``new = (1 - z) * n + z * h_{t-1}``, h_in = h_{t-1} * h_mask. Zoneout and the lengths
freeze follow (``_common``). Backward (Werbos 1990, "Backpropagation through time"), with
K_t the keep weight of ``_common`` and d = dL/dh_t the total gradient at step t::

    dh_{t-1} = d * (K + (1-K) z) + (dgh @ W_hh) * h_mask   (+ the r * h_in path for reset_after=False)
    da_n = d (1-K)(1-z)(1-n^2)    da_z = d (1-K)(h_{t-1}-n) z(1-z)    da_r = dr r(1-r)

Layer normalisation (Ba et al. 2016) on the recurrent pre-activations has its backward written out:
du = rstd * (g - mean(g) - x_hat * mean(g * x_hat)) with g = dy * gamma.

Speed (CPU): per step the forward pass is one addmm and five in-place element-wise ops into
preallocated (T, B, .) buffers; the backward pass computes the gate coefficients for a chunk of steps
at a time (``_common.time_chunks``: in cache, no T-sized temporaries) and per step does one
broadcast multiply, one addcmul and one addmm. dW_hh is one matmul over all steps after the loop.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..base import DirectionJob, DirectionResult, Request, without_autocast
from ._common import (common_reason, grad_buffer, keep_weight, mix_, run_single_state, step_views,
                      time_chunks)

LN_EPS = 1e-5  # rnnkit.cells.base.layer_norm's default


def supports(cell, req: Request) -> Optional[str]:
    return common_reason(req)


def run(cell, x: Tensor, state0, job: DirectionJob, function=None) -> DirectionResult:
    """One direction of one layer. function: the autograd.Function running the time loop, with
    ``GRUFunction``'s signature (default GRUFunction; the cpp engine passes its C++ one)."""
    cfg = cell.config
    ln = cfg.layer_norm
    function = function or GRUFunction

    def apply(xp, ctx, s0, h_mask, zone, valid):
        return function.apply(
            xp, ctx.weights["weight_hh"], cell.bias_hh,
            cell.ln_hh_weight if ln else None, cell.ln_hh_bias if ln else None,
            cell.ln_hn_weight if ln and not cfg.reset_after else None,
            cell.ln_hn_bias if ln and not cfg.reset_after else None,
            s0, h_mask, zone, valid, cfg.reset_after)

    return run_single_state(cell, x, state0, job, apply)


# -- layer normalisation pieces ---------------------------------------------------------------
def _ln_step(u: Tensor, weight: Tensor, bias: Tensor, means: list, rstds: list) -> Tensor:
    """LN of one step's (B, G) pre-activations; keeps mean and 1/std (B, 1) for the backward."""
    y, mean, rstd = torch.native_layer_norm(u, (u.shape[-1],), weight, bias, LN_EPS)
    means.append(mean)
    rstds.append(rstd)
    return y  # (B, G)


def _ln_normalised(U: Tensor, means: list, rstds: list):
    """x_hat (T, B, G) and rstd (T, B, 1) of all steps, from the saved pre-activations."""
    mean = torch.stack(means).to(U.dtype)  # (T, B, 1)
    rstd = torch.stack(rstds).to(U.dtype)  # (T, B, 1)
    return (U - mean) * rstd, rstd


def _ln_backward_step(dy: Tensor, weight: Tensor, xhat: Tensor, rstd: Tensor, out: Tensor) -> Tensor:
    """du (B, G) into ``out`` from dy = dL/dLN(u) (B, G): rstd * (g - mean(g) - x_hat mean(g x_hat))."""
    g = dy * weight  # (B, G)
    c1 = g.mean(1, keepdim=True)  # (B, 1)
    c2 = (g * xhat).mean(1, keepdim=True)  # (B, 1)
    torch.sub(g, c1, out=out)
    out.addcmul_(xhat, c2, value=-1)
    return out.mul_(rstd)


def _ln_param_grads(dY: Tensor, xhat: Tensor):
    """(dgamma, dbeta) from dL/dLN (T, B, G) and x_hat (T, B, G), summed over steps and batch."""
    return (dY * xhat).sum((0, 1)), dY.sum((0, 1))


# -- the Function -------------------------------------------------------------------------------
class GRUFunction(torch.autograd.Function):
    """xp (T, B, 3H), w_hh (3H, H), b_hh (3H) or None, LN weights or None, s0 (B, H),
    h_mask (B, H) or None, zone (T, B|1, H|1) or None, valid (T, B, 1) bool or None
    -> (per-step states (T, B, H), final state (B, H))."""

    @staticmethod
    def forward(ctx, xp, w, b, ln_w, ln_b, ln_hn_w, ln_hn_b, s0, m, zone, valid, reset_after):
        T, B, G = xp.shape
        H = G // 3
        slots = T if any(ctx.needs_input_grad) else 1  # no backward: one reused slot per buffer
        S = xp.new_empty(T + 1, B, H)  # (T+1, B, H) S[0] = s0
        S[0].copy_(s0)
        fwd = _forward_after if reset_after else _forward_before
        saved = fwd(xp, w, b, ln_w, ln_b, ln_hn_w, ln_hn_b, S, m, zone, valid, slots)
        ctx.reset_after = reset_after
        ctx.has_b = b is not None
        ctx.means_rstds = saved.pop("stats")
        ctx.xp_shape = xp.shape
        ctx.save_for_backward(w, b, ln_w, ln_hn_w, S, m, zone, valid, *saved.values())
        ctx.saved_names = tuple(saved)
        return S[1:], S[T].clone()

    @staticmethod
    @without_autocast
    @once_differentiable  # the backward pass itself is not differentiable: say so if asked
    def backward(ctx, grad_states, grad_final):
        w, b, ln_w, ln_hn_w, S, m, zone, valid, *rest = ctx.saved_tensors
        bufs = dict(zip(ctx.saved_names, rest))
        dS = grad_buffer(grad_states, grad_final)  # (T+1, B, H)
        K = keep_weight(zone, valid, S.dtype)
        bwd = _backward_after if ctx.reset_after else _backward_before
        dxp, dw, db, dln = bwd(ctx.xp_shape, w, ln_w, ln_hn_w, S, m, K, dS, bufs, ctx.means_rstds)
        return (dxp, dw, db if ctx.has_b else None, *dln, dS[0], None, None, None, None)


# -- reset gate after the matmul (cuDNN) --------------------------------------------------------
def _forward_after(xp, w, b, ln_w, ln_b, ln_hn_w, ln_hn_b, S, m, zone, valid, slots):
    T, B, G = xp.shape
    H = G // 3
    GH = xp.new_empty(slots, B, G)  # (T, B, 3H) holds [r, z, hn] after each step
    N = xp.new_empty(slots, B, H)   # (T, B, H) candidate n
    U = xp.new_empty(slots, B, G) if ln_w is not None else None  # (T, B, 3H) pre-LN h_in W^T
    ghv, nv, sv = step_views(GH, T), step_views(N, T), S.unbind(0)
    rzv, rv, zv, hnv = (step_views(GH[..., sl], T) for sl in
                        (slice(0, 2 * H), slice(0, H), slice(H, 2 * H), slice(2 * H, G)))
    xrz, xn = xp[..., :2 * H].unbind(0), xp[..., 2 * H:].unbind(0)  # (B, 2H), (B, H) per step
    zmv = zone.unbind(0) if zone is not None else [None] * T
    vv = valid.unbind(0) if valid is not None else [None] * T
    wt = w.t()  # (H, 3H)
    means, rstds = [], []
    if ln_w is not None:
        uv = step_views(U, T)
        beta = ln_b + b if b is not None else ln_b  # b_hh adds after the LN: fold it into beta
    for t in range(T):
        h = sv[t]  # (B, H)
        hin = h * m if m is not None else h
        gh = ghv[t]  # (B, 3H)
        if ln_w is not None:
            gh.copy_(_ln_step(torch.mm(hin, wt, out=uv[t]), ln_w, beta, means, rstds))
        elif b is not None:
            torch.addmm(b, hin, wt, out=gh)
        else:
            torch.mm(hin, wt, out=gh)
        rzv[t].add_(xrz[t]).sigmoid_()  # [r, z]
        n = torch.addcmul(xn[t], rv[t], hnv[t], out=nv[t]).tanh_()  # (B, H)
        mix_(torch.lerp(n, h, zv[t], out=sv[t + 1]), h, zmv[t], vv[t])  # (1-z) n + z h
    return {"stats": (means, rstds), "GH": GH, "N": N, **({"U": U} if U is not None else {})}


def _backward_after(shape, w, ln_w, ln_hn_w, S, m, K, dS, bufs, stats):
    T, B, G = shape
    H = G // 3
    GH, n = bufs["GH"], bufs["N"]
    dGH = S.new_empty(T, B, 3, H)  # (T, B, 3, H) first the coefficients M, then dL/dgh = d * M in place
    A = S.new_empty(T, B, H)  # (T, B, H) d h / d a_n: dL/dxn = d * A
    ln = ln_w is not None
    dsv, dsu = dS.unbind(0), dS.unsqueeze(2).unbind(0)  # (B, H), (B, 1, H)
    dgv, dgf = dGH.unbind(0), dGH.view(T, B, G).unbind(0)
    if ln:
        xhat, rstd = _ln_normalised(bufs["U"], *stats)
        xhv, rsv = xhat.unbind(0), rstd.unbind(0)
        dU = S.new_empty(T, B, G)  # (T, B, 3H) dL/du, u = h_in W^T
        duv = dU.unbind(0)
    tmp = S.new_empty(B, H) if m is not None else None
    for lo, hi in time_chunks(T, B * H):
        direct = _coeffs_after(GH[lo:hi], n[lo:hi], S[lo:hi], None if K is None else K[lo:hi],
                               dGH[lo:hi], A[lo:hi]).unbind(0)  # (B, H) d h_t / d h_{t-1}, direct paths
        for t in range(hi - 1, lo - 1, -1):
            d = dsv[t + 1]  # (B, H) total dL/dh_t
            dgv[t].mul_(dsu[t + 1])
            src = _ln_backward_step(dgf[t], ln_w, xhv[t], rsv[t], duv[t]) if ln else dgf[t]  # (B, 3H)
            prev = dsv[t]
            prev.addcmul_(d, direct[t - lo])
            if m is None:
                prev.addmm_(src, w)
            else:
                prev.addcmul_(torch.mm(src, w, out=tmp), m)
    dG = dGH.view(T, B, G)
    hin = S[:-1] * m if m is not None else S[:-1]  # (T, B, H)
    dw = (dU if ln else dG).view(T * B, G).t().mm(hin.reshape(T * B, H))  # (3H, H) one matmul
    db = dG.sum((0, 1))  # (3H,)
    dln = (*_ln_param_grads(dG, xhat), None, None) if ln else (None, None, None, None)
    torch.mul(A, dS[1:], out=dGH[:, :, 2])  # dL/dxp: da_n (r multiplies hn, not xn), in place
    return dG, dw, db, dln


def _coeffs_after(GH, n, hprev, K, M, A) -> Tensor:
    """For a chunk of C steps: M (C, B, 3, H) = d h_t / d [a_r, a_z, hn] and A (C, B, H) = d h_t / d a_n,
    written in place; returns d h_t / d h_{t-1} through the direct paths (C, B, H)."""
    H = n.shape[-1]
    r, z, hn = GH[..., :H], GH[..., H:2 * H], GH[..., 2 * H:]  # (C, B, H) each
    Mr, Mz, Mn = M.unbind(2)
    omz, new_w = _candidate_coeff(z, n, K, out=A)
    _update_coeff(hprev, n, z, omz, new_w, out=Mz)  # d h / d a_z
    torch.mul(A, r, out=Mn)  # d h / d hn
    torch.mul(Mn, hn, out=Mr).addcmul_(Mr, r, value=-1)  # d h / d a_r = A r (1 - r) hn
    return z if K is None else torch.addcmul(K, new_w, z)


def _candidate_coeff(z: Tensor, n: Tensor, K: Optional[Tensor], out: Tensor):
    """A = (1 - K)(1 - z)(1 - n^2) = d h_t / d a_n into ``out``; returns (1 - z, 1 - K or None)."""
    omz = 1 - z
    torch.addcmul(omz, omz * n, n, value=-1, out=out)  # (1 - z)(1 - n^2)
    new_w = None
    if K is not None:
        new_w = 1 - K
        out.mul_(new_w)
    return omz, new_w


def _update_coeff(hprev: Tensor, n: Tensor, z: Tensor, omz: Tensor, new_w: Optional[Tensor], out: Tensor) -> Tensor:
    """d h_t / d a_z = (1 - K)(h_{t-1} - n) z (1 - z) into ``out``."""
    torch.sub(hprev, n, out=out).mul_(z).mul_(omz)
    return out.mul_(new_w) if new_w is not None else out


# -- reset gate before the matmul (Cho et al. 2014) ---------------------------------------------
def _forward_before(xp, w, b, ln_w, ln_b, ln_hn_w, ln_hn_b, S, m, zone, valid, slots):
    T, B, G = xp.shape
    H = G // 3
    ln = ln_w is not None
    RZ = xp.new_empty(slots, B, 2 * H)  # (T, B, 2H) [r, z]
    RH = xp.new_empty(slots, B, H)      # (T, B, H) r * h_in
    N = xp.new_empty(slots, B, H)       # (T, B, H) candidate n
    rzv, rhv, nv, sv = step_views(RZ, T), step_views(RH, T), step_views(N, T), S.unbind(0)
    rv, zv = step_views(RZ[..., :H], T), step_views(RZ[..., H:], T)
    zmv = zone.unbind(0) if zone is not None else [None] * T
    vv = valid.unbind(0) if valid is not None else [None] * T
    wrz, wn = w[:2 * H].t(), w[2 * H:].t()  # (H, 2H), (H, H)
    if ln:
        Urz, Un = xp.new_empty(slots, B, 2 * H), xp.new_empty(slots, B, H)  # pre-LN products
        urzv, unv = step_views(Urz, T), step_views(Un, T)
        beta_rz = ln_b + b[:2 * H] if b is not None else ln_b
        beta_n = ln_hn_b + b[2 * H:] if b is not None else ln_hn_b
        xrz, xn = xp[..., :2 * H].unbind(0), xp[..., 2 * H:].unbind(0)
    else:  # b_hh is constant over time: fold it into the input projections
        xrz = (xp[..., :2 * H] + b[:2 * H] if b is not None else xp[..., :2 * H]).unbind(0)
        xn = (xp[..., 2 * H:] + b[2 * H:] if b is not None else xp[..., 2 * H:]).unbind(0)
    stats_rz, stats_n = ([], []), ([], [])
    for t in range(T):
        h = sv[t]  # (B, H)
        hin = h * m if m is not None else h
        if ln:
            y = _ln_step(torch.mm(hin, wrz, out=urzv[t]), ln_w, beta_rz, *stats_rz)
            torch.add(xrz[t], y, out=rzv[t])
        else:
            torch.addmm(xrz[t], hin, wrz, out=rzv[t])
        rzv[t].sigmoid_()
        rh = torch.mul(rv[t], hin, out=rhv[t])  # (B, H)
        if ln:
            torch.add(xn[t], _ln_step(torch.mm(rh, wn, out=unv[t]), ln_hn_w, beta_n, *stats_n), out=nv[t])
        else:
            torch.addmm(xn[t], rh, wn, out=nv[t])
        n = nv[t].tanh_()
        mix_(torch.lerp(n, h, zv[t], out=sv[t + 1]), h, zmv[t], vv[t])
    saved = {"stats": (stats_rz, stats_n), "RZ": RZ, "RH": RH, "N": N}
    if ln:
        saved.update(Urz=Urz, Un=Un)
    return saved


def _backward_before(shape, w, ln_w, ln_hn_w, S, m, K, dS, bufs, stats):
    T, B, G = shape
    H = G // 3
    RZ, RH, n = bufs["RZ"], bufs["RH"], bufs["N"]
    hin = S[:-1] * m if m is not None else S[:-1]  # (T, B, H)
    dG = S.new_empty(T, B, 3, H)  # (T, B, 3, H) [da_r, da_z, da_n]; [z, n] hold their coefficients first
    ln = ln_w is not None
    dsv, dsu = dS.unbind(0), dS.unsqueeze(2).unbind(0)
    dzn = dG[:, :, 1:].unbind(0)  # (B, 2, H)
    dar, dan = dG[:, :, 0].unbind(0), dG[:, :, 2].unbind(0)  # (B, H) each
    darz = dG.view(T, B, G)[..., :2 * H].unbind(0)  # (B, 2H)
    wrz, wn = w[:2 * H], w[2 * H:]  # (2H, H), (H, H)
    if ln:
        (mrz, srz), (mn, sn) = stats
        xhat_rz, rstd_rz = _ln_normalised(bufs["Urz"], mrz, srz)
        xhat_n, rstd_n = _ln_normalised(bufs["Un"], mn, sn)
        dUrz, dUn = S.new_empty(T, B, 2 * H), S.new_empty(T, B, H)  # dL/d pre-LN products
        lnrz = (xhat_rz.unbind(0), rstd_rz.unbind(0), dUrz.unbind(0))
        lnn = (xhat_n.unbind(0), rstd_n.unbind(0), dUn.unbind(0))
    drh = S.new_empty(B, H)  # dL/d(r h_in) of one step
    tmp = S.new_empty(B, H) if m is not None else None
    for lo, hi in time_chunks(T, B * H):
        direct, Cr, rm = (c.unbind(0) for c in _coeffs_before(
            RZ[lo:hi], n[lo:hi], S[lo:hi], hin[lo:hi], None if K is None else K[lo:hi], m, dG[lo:hi]))
        for t in range(hi - 1, lo - 1, -1):
            d = dsv[t + 1]  # (B, H) total dL/dh_t
            dzn[t].mul_(dsu[t + 1])  # [da_z, da_n] = d * coefficients, in place
            src_n = _ln_backward_step(dan[t], ln_hn_w, lnn[0][t], lnn[1][t], lnn[2][t]) if ln else dan[t]
            torch.mm(src_n, wn, out=drh)
            torch.mul(drh, Cr[t - lo], out=dar[t])
            src_rz = _ln_backward_step(darz[t], ln_w, lnrz[0][t], lnrz[1][t], lnrz[2][t]) if ln else darz[t]
            prev = dsv[t]
            prev.addcmul_(d, direct[t - lo])
            prev.addcmul_(drh, rm[t - lo])
            if m is None:
                prev.addmm_(src_rz, wrz)
            else:
                prev.addcmul_(torch.mm(src_rz, wrz, out=tmp), m)
    dGf = dG.view(T, B, G)
    dw = S.new_empty(G, H)  # (3H, H): one matmul per weight block over all steps
    drz = dUrz if ln else dGf[..., :2 * H]
    dnn = dUn if ln else dGf[..., 2 * H:]
    torch.mm(drz.reshape(T * B, 2 * H).t(), hin.reshape(T * B, H), out=dw[:2 * H])
    torch.mm(dnn.reshape(T * B, H).t(), RH.reshape(T * B, H), out=dw[2 * H:])
    db = dGf.sum((0, 1))  # (3H,)
    if ln:
        gw_rz, gb_rz = _ln_param_grads(dGf[..., :2 * H], xhat_rz)
        gw_n, gb_n = _ln_param_grads(dGf[..., 2 * H:], xhat_n)
        dln = (gw_rz, gb_rz, gw_n, gb_n)
    else:
        dln = (None, None, None, None)
    return dGf, dw, db, dln


def _coeffs_before(RZ, n, hprev, hin, K, m, dG):
    """For a chunk of C steps: d h_t / d a_z and d h_t / d a_n written into dG[:, :, 1:] (C, B, 2, H);
    returns (d h_t / d h_{t-1} through the direct paths, Cr = h_in r (1 - r), r * h_mask), each (C, B, H)."""
    H = n.shape[-1]
    r, z = RZ[..., :H], RZ[..., H:]  # (C, B, H)
    omz, new_w = _candidate_coeff(z, n, K, out=dG[:, :, 2])
    _update_coeff(hprev, n, z, omz, new_w, out=dG[:, :, 1])
    direct = z if K is None else torch.addcmul(K, new_w, z)
    Cr = hin * r  # da_r = d(r h_in) * Cr
    Cr.addcmul_(Cr, r, value=-1)
    return direct, Cr, (r * m if m is not None else r)
