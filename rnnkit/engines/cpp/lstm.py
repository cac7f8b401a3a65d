"""The LSTM family on the cpp engine: ``LSTMCppFunction`` has ``LSTMBPTTFunction``'s signature and
results (``rnnkit/engines/bptt/_lstm_function.py`` documents the equations and the backward pass);
its forward and backward time loops run in C++ (``csrc/lstm.cpp``), one BLAS call plus one fused
element-wise pass per step. The weight matrices' gradients, sums over all steps (W_ih, W_hh, the
projection), are one matmul each, here, after the loop; the vectors' (biases, peepholes, LayerNorm
gains and biases) come back from the C++ backward as column sums.

Under CPU autocast to bfloat16 (``DirectionJob.products``) the three whole-sequence products (x W_ih^T
before the loop, dL/dx and the weight gradients after it) run in bfloat16 with float32 accumulation
(oneDNN), and everything else in float32: the time loop, the recurrent product h_{t-1} W_hh^T, the
cell state, the gates and the values handed back. The recurrence, where rounding would compound over
the steps, never sees bfloat16; the products' inputs are rounded once (about 3 significant digits).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..base import DirectionJob, DirectionResult, State, without_autocast
from ..bptt import lstm as bptt_lstm
from ..bptt._lstm_function import LN_EPS, LSTMMasks, _recurrent_weight_grad
from . import gemm
from .build import kernels


def _full(mask: Optional[Tensor], shape) -> Optional[Tensor]:
    """A keep mask broadcast to its full (T, B, S) shape, contiguous, or None."""
    return None if mask is None else mask.expand(shape).contiguous()


def _opt(t: Optional[Tensor]) -> Optional[Tensor]:
    return None if t is None else t.contiguous()


#: batch rows per thread from which the input projection x_t W_ih^T runs inside each step's product
#: ([x_t, h_{t-1}] @ [W_ih^T; W_hh^T]) instead of as one product over all steps before the loop, and
#: dL/dx_t inside the backward's (see ``fuses_input``)
FUSED_INPUT_MIN_ROWS = 8


def rows_per_block(batch: int, gates: int) -> int:
    """The batch rows each thread's block gets in the C++ time loops (``for_row_blocks`` in
    ``csrc/common.h``, asked through ``row_block_rows``: one block per thread, or all rows on one thread
    for a small step)."""
    return kernels().row_block_rows(batch, gates)


def fuses_input(batch: int, gates: int, dtype: torch.dtype) -> bool:
    """Whether the C++ loop takes the input projection into each step's product (``fuse_input``).

    The per-step products of float32 on the panel kernels (AVX-512 or AVX2, ``csrc/panel_*.cpp``) run
    about as fast per FLOP as one whole-sequence product once each thread has a few rows, and folding
    x_t W_ih^T into them keeps the gates in cache instead of writing the (T, B, 4H) projections out and
    reading them back; it also leaves dL/dx_t and the weight gradients' left-hand factor [x_t, h_{t-1}]
    to the loops. On MKL's or ATen's products (no panels; float64) the one big product stays.
    """
    return (dtype == torch.float32 and kernels().step_panels()
            and rows_per_block(batch, gates) >= FUSED_INPUT_MIN_ROWS)


class LSTMCppFunction(torch.autograd.Function):
    """apply(xp, w_hh, h0, c0, w_hr, peep, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, masks, ln_ih_w, in_bias, w_ih):
    as LSTMBPTTFunction, with three optional fusions (``LSTMCell.project_input`` and ``recur``):

    * w_ih (4H, I): xp is the layer input x (T, B, I); x W_ih^T is one product before the loop
      (oneDNN's where torch has it, see gemm.py; otherwise inside the C++ call, straight into the gate
      buffer) and its gradients (x and W_ih) are two products after it;
    * in_bias (4H,): added to the gates (bias_ih + bias_hh, plus ln_ih_bias with a LayerNorm);
    * ln_ih_w (4H,): the input LayerNorm: the gates are LN_ih(x W_ih^T) + in_bias + LN_hh(W_hh h).

    ``products`` (a dtype other than xp's, with w_ih): x W_ih^T, dL/dx and the weight gradients are
    computed in that dtype (module docstring); the loop then never fuses the input projection.
    """

    @staticmethod
    def forward(ctx, xp, w_hh, h0, c0, w_hr, peep, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, masks: LSTMMasks,
                ln_ih_w=None, in_bias=None, w_ih=None, products=None):
        T, B = xp.shape[:2]
        G4 = w_hh.shape[0]
        H, P = G4 // 4, w_hh.shape[1]
        m = masks
        keep_h, keep_c = _full(m.keep_h, (T, B, P)), _full(m.keep_c, (T, B, H))
        h_mask = _opt(m.h_mask)
        xp = xp.contiguous()
        proj, w_ih_t, scratch = xp, None, False  # what the C++ loop reads as the input projections
        low = products if (w_ih is not None and products is not None and products != xp.dtype) else None
        fuse = (low is None and w_ih is not None and ln_ih_w is None and ln_hh_w is None
                and fuses_input(B, G4, xp.dtype))
        if fuse:  # x_t W_ih^T inside each step's product (the loop adds the biases)
            w_ih_t = gemm.transposed(w_ih)  # (I, 4H)
        elif low is not None:  # x W_ih^T in the lower precision, handed to the loop in xp's dtype
            xp = xp.to(low)  # (T, B, I): kept in that precision for the backward's products
            proj = gemm.linear(xp.view(T * B, -1), w_ih.to(low)).view(T, B, G4).to(w_hh.dtype)  # (T, B, 4H)
            scratch = ln_ih_w is None
        elif w_ih is not None:
            if gemm.route(xp.dtype) == "onednn":  # x W_ih^T by oneDNN here; the loop adds the biases
                proj = gemm.linear(xp.view(T * B, -1), w_ih.contiguous()).view(T, B, G4)  # (T, B, 4H)
                scratch = ln_ih_w is None  # a temporary: the loop writes the gates over it
            else:  # the loop computes x W_ih^T itself, straight into its gate buffer
                w_ih_t = gemm.transposed(w_ih)  # (I, 4H)
        G, Cn, TC, C, Hs, HF, R, SR, SC, SX, XW, XH = kernels().lstm_forward(
            proj, gemm.transposed(w_hh), h0.contiguous(), c0.contiguous(),
            gemm.transposed(w_hr) if w_hr is not None else None, _opt(peep), _opt(ln_hh_w), _opt(ln_hh_b),
            _opt(ln_c_w), _opt(ln_c_b), h_mask, keep_h, keep_c, _opt(ln_ih_w), _opt(in_bias), w_ih_t, LN_EPS,
            scratch, fuse)
        h_T, c_T = Hs[T - 1].clone(), C[T - 1].clone()  # (B, P), (B, H)
        if m.valid is not None:
            hidden, c_seq = Hs * m.valid, C * m.valid  # (T, B, P), (T, B, H)
        else:
            hidden, c_seq = Hs, C
        ctx.set_materialize_grads(False)
        ctx.masks = m
        ctx.save_for_backward(w_hh, h0, c0, w_hr, peep, ln_hh_w, ln_c_w, G, Cn, TC, C, Hs,
                              HF if w_hr is not None else None, R if ln_hh_w is not None else None,
                              SR if ln_hh_w is not None else None, SC if ln_c_w is not None else None,
                              h_mask, keep_h, keep_c, ln_ih_w,
                              (XW if w_ih_t is not None else proj) if ln_ih_w is not None else None,
                              SX if ln_ih_w is not None else None,
                              xp if w_ih is not None and not fuse else None, w_ih, XH if fuse else None)
        ctx.has_in_bias = in_bias is not None
        ctx.low = low
        return hidden, h_T, c_T, c_seq

    @staticmethod
    @without_autocast
    @once_differentiable
    def backward(ctx, d_hidden, d_hT, d_cT, d_cseq):
        (w_hh, h0, c0, w_hr, peep, ln_hh_w, ln_c_w, G, Cn, TC, C, Hs, HF, R, SR, SC,
         h_mask, keep_h, keep_c, ln_ih_w, X, SX, x, w_ih, XH) = ctx.saved_tensors
        m: LSTMMasks = ctx.masks
        T, B, G4 = G.shape
        H, P = G4 // 4, w_hh.shape[1]
        dY = d_hidden * m.valid if (d_hidden is not None and m.valid is not None) else d_hidden  # (T, B, P)
        dCs = d_cseq * m.valid if (d_cseq is not None and m.valid is not None) else d_cseq  # (T, B, H)
        dY, dCs = _opt(dY), _opt(dCs)
        dh = d_hT.clone() if d_hT is not None else G.new_zeros(B, P)  # (B, P) dL/dh state at T-1
        dc = d_cT.clone() if d_cT is not None else G.new_zeros(B, H)  # (B, H)
        if dY is not None:
            dh += dY[T - 1]
        if dCs is not None:
            dc += dCs[T - 1]
        need = ctx.needs_input_grad
        fuse_dx = XH is not None and need[0]  # dL/dx_t inside the loop, as the forward's x_t W_ih^T
        dG, DR, dHN, dh0, dc0, d_peep, d_lnr, d_lnc, DX, d_lnx, d_bias, DXI = kernels().lstm_backward(
            G, Cn, TC, C, c0.contiguous(), w_hh.contiguous(), _opt(w_hr), _opt(peep), _opt(ln_c_w), SC,
            _opt(ln_hh_w), R, SR, h_mask, keep_h, keep_c, dY, dCs, dh.contiguous(), dc.contiguous(),
            _opt(ln_ih_w), X, SX, w_ih.contiguous() if fuse_dx else None)

        d_w_hh = d_w_ih_joint = None
        low = ctx.low  # the whole-sequence products' dtype, or None (the loop's)
        if XH is not None and (need[1] or need[13]):
            # the forward kept [x_t, h_{t-1} * h_mask] (T, B, I + P): both weight gradients in one product
            I = XH.shape[-1] - P
            d_w = torch.mm(dG.reshape(T * B, G4).t(), XH.view(T * B, I + P))  # (4H, I + P)
            d_w_ih_joint, d_w_hh = d_w[:, :I], (d_w[:, I:] if need[1] else None)
        elif w_ih is not None and R is None and need[1] and need[13]:
            # both weight gradients share dG: one (4H, T*B) x (T*B, I+P) product instead of two
            d_w_ih_joint, d_w_hh = _joint_weight_grads(dG, x, h0, Hs, h_mask, low)
        elif need[1]:
            d_w_hh = _recurrent_weight_grad(DR if R is not None else dG, h0, Hs, h_mask)
        d_w_hr = None
        if w_hr is not None and need[4]:
            d_w_hr = torch.mm(dHN.reshape(T * B, P).t(), HF.reshape(T * B, H))  # (P, H)
        d_peep = d_peep if peep is not None and need[5] else None  # (3, H)
        d_ln_hh_w, d_ln_hh_b = (d_lnr[0], d_lnr[1]) if R is not None else (None, None)  # (4H,) each
        d_ln_c_w, d_ln_c_b = (d_lnc[0], d_lnc[1]) if SC is not None else (None, None)  # (H,) each
        fused = ln_ih_w is not None
        d_xw = DX if fused else dG  # (T, B, 4H) dL/d(x W_ih^T)
        d_ln_ih_w = d_lnx[0] if fused and need[11] else None  # (4H,)
        d_in_bias = None
        if ctx.has_in_bias and need[12]:  # (4H,) sum of dG (LN_hh's bias gradient when there is one)
            d_in_bias = d_lnr[1] if R is not None else d_bias[0]
        d_xp, d_w_ih = d_xw, None
        if XH is not None:  # fused: dL/dx from the loop, dL/dW_ih from the joint product above
            d_xp = DXI if fuse_dx else None  # (T, B, I)
            d_w_ih = d_w_ih_joint if need[13] else None
        elif w_ih is not None:  # xp was x: x W_ih^T's two gradients, one matmul each
            I = x.shape[-1]
            d2 = d_xw.reshape(T * B, G4)  # (T*B, 4H)
            if low is not None:
                d2 = d2.to(low)
            if need[0]:  # (T, B, I)
                w_t = gemm.transposed(w_ih) if low is None else w_ih.t().to(low).contiguous()  # (I, 4H)
                d_xp = gemm.linear(d2, w_t).view(T, B, I).to(w_hh.dtype)
            else:
                d_xp = None
            if d_w_ih_joint is not None:
                d_w_ih = d_w_ih_joint
            elif need[13]:
                d_w_ih = torch.mm(d2.t(), x.reshape(T * B, I)).to(w_hh.dtype)  # (4H, I)
        return (d_xp, d_w_hh, dh0 if need[2] else None, dc0 if need[3] else None, d_w_hr, d_peep,
                d_ln_hh_w if need[6] else None, d_ln_hh_b if need[7] else None,
                d_ln_c_w if need[8] else None, d_ln_c_b if need[9] else None, None, d_ln_ih_w, d_in_bias,
                d_w_ih, None)


def _joint_weight_grads(dG: Tensor, x: Tensor, h0: Tensor, Hs: Tensor, h_mask: Optional[Tensor],
                        low: Optional[torch.dtype] = None):
    """(dL/dW_ih, dL/dW_hh) = dG^T [x, h_{t-1} * h_mask] as one matmul: dG (T, B, 4H), x (T, B, I),
    Hs (T, B, P). One product with I + P columns instead of two with I and P: sgemm packs dG^T once,
    and the wider product runs faster (about 1.2x at I = P = 128 here) for the cost of one copy.
    ``low``: the product's dtype (its inputs rounded to it, the result back in dG's dtype)."""
    T, B, G4 = dG.shape
    I, P = x.shape[-1], Hs.shape[-1]
    xh = x.new_empty(T, B, I + P, dtype=low or dG.dtype)  # (T, B, I + P): [x_t, h_{t-1}]
    xh[..., :I] = x
    xh[0, :, I:] = h0
    xh[1:, :, I:] = Hs[:-1]
    if h_mask is not None:
        xh[..., I:] *= h_mask
    d_g = dG.reshape(T * B, G4) if low is None else dG.reshape(T * B, G4).to(low)  # (T*B, 4H)
    d_w = torch.mm(d_g.t(), xh.view(T * B, I + P)).to(dG.dtype)  # (4H, I + P)
    return d_w[:, :I], d_w[:, I:]


def project(cell, x: Tensor, products: Optional[torch.dtype] = None):
    """The layer input itself and what the C++ loop needs to compute ``LSTMCell.project_input`` inside:
    (ln_ih_w, in_bias, w_ih, products), the projection being x W_ih^T + bias_ih + bias_hh, or with a
    LayerNorm LN_ih(x W_ih^T) + ln_ih_bias + bias_ih + bias_hh; ``products``: the dtype of the
    whole-sequence products (None: x's)."""
    bias = cell.bias_ih + cell.bias_hh if cell.bias_ih is not None else None  # (4H,)
    if not cell.config.layer_norm:
        return x.contiguous(), (None, bias, cell.weight_ih, products)  # x (T, B, I)
    in_bias = cell.ln_ih_bias + bias if bias is not None else cell.ln_ih_bias
    return x.contiguous(), (cell.ln_ih_weight, in_bias, cell.weight_ih, products)


def run(cell, x: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
    """One direction of one layer through the C++ time loop (see ``rnnkit.engines.bptt.lstm.run``); the
    whole-sequence products in ``job.products`` when it is set."""
    return bptt_lstm.run(cell, x, state0, job, function=LSTMCppFunction,
                         project=lambda c, inp: project(c, inp, job.products))
