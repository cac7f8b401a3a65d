"""The ``triton`` engine: LSTM (also peephole and layer-normalised), GRU (both variants), Elman,
Jordan and IndRNN, one persistent Triton kernel per direction and pass, forward and
backward, float32 (3xTF32 dots, or TF32 when torch.backends.cuda.matmul.allow_tf32), bfloat16 and
float16; lengths, zoneout (LSTM, GRU), recurrent dropout and DropConnect fused. Kernels:
``rnn_kernels`` (LSTM, GRU, Elman: one barrier per step), ``ln_kernels`` (the layer-normalised LSTM:
three phases per step, the LayerNorms' row statistics crossing between programs), ``jordan_kernels``
(two phases per step: h, then the output fed back), ``gru_cho_kernels`` (the GRU with the reset gate
before the matmul: two phases per step), ``indrnn_kernels`` (no barrier).

Around the kernels, in torch: the input projection (one matmul, ``cell.project_input``), DropConnect
(the effective W_hh = W_hh * mask is formed once per sequence; autograd carries its gradient back to
W_hh), and after the backward kernel the weight gradient dW_hh = sum_t dgates_t^T h_{t-1} as one
matmul over all steps. Not fused (``supports`` says so): the projected LSTM and the layer-normalised
GRU. Under ``engine="auto"``, float32 shapes where cuDNN was measured faster
go to cuDNN, and kernels not yet measured on a GPU are left to the other engines: rows of the
policy table (``rnnkit.engines.policy``), not refusals here.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

import triton

from ..base import DirectionJob, DirectionResult, Engine, Request, State, without_autocast
from .indrnn_kernels import indrnn_bwd_kernel, indrnn_fwd_kernel
from .gru_cho_engine import fused_cho_gru
from .jordan_engine import fused_jordan
from .ln_engine import fused_ln_lstm
from .plan import ACTIVATION_CODES, STREAMED_PLANS, Plan, _launch_or_stream, _precision, plan  # noqa: F401 (re-export)
from .rnn_kernels import rnn_bwd_kernel, rnn_fwd_kernel
from .scan_engine import interpreting

_CELLS = {"lstm": (0, 4, 4), "gru": (1, 3, 4), "elman": (2, 1, 1)}  # family -> (CELL, NG, NS)
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


class FusedRNNFunction(torch.autograd.Function):
    """hs, cs (T, B, H) of one direction. cs is empty except for LSTM."""

    @staticmethod
    def forward(ctx, xp: Tensor, w: Tensor, bn: Optional[Tensor], h0: Tensor, c0: Optional[Tensor],
                valid: Optional[Tensor], family: str, act: int, peep: Optional[Tensor] = None,
                zone: Optional[Tuple[Tensor, ...]] = None, h_mask: Optional[Tensor] = None):
        CELL, NG, NS = _CELLS[family]
        xp = xp.contiguous()
        T, B, G = xp.shape
        H = G // NG
        dev, dt = xp.device, xp.dtype
        P = plan(B, H, NG, dev, dt, backward=False)
        hbuf = torch.empty(T + 1, B, H, device=dev, dtype=dt)
        hbuf[0] = h0
        if CELL == 0:
            cbuf = torch.empty(T + 1, B, H, device=dev, dtype=torch.float32)
            cbuf[0] = c0
        else:
            cbuf = hbuf  # unused
        train = any(ctx.needs_input_grad)
        save = torch.empty(T, B, NS * H, device=dev, dtype=torch.float32) if CELL != 2 and train else hbuf
        vc = valid.reshape(T, B).to(torch.int8).contiguous() if valid is not None else None
        wt = w.t().contiguous()  # (H, G)
        sync = torch.zeros(1, device=dev, dtype=torch.int32)
        side = peep.contiguous() if peep is not None else bn  # (3, H) peepholes or GRU's b_hn
        hm = h_mask.to(dt).contiguous() if h_mask is not None else None  # (B, H) recurrent dropout
        zh = zc = None
        if zone is not None:  # keep probabilities (T, B, H) float32 per state component
            zh = zone[0].expand(T, B, H).to(torch.float32).contiguous()
            zc = zone[1].expand(T, B, H).to(torch.float32).contiguous() if CELL == 0 else zh

        def launch(P: Plan) -> None:
            rnn_fwd_kernel[(P.NP,)](xp, wt, side if side is not None else wt, vc if vc is not None else wt,
                                    hbuf, cbuf, save, sync, T, B, H, CELL=CELL, ACT=act, NG=NG, NS=NS,
                                    HAS_VALID=vc is not None, SAVE=CELL != 2 and train, NP=P.NP, BB=P.BB,
                                    BH=P.BH, BK=P.BK, HP=P.HP, NGP=P.NGP, RESIDENT=P.RESIDENT,
                                    PREC=_precision(dt), num_warps=P.num_warps, PEEP=peep is not None,
                                    zh_ptr=zh, zc_ptr=zc, HAS_ZONE=zh is not None,
                                    hm_ptr=hm, HAS_HMASK=hm is not None)

        _launch_or_stream(launch, P)
        ctx.save_for_backward(w, hbuf, cbuf if CELL == 0 else None, save if CELL != 2 else None, vc,
                              side if peep is not None else None, zh, zc, hm)
        ctx.meta = (family, act, bn is not None, c0 is not None)
        hs = hbuf[1:]
        cs = cbuf[1:].to(dt) if CELL == 0 else hbuf.new_empty(0)
        return hs, cs

    @staticmethod
    @without_autocast
    def backward(ctx, dhs: Tensor, dcs: Tensor):
        w, hbuf, cbuf, save, vc, peep, zh, zc, hm = ctx.saved_tensors
        family, act, has_bn, has_c0 = ctx.meta
        CELL, NG, NS = _CELLS[family]
        T1, B, H = hbuf.shape
        T, G = T1 - 1, NG * H
        dev, dt = hbuf.device, hbuf.dtype
        P = plan(B, H, NG, dev, dt, backward=True)
        dhs = dhs.contiguous() if dhs is not None else torch.zeros(T, B, H, device=dev, dtype=dt)
        has_dc = CELL == 0 and dcs is not None and dcs.numel() > 0
        dcs = dcs.contiguous() if has_dc else dhs
        dg = torch.empty(T, B, G, device=dev, dtype=torch.float32)
        dxn = torch.empty(T, B, H, device=dev, dtype=torch.float32) if CELL == 1 else dg
        dhrec = torch.zeros(B, H, device=dev, dtype=torch.float32)
        dhdir = torch.empty(B, H, device=dev, dtype=torch.float32)
        dcrec = torch.zeros(B, H, device=dev, dtype=torch.float32)
        wc = w.contiguous()
        sync = torch.zeros(1, device=dev, dtype=torch.int32)

        def launch(P: Plan) -> None:
            rnn_bwd_kernel[(P.NP,)](wc, wc, vc if vc is not None else wc, hbuf,
                                    cbuf if cbuf is not None else hbuf, save if save is not None else hbuf,
                                    dhs, dcs, dg, dxn, dhrec, dhdir, dcrec, sync, T, B, H,
                                    CELL=CELL, ACT=act, NG=NG, NS=NS, HAS_VALID=vc is not None,
                                    HAS_DC=has_dc, NP=P.NP, BB=P.BB, BH=P.BH, BK=P.BK, GP=P.GP,
                                    RESIDENT=P.RESIDENT, PREC=_precision(dt), num_warps=P.num_warps,
                                    peep_ptr=peep, PEEP=peep is not None, zh_ptr=zh, zc_ptr=zc,
                                    HAS_ZONE=zh is not None, hm_ptr=hm, HAS_HMASK=hm is not None)

        _launch_or_stream(launch, P)
        h_prev = (hbuf[:-1] * hm if hm is not None else hbuf[:-1]).reshape(T * B, H)  # what W_hh saw
        dg2 = dg.reshape(T * B, G)
        dw = (dg2.t().to(dt) @ h_prev).to(w.dtype) if ctx.needs_input_grad[1] else None  # (G, H)
        dbn = dg[..., 2 * H:].sum((0, 1)).to(dt) if has_bn and ctx.needs_input_grad[2] else None
        dxp = torch.cat([dg[..., :2 * H], dxn], dim=-1) if CELL == 1 else dg
        dc0 = dcrec.to(dt) if has_c0 else None
        dpeep = None
        if peep is not None and ctx.needs_input_grad[8]:  # w_ci, w_cf: c_{t-1}; w_co: c_t
            c_prev = cbuf[:-1]
            c_new = save[..., H:2 * H] * c_prev + save[..., :H] * save[..., 2 * H:3 * H]  # before zoneout
            dpeep = torch.stack([(dg[..., :H] * c_prev).sum((0, 1)), (dg[..., H:2 * H] * c_prev).sum((0, 1)),
                                 (dg[..., 3 * H:] * c_new).sum((0, 1))]).to(peep.dtype)
        return dxp.to(dt), dw, dbn, dhrec.to(dt), dc0, None, None, None, dpeep, None, None


class FusedIndRNNFunction(torch.autograd.Function):
    """hs (T, B, H) of an IndRNN direction; xp (T, B, H) = W_ih x + b, u (H,) the clamped weight."""

    @staticmethod
    def forward(ctx, xp: Tensor, u: Tensor, h0: Tensor, valid: Optional[Tensor], act: int):
        xp = xp.contiguous()
        T, B, H = xp.shape
        hbuf = torch.empty(T + 1, B, H, device=xp.device, dtype=xp.dtype)
        hbuf[0] = h0
        vc = valid.reshape(T, B).to(torch.int8).contiguous() if valid is not None else None
        BC = min(128, max(16, triton.next_power_of_2(H)))
        uc = u.contiguous()
        indrnn_fwd_kernel[(B, triton.cdiv(H, BC))](xp, uc, vc if vc is not None else xp, hbuf, T, B, H,
                                                   ACT=act, HAS_VALID=vc is not None, BC=BC)
        ctx.save_for_backward(uc, hbuf, vc)
        ctx.act, ctx.BC = act, BC
        return hbuf[1:]

    @staticmethod
    @without_autocast
    def backward(ctx, dhs: Tensor):
        u, hbuf, vc = ctx.saved_tensors
        T1, B, H = hbuf.shape
        T = T1 - 1
        dxp = torch.empty(T, B, H, device=hbuf.device, dtype=torch.float32)
        du = torch.empty(B, H, device=hbuf.device, dtype=torch.float32)
        dh0 = torch.empty(B, H, device=hbuf.device, dtype=torch.float32)
        indrnn_bwd_kernel[(B, triton.cdiv(H, ctx.BC))](u, vc if vc is not None else u, hbuf, dhs.contiguous(),
                                                       dxp, du, dh0, T, B, H, ACT=ctx.act,
                                                       HAS_VALID=vc is not None, BC=ctx.BC)
        dt = hbuf.dtype
        return dxp.to(dt), du.sum(0).to(u.dtype), dh0.to(dt), None, None


def fused_rnn(xp: Tensor, w: Tensor, bn: Optional[Tensor], h0: Tensor, c0: Optional[Tensor],
              valid: Optional[Tensor], family: str, activation: str = "tanh",
              peep: Optional[Tensor] = None, zone: Optional[Tuple[Tensor, ...]] = None,
              h_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Run one direction: xp (T, B, G) pre-projected input (biases folded as the kernels expect);
    peep (3, H): LSTM peephole weights w_ci, w_cf, w_co; zone: zoneout keep masks per state component."""
    return FusedRNNFunction.apply(xp, w, bn, h0, c0, valid, family, ACTIVATION_CODES[activation], peep, zone, h_mask)


