"""Parallel scan for linear recurrences h_t = a_t * h_{t-1} + b_t (minGRU, minLSTM), in torch ops.

Three forms, all (T, B, H) tensors, time first, all differentiable by autograd:

* :func:`sequential_scan` -- the plain loop; the truth the others are tested against.
* :func:`doubling_scan` -- Hillis & Steele (1986) doubling in linear space: ceil(log2 T) passes of
  ``(a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2)``. Stable for a in [0, 1] (no division), any sign of b.
* :func:`chunked_log_scan` -- the log-space scan of Feng et al. 2024 (appendix; Heinsen 2023),
  ``h = exp(a* + logcumsumexp(log b - a*))`` with ``a* = cumsum(log a)``, applied inside chunks of
  ``chunk`` steps so that |a*| stays small (over a whole long sequence a* reaches -1e4 and the
  final ``a* + logcumsumexp`` loses the low digits of h to cancellation), then the chunk ends are
  carried across chunks by :func:`doubling_scan`. Needs b > 0 (log b given).

:func:`heinsen_log_scan` is the unchunked log-space scan as commonly written (the benchmark's
"plain-torch log-space scan" baseline).

Low-precision inputs are scanned in float32 and cast back.

Layout of the chunked scan (T padded to nC * L)::

    time   |<-- chunk 0 -->|<-- chunk 1 -->| ... |<-- chunk nC-1 -->|
    local  h~ scan, h0=0   h~ scan, h0=0         h~ scan, h0=0       (log space, parallel)
    carry  H_0 = A_0 h0 + h~_0,  H_c = A_c H_{c-1} + h~_c          (doubling scan over chunks)
    h      h~_t + exp(a*_t) * H_{c-1}                               (one fused add)
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

#: log b of a padded or masked step: exp() of it is 0 but it stays finite (no NaN in backward)
_LOG_ZERO = -1.0e30


def _compute_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def sequential_scan(a: Tensor, b: Tensor, h0: Optional[Tensor] = None) -> Tensor:
    """h_t = a_t * h_{t-1} + b_t step by step; a, b (T, B, H), h0 (B, H) or None (zeros)."""
    h = torch.zeros_like(b[0]) if h0 is None else h0
    out = []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)  # (T, B, H)


def doubling_scan(a: Tensor, b: Tensor, h0: Optional[Tensor] = None) -> Tensor:
    """Hillis-Steele inclusive scan of (a, b) along dim 0 in linear space; returns h (T, ...)."""
    if h0 is not None:
        b = torch.cat([b[:1] + a[:1] * h0.unsqueeze(0), b[1:]])  # fold h0 into the first step
    T = a.shape[0]
    shift = 1
    while shift < T:
        # element t combines with t - shift: (a', b') = (a_{t-s} a_t, a_t b_{t-s} + b_t)
        b = torch.cat([b[:shift], torch.addcmul(b[shift:], a[shift:], b[:-shift])])
        a = torch.cat([a[:shift], a[shift:] * a[:-shift]])
        shift *= 2
    return b


def heinsen_log_scan(log_a: Tensor, log_b: Tensor, h0: Optional[Tensor] = None) -> Tensor:
    """Unchunked log-space scan (Heinsen 2023), b > 0, h0 >= 0 or None; the benchmark baseline."""
    if h0 is not None:
        log_b = torch.cat([torch.log(h0).unsqueeze(0), log_b])
        log_a = torch.cat([torch.zeros_like(log_a[:1]), log_a])
    a_star = torch.cumsum(log_a, dim=0)
    h = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=0))
    return h[1:] if h0 is not None else h


def chunked_log_scan(log_a: Tensor, log_b: Tensor, h0: Optional[Tensor] = None,
                     chunk: int = 64) -> Tensor:
    """Log-space scan inside chunks of ``chunk`` steps, carried across chunks in linear space.

    log_a, log_b: (T, B, H) with a = exp(log_a) in [0, 1], b = exp(log_b) > 0; h0 (B, H) of any
    sign or None. Returns h (T, B, H) in the input dtype.
    """
    dtype = log_a.dtype
    cd = _compute_dtype(log_a)
    log_a, log_b = log_a.to(cd), log_b.to(cd)
    T = log_a.shape[0]
    rest = log_a.shape[1:]
    L = max(1, min(chunk, T))
    nC = math.ceil(T / L)
    pad = nC * L - T
    if pad:
        log_a = torch.cat([log_a, log_a.new_zeros((pad,) + rest)])
        log_b = torch.cat([log_b, log_b.new_full((pad,) + rest, _LOG_ZERO)])
    la = log_a.reshape((nC, L) + rest)
    lb = log_b.reshape((nC, L) + rest)
    a_star = torch.cumsum(la, dim=1)  # (nC, L, ...) log of the decay since the chunk start
    local = torch.exp(a_star + torch.logcumsumexp(lb - a_star, dim=1))  # scan with h0 = 0
    decay = torch.exp(a_star)  # (nC, L, ...)
    if nC > 1 or h0 is not None:
        ends = doubling_scan(decay[:, -1], local[:, -1],
                             None if h0 is None else h0.to(cd))  # (nC, ...) state at chunk ends
        if h0 is None:
            carry_in = torch.cat([torch.zeros_like(ends[:1]), ends[:-1]])
        else:
            carry_in = torch.cat([h0.to(cd).unsqueeze(0), ends[:-1]])
        local = torch.addcmul(local, decay, carry_in.unsqueeze(1))
    h = local.reshape((nC * L,) + rest)[:T]
    return h.to(dtype)


def freeze_invalid(log_a: Tensor, log_b: Tensor, valid: Optional[Tensor]):
    """Steps where ``valid`` (T, B, 1) is False become a = 1, b = 0: the state stays frozen."""
    if valid is None:
        return log_a, log_b
    return (torch.where(valid, log_a, torch.zeros_like(log_a)),
            torch.where(valid, log_b, torch.full_like(log_b, _LOG_ZERO)))


def freeze_invalid_linear(a: Tensor, b: Tensor, valid: Optional[Tensor]):
    """Linear-space form of :func:`freeze_invalid`."""
    if valid is None:
        return a, b
    return torch.where(valid, a, torch.ones_like(a)), torch.where(valid, b, torch.zeros_like(b))


# -- the engine -----------------------------------------------------------------------------------

from .base import DirectionJob, DirectionResult, Engine, Request, State  # noqa: E402

#: families whose cell is a linear recurrence with input-only gates (rnnkit.cells.minrnn)
SCAN_FAMILIES = ("mingru", "minlstm")


def scan_features_reason(req: Request) -> Optional[str]:
    """Why a parallel scan cannot serve this request's features (None: it can)."""
    if req.family not in SCAN_FAMILIES:
        return (f"a parallel scan needs gates that depend on the input only "
                f"({'/'.join(SCAN_FAMILIES)}); {req.family} recurs through a matrix")
    if req.probe_grads or req.record_gates:
        return "gradient probes and gate traces need a step-by-step engine"
    if req.training and req.regularization.recurrent_dropout:
        return "recurrent dropout is not defined for minGRU/minLSTM (no recurrent matmul)"
    return None


