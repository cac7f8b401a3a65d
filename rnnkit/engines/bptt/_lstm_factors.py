"""Per-step factors of the LSTM backward pass (``_lstm_function``), computed a chunk of steps at a
time into small buffers reused from chunk to chunk, so that they stay in cache instead of making
a dozen passes over (T, B, 4H) arrays in memory; the peephole and LayerNorm parameter gradients
are reduced per chunk while its data is still hot.

With i, f, g, o the gate activations, tc = tanh(c_new) (or tanh(LN(c_new))) and dhf = dL/d(o * tc):

    dL/dpre_o = dhf * TCDo,                   TCDo = tc * o (1 - o)
    dL/dc_new += dhf * Q,                     Q = o (1 - tc^2)   [LN on c: * w_c * rstd_c, then the
                                                                  LN backward step with c_hat]
    dL/dpre_{i,f,g} = dL/dc_new * PD,         PD = [g i (1 - i), c_{t-1} f (1 - f), i (1 - g^2)]
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

#: a chunk holds at most this many units (steps * B * H) per (K, B, H) buffer: about 128 KiB in float32
CHUNK_UNITS = 32768


class ChunkFactors:
    """Factors for steps [a, b) of one backward pass, and the parameter-gradient sums they feed."""

    def __init__(self, G: Tensor, TC: Tensor, C: Tensor, Cn: Tensor, c0: Tensor,
                 peep: Optional[Tensor], ln_c: Optional[tuple], ln_hh: Optional[tuple]):
        """G (T, B, 4H) activations, TC (T, B, H), C (T, B, H) c states, Cn (T, B, H) c_new, c0 (B, H);
        ln_c: (w_c (H,), mean (T, B, 1), rstd (T, B, 1)) or None; ln_hh: (R (T, B, 4H), mean, rstd) or None."""
        T, B, G4 = G.shape
        H = G4 // 4
        self.G, self.TC, self.C, self.Cn, self.c0, self.H = G, TC, C, Cn, c0, H
        self.ln_c, self.ln_hh, self.peep = ln_c, ln_hh, peep
        self.K = K = max(1, min(T, CHUNK_UNITS // (B * H)))
        new = G.new_empty
        self.TCDo, self.Q, self.tmp, self.c_prev = new(K, B, H), new(K, B, H), new(K, B, H), new(K, B, H)
        self.PD = new(K, B, 3, H)  # (K, B, 3, H)
        self.sq = new(K, B, 2 * H)  # (K, B, 2H)
        zeros = G.new_zeros
        if ln_c is not None:
            self.Q0, self.chat, self.dhf = new(K, B, H), new(K, B, H), new(K, B, H)
            self.d_ln_c_w, self.d_ln_c_b = zeros(H), zeros(H)
        if ln_hh is not None:
            self.rhat = new(K, B, G4)  # (K, B, 4H)
            self.d_ln_hh_w, self.d_ln_hh_b = zeros(G4), zeros(G4)
        if peep is not None:
            self.d_peep = zeros(3, H)

    def fill(self, a: int, b: int) -> dict:
        """Compute the factors of steps [a, b); returns name -> list of per-step views (index t - a)."""
        n, H, G = b - a, self.H, self.G
        i_f, i, g, o = G[a:b, :, :2 * H], G[a:b, :, :H], G[a:b, :, 2 * H:3 * H], G[a:b, :, 3 * H:]  # (n, B, .)
        tc, tmp = self.TC[a:b], self.tmp[:n]  # (n, B, H)
        c_prev = self.c_prev[:n]  # (n, B, H)
        if a == 0:
            c_prev[0] = self.c0
            c_prev[1:] = self.C[:b - 1]
        else:
            c_prev.copy_(self.C[a - 1:b - 1])
        torch.sub(o, torch.mul(o, o, out=tmp), out=tmp)  # o (1 - o)
        TCDo = torch.mul(tc, tmp, out=self.TCDo[:n])
        Q = torch.addcmul(o, o, torch.mul(tc, tc, out=tmp), value=-1, out=self.Q[:n])  # o (1 - tc^2)
        out = {"TCDo": TCDo.unbind(0), "f": G[a:b, :, H:2 * H].unbind(0)}
        if self.ln_c is not None:
            w_c, mu_c, rs_c = self.ln_c
            self.Q0[:n].copy_(Q)
            Q.mul_(w_c).mul_(rs_c[a:b])
            chat = torch.sub(self.Cn[a:b], mu_c[a:b], out=self.chat[:n]).mul_(rs_c[a:b])  # (n, B, H)
            out["chat"], out["dhf"] = chat.unbind(0), self.dhf[:n].unbind(0)
        out["Q"] = Q.unbind(0)
        sq = torch.mul(i_f, i_f, out=self.sq[:n])
        torch.sub(i_f, sq, out=sq)  # (n, B, 2H) [i (1 - i), f (1 - f)]
        PD = self.PD[:n]
        torch.mul(sq[:, :, :H], g, out=PD[:, :, 0])
        torch.mul(sq[:, :, H:], c_prev, out=PD[:, :, 1])
        torch.addcmul(i, i, torch.mul(g, g, out=tmp), value=-1, out=PD[:, :, 2])  # i (1 - g^2)
        out["PD"] = PD.unbind(0)
        if self.ln_hh is not None:
            R, mu_r, rs_r = self.ln_hh
            rhat = torch.sub(R[a:b], mu_r[a:b], out=self.rhat[:n]).mul_(rs_r[a:b])  # (n, B, 4H)
            out["rhat"], out["rs_r"] = rhat.unbind(0), rs_r[a:b].unbind(0)
        return out

    def reduce(self, a: int, b: int, dG: Tensor) -> None:
        """After steps [a, b) are done: add their peephole and LayerNorm parameter gradients."""
        n, H = b - a, self.H
        dGc = dG[a:b]  # (n, B, 4H)
        if self.peep is not None:
            c_prev = self.c_prev[:n]
            self.d_peep[0] += (dGc[:, :, :H] * c_prev).sum((0, 1))
            self.d_peep[1] += (dGc[:, :, H:2 * H] * c_prev).sum((0, 1))
            self.d_peep[2] += (dGc[:, :, 3 * H:] * self.Cn[a:b]).sum((0, 1))
        if self.ln_hh is not None:
            self.d_ln_hh_w += (dGc * self.rhat[:n]).sum((0, 1))
            self.d_ln_hh_b += dGc.sum((0, 1))
        if self.ln_c is not None:
            d_cout = self.dhf[:n].mul_(self.Q0[:n])  # (n, B, H) dL/dLN(c_new)
            self.d_ln_c_w += (d_cout * self.chat[:n]).sum((0, 1))
            self.d_ln_c_b += d_cout.sum((0, 1))