def _cell_reason(cell) -> Optional[str]:
    fam, cfg = cell.family, cell.config
    if fam == "indrnn":
        if not isinstance(cfg.activation, str) or cfg.activation not in ACTIVATION_CODES:
            return f"the fused IndRNN kernel knows {sorted(ACTIVATION_CODES)}, not {cfg.activation!r}"
        return None
    if fam == "jordan":
        for name in ("activation", "out_activation"):
            value = getattr(cfg, name)
            if not isinstance(value, str) or value not in ACTIVATION_CODES:
                return f"the fused Jordan kernel knows {sorted(ACTIVATION_CODES)} for {name}, not {value!r}"
        return None
    if fam not in _CELLS:
        return f"the fused Triton kernels cover lstm, gru, elman, jordan and indrnn, not {fam}"
    if fam == "lstm":
        if cfg.proj_size:
            return "the projected LSTM (proj_size) is not fused in the Triton kernel yet"
    elif fam == "gru":
        if cfg.layer_norm:
            return "the layer-normalised GRU is not fused in the Triton kernel yet"
    elif fam == "elman":
        if not isinstance(cfg.activation, str) or cfg.activation not in ACTIVATION_CODES:
            return f"the fused Elman kernel knows {sorted(ACTIVATION_CODES)}, not {cfg.activation!r}"
    return None