class ScanEngine(Engine):
    """Whole-sequence parallel scan for minGRU/minLSTM in torch ops (any device, autograd).

    Positive candidates (Feng et al.'s g) use :func:`chunked_log_scan`; signed candidates and
    zoneout (state' = z s + (1-z)(a s + b) is again linear: a' = z + (1-z) a, b' = (1-z) b) use
    :func:`doubling_scan`. Steps past a sequence's length get a = 1, b = 0: the state freezes.
    """

    name = "scan"
    scope = "direction"

    def __init__(self, chunk: int = 64):
        self.chunk = chunk

    def supports(self, req: Request) -> Optional[str]:
        return scan_features_reason(req)

    def coefficients_h(self, cell, xp: Tensor, h0: Tensor, job: DirectionJob) -> Tensor:
        """h (T, B, H) of the whole sequence from the projected input xp (T, B, G)."""
        zone = job.masks.zoneout
        if cell.config.positive_candidate and zone is None:
            log_a, log_b = cell.scan_log_coefficients(xp)  # (T, B, H) each
            log_a, log_b = freeze_invalid(log_a, log_b, job.valid)
            return chunked_log_scan(log_a, log_b, h0, self.chunk)
        cd = _compute_dtype(xp)
        a, b = cell.scan_coefficients(xp.to(cd))
        if zone is not None:
            z = zone[0].to(cd)  # (T, B, H) probability of keeping the old state
            a, b = z + (1 - z) * a, (1 - z) * b
        a, b = freeze_invalid_linear(a, b, job.valid)
        return doubling_scan(a, b, h0.to(cd)).to(xp.dtype)

    def run_direction(self, cell, x: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
        xp = cell.project_input(x)  # (T, B, G)
        h = self.coefficients_h(cell, xp, state0[0], job)  # (T, B, H)
        return finish_direction(h, job)


def finish_direction(h: Tensor, job: DirectionJob) -> DirectionResult:
    """Pack a scanned h (T, B, H), frozen past each length, as the layer expects it."""
    final = (h[-1],)  # frozen past each end: the last row is each sequence's own final state
    out = h * job.valid if job.valid is not None else h
    return DirectionResult(hidden=out, state=final, states=(out,) if job.want_states else None)