class TritonRNNEngine(Engine):
    name = "triton"
    scope = "direction"
    #: counts run_direction calls: tests spy on it to prove the fused path ran
    calls = 0

    def supports(self, req: Request) -> Optional[str]:
        reason = _cell_reason(req.cell)
        if reason:
            return reason
        if req.device.type != "cuda" and not interpreting():
            return "the Triton kernels need a CUDA device (or TRITON_INTERPRET=1 on the CPU)"
        if req.dtype not in _DTYPES:
            return f"the fused kernels run float32, bfloat16 and float16, not {req.dtype}"
        if req.probe_grads or req.record_gates:
            return "gradient probes and gate traces need a step-by-step engine"
        reg = req.regularization
        if reg.zoneout and req.family not in ("lstm", "gru"):
            return "zoneout is fused for lstm and gru only"
        if req.training and reg.recurrent_dropout and req.family == "indrnn":
            return "recurrent dropout is not fused in the IndRNN kernel"
        return None

    def run_direction(self, cell, x: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
        if job.probe is not None or job.trace is not None:
            raise ValueError("the triton engine does not run gradient probes or gate traces")
        type(self).calls += 1
        xp = cell.project_input(x)  # (T, B, G)
        return _runner(cell)(cell, xp, state0, job)


def _runner(cell):
    """Which kernels run the cell: the cells with kernels of their own, or rnn_kernels'."""
    fam, cfg = cell.family, cell.config
    if fam == "indrnn":
        return _run_indrnn
    if fam == "jordan":
        return _run_jordan
    if fam == "gru" and not cfg.reset_after:
        return _run_cho_gru
    if fam == "lstm" and cfg.layer_norm:
        return _run_ln_lstm
    return _run_fused


def _recurrent_weight(cell, job: DirectionJob, name: str = "weight_hh") -> Tensor:
    return cell.step_context(job.masks.dropconnect).weights[name]  # DropConnect applied


def _single_state_result(hs: Tensor, job: DirectionJob) -> DirectionResult:
    """The result of a cell whose state is one tensor, hs (T, B, S) of every step."""
    out = hs * job.valid if job.valid is not None else hs
    return DirectionResult(hidden=out, state=(hs[-1],), states=(out,) if job.want_states else None)


def _run_indrnn(cell, xp: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
    if job.masks.zoneout is not None or job.masks.h_mask is not None:
        raise ValueError("the fused IndRNN kernel has no zoneout or recurrent dropout")
    u = cell.recurrent_vector(_recurrent_weight(cell, job))
    hs = FusedIndRNNFunction.apply(xp, u, state0[0], job.valid, ACTIVATION_CODES[cell.config.activation])
    return _single_state_result(hs, job)


def _run_jordan(cell, xp: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
    ys = fused_jordan(cell, xp, _recurrent_weight(cell, job, "weight_hy"), state0[0], job.valid, job.masks.h_mask)
    return _single_state_result(ys, job)


def _run_cho_gru(cell, xp: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
    zone = job.masks.zoneout
    hs = fused_cho_gru(cell, xp, _recurrent_weight(cell, job), state0[0], job.valid,
                       zone[0] if zone is not None else None, job.masks.h_mask)
    return _single_state_result(hs, job)


def _run_ln_lstm(cell, xp: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
    hs, cs = fused_ln_lstm(cell, xp, _recurrent_weight(cell, job), state0[0], state0[1], job.valid,
                           job.masks.zoneout, job.masks.h_mask)
    return _lstm_result(hs, cs, job)


def _run_fused(cell, xp: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
    """LSTM (also peephole), GRU (reset after) and Elman on rnn_kernels."""
    fam, H = cell.family, cell.hidden_size
    w = _recurrent_weight(cell, job)  # (G, H)
    bn = None
    if fam == "gru" and cell.bias_hh is not None:
        b = cell.bias_hh
        xp = xp + torch.cat([b[:2 * H], torch.zeros_like(b[2 * H:])])  # b_hr, b_hz fold into xp
        bn = b[2 * H:]
    elif fam == "gru":
        bn = torch.zeros(H, device=xp.device, dtype=xp.dtype)
    act = cell.config.activation if fam == "elman" else "tanh"
    c0 = state0[1] if fam == "lstm" else None
    peep = None
    if fam == "lstm" and cell.config.peephole:
        peep = torch.stack([cell.weight_ci, cell.weight_cf, cell.weight_co])  # (3, H)
    zone = job.masks.zoneout
    if zone is not None and fam not in ("lstm", "gru"):
        raise ValueError(f"the triton engine fuses zoneout for lstm and gru only, not {fam}")
    hs, cs = fused_rnn(xp, w, bn, state0[0], c0, job.valid, fam, act, peep, zone, job.masks.h_mask)
    if fam == "lstm":
        return _lstm_result(hs, cs, job)
    return _single_state_result(hs, job)


def _lstm_result(hs: Tensor, cs: Tensor, job: DirectionJob) -> DirectionResult:
    """An LSTM direction's result from its h and c of every step (T, B, H): outputs zero past each
    sequence's end, the final state the one at each sequence's own last step (the kernels froze it)."""
    valid = job.valid
    out = hs * valid if valid is not None else hs
    states = (out, cs * valid if valid is not None else cs) if job.want_states else None
    return DirectionResult(hidden=out, state=(hs[-1], cs[-1]), states=states)
