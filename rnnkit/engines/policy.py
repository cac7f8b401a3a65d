"""The speed policy: which of the engines that CAN run a call ``engine="auto"`` prefers, and why.

Engines answer only whether they can run a call (``Engine.supports``). Where two capable engines were
measured against each other and the lower-priority one won, that is a row here: a named "prefer X
over Y when <condition>" with its measurement beside it. Dispatch (``registry.EngineRegistry``) under
``engine="auto"``:

1. the choice is the first engine of the default priority order that can run the call;
2. the rows are applied in this table's order, once each: a row whose ``over`` names the current
   choice, whose condition holds for the call and whose preferred engine can run it replaces the
   choice by that engine (``prefer = NEXT``: the next engine after the choice, in priority order,
   that can run it).

A named engine (``engine="cpp"``) runs whenever it can; no row applies to it.

Measurements: bench/RESULTS.md (CPU: 2-core Zen 3, paired steps with the same weights; GPU: H100).
The conditions read only the request, the thread count, CPU autocast and the cpp engine's build
state; the one-step rows' inputs are part of the registry's one-step key (``one_step_key``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch

from .base import Request, cpu_autocast_dtype
from .cpp import gru as cpp_gru
from .cpp import lstm as cpp_lstm
from .cpp.build import build_error

#: ``over`` of a row that applies to whichever engine is the current choice
ANY = "*"
#: ``prefer`` of a row that leaves the choice to the next engine in priority order that can run the call
NEXT = "the next engine"

# -- thresholds of the CPU LSTM rows (cpp against torch's fused oneDNN LSTM) -----------------------
#: below this many sequences a CPU DropConnect call trains faster on cpp
DROPCONNECT_MIN_BATCH = 4
#: a single sequence trained on the CPU with at least this many steps x hidden units trains faster on cpp
ONE_SEQUENCE_MIN_WORK = 25600
#: a batch trained with this many sequences per thread, this many steps and at most this many units
BATCH_ROWS_PER_THREAD = 16
BATCH_MIN_STEPS = 100
BATCH_MAX_HIDDEN = 256
#: a CPU call with lengths goes to cpp when it keeps gradients, or without them up to this width
LENGTHS_NO_GRAD_MAX_HIDDEN = 256
#: float32 calls whose threads get cpp_lstm.FUSED_INPUT_MIN_ROWS rows each go to cpp from FUSED_MIN_STEPS
#: steps: trained up to FUSED_MAX_HIDDEN units (past FUSED_NARROW_HIDDEN from FUSED_WIDE_MIN_STEPS steps),
#: without gradients up to FUSED_NO_GRAD_MAX_HIDDEN
FUSED_MIN_STEPS = 10
FUSED_MAX_HIDDEN = 512
FUSED_NARROW_HIDDEN = 256
FUSED_WIDE_MIN_STEPS = 50
FUSED_NO_GRAD_MAX_HIDDEN = 256


@dataclass(frozen=True)
class Preference:
    """One row: prefer ``prefer`` over the engines in ``over`` when ``condition(req)`` gives a detail
    (a short sentence with the call's numbers) rather than None."""

    name: str
    prefer: str
    over: Tuple[str, ...]
    when: str                                       # the condition in words (docs/engines.md)
    measured: str                                   # the measurement behind the row, with its source
    condition: Callable[[Request], Optional[str]]

    def says(self, winner: str, loser: str, detail: str) -> str:
        """What explain() prints for an engine this row passed over."""
        return f"{winner} chosen over {loser}: {detail} (measured: {self.measured}) [policy row {self.name!r}]"


# -- conditions ----------------------------------------------------------------------------------

def one_step_without_grad(req: Request) -> bool:
    """One time step on the CPU that keeps no gradient (generation, beam search, streaming): the calls
    the one-step rows and the registry's kept one-step choice apply to."""
    return req.steps == 1 and req.device.type == "cpu" and not req.needs_grad


def _one_step_on_cpu(req: Request) -> Optional[str]:
    if req.steps == 1 and req.device.type == "cpu":
        return "one time step on the CPU runs through torch's cell functions layer by layer"
    return None


def _plain_cpu_lstm(req: Request) -> bool:
    """A CPU LSTM without projection in float32/float64 outside autocast: where the cpp rows were measured
    (in float32 without autocast; under autocast oneDNN would run in the lower precision)."""
    cell = req.cell
    return (req.device.type == "cpu" and cell.family == "lstm" and not cell.config.proj_size
            and req.dtype in (torch.float32, torch.float64) and cpu_autocast_dtype() is None)


def _lstm_lengths(req: Request) -> Optional[str]:
    if not req.has_lengths or not _plain_cpu_lstm(req):
        return None
    if not req.needs_grad and req.hidden_size > LENGTHS_NO_GRAD_MAX_HIDDEN:
        return None
    return ("with lengths torch's CPU LSTM runs the packed sequence through ATen's per-step loop, not oneDNN"
            + ("" if req.needs_grad else f" (without gradients, H = {req.hidden_size} <= {LENGTHS_NO_GRAD_MAX_HIDDEN})"))


def _lstm_fused_loop(req: Request) -> Optional[str]:
    B, T, H = req.batch, req.steps, req.hidden_size
    if req.has_lengths or req.dtype != torch.float32 or T < FUSED_MIN_STEPS or not _plain_cpu_lstm(req):
        return None
    if req.needs_grad:
        if H > FUSED_MAX_HIDDEN or (H > FUSED_NARROW_HIDDEN and T < FUSED_WIDE_MIN_STEPS):
            return None
    elif H > FUSED_NO_GRAD_MAX_HIDDEN:
        return None
    if build_error() is not None or not cpp_lstm.fuses_input(B, 4 * H, req.dtype):
        return None
    rows = cpp_lstm.rows_per_block(B, 4 * H)
    kind = "training" if req.needs_grad else "without gradients"
    return (f"float32 LSTM {kind} with {rows} rows per thread (>= {cpp_lstm.FUSED_INPUT_MIN_ROWS}), T = {T} "
            f"(>= {FUSED_MIN_STEPS}), H = {H}: the cpp loop takes the input projection into each step's product")


def _lstm_one_sequence(req: Request) -> Optional[str]:
    T, H = req.steps, req.hidden_size
    if req.has_lengths or not req.needs_grad or req.batch != 1 or T * H < ONE_SEQUENCE_MIN_WORK:
        return None
    if not _plain_cpu_lstm(req):
        return None
    return (f"one sequence with gradients (B = 1, T x H = {T * H} >= {ONE_SEQUENCE_MIN_WORK}): oneDNN re-packs the "
            f"weights at every call")


def _lstm_batch(req: Request) -> Optional[str]:
    B, T, H = req.batch, req.steps, req.hidden_size
    if req.has_lengths or not req.needs_grad or T < BATCH_MIN_STEPS or H > BATCH_MAX_HIDDEN:
        return None
    if B < BATCH_ROWS_PER_THREAD * torch.get_num_threads() or not _plain_cpu_lstm(req):
        return None
    return (f"a batch with gradients: B = {B} >= {BATCH_ROWS_PER_THREAD} per thread, T = {T} >= {BATCH_MIN_STEPS}, "
            f"H = {H} <= {BATCH_MAX_HIDDEN}")


def _lstm_bf16_products(req: Request) -> Optional[str]:
    cell = req.cell
    if (req.device.type != "cpu" or cell.family != "lstm" or cell.config.proj_size or req.dtype != torch.float32
            or cpu_autocast_dtype() != torch.bfloat16 or req.steps < FUSED_MIN_STEPS or req.has_lengths
            or req.hidden_size > FUSED_MAX_HIDDEN or build_error() is not None):
        return None
    rows = cpp_lstm.rows_per_block(req.batch, 4 * req.hidden_size)
    if rows < cpp_lstm.FUSED_INPUT_MIN_ROWS:
        return None
    return (f"a float32 LSTM under CPU bfloat16 autocast with {rows} rows per thread, T = {req.steps}, "
            f"H = {req.hidden_size}: the cpp loop keeps the recurrence and the cell "
            "state in float32 and runs only the whole-sequence products in bfloat16, where torch's fused LSTM "
            "runs every step in bfloat16")


def _dropconnect_tiny_batch(req: Request) -> Optional[str]:
    if (req.regularization.dropconnect and req.training and req.device.type == "cpu"
            and req.batch < DROPCONNECT_MIN_BATCH and req.steps > 1):
        return (f"DropConnect in training on a batch of fewer than {DROPCONNECT_MIN_BATCH} sequences: oneDNN "
                f"re-packs the masked W_hh at every call")
    return None


def gru_kernel_serves(req: Request) -> Optional[str]:
    """One step of torch.nn.GRU's equations without gradients, lengths or regulariser masks, in float32 or
    float64, when the cpp kernels can be built: the single-step GRU kernel's calls (None otherwise)."""
    if not one_step_without_grad(req) or req.family != "gru" or req.has_lengths:
        return None
    if req.dtype not in (torch.float32, torch.float64):
        return None
    reg = req.regularization
    if req.training and (reg.dropconnect or reg.recurrent_dropout or reg.variational_dropout) or reg.zoneout:
        return None
    if cpp_gru.single_step_reason(req.cell) is not None or build_error() is not None:
        return None
    return "one GRU step without gradients on the CPU: the single-step kernel (no weight copies, no autograd node)"


def _reference_step(req: Request) -> Optional[str]:
    if not one_step_without_grad(req) or gru_kernel_serves(req) is not None:
        return None
    return ("one step without gradients on the CPU: the cell's own step, with no autograd Function, saved "
            "buffers or per-call weight copies")


def _cudnn_faster(req: Request) -> Optional[str]:
    if req.device.type != "cuda" or req.family not in ("lstm", "gru") or req.dtype != torch.float32:
        return None
    from .triton.plan import _precision  # imports triton: only asked when the triton engine is the choice

    H = req.hidden_size
    if _precision(req.dtype) == "tf32x3":
        if H >= 1024 or (H >= 512 and req.needs_grad):
            return (f"float32 at hidden size {H} (the Triton dots are 3xTF32 for float32 accuracy; set "
                    "torch.backends.cuda.matmul.allow_tf32 = True or use bf16)")
    elif H >= 1024:
        return f"TF32 at hidden size {H}"
    return None


def _triton_unmeasured(req: Request) -> Optional[str]:
    if req.device.type != "cuda":
        return None
    cell = req.cell
    if cell.family == "lstm" and cell.config.layer_norm:
        kernels = "the LayerNorm-LSTM kernels (ln_kernels)"
    elif cell.family == "gru" and not cell.config.reset_after:
        kernels = "the reset-before GRU kernels (gru_cho_kernels)"
    elif cell.family == "jordan":
        kernels = "the Jordan kernels (jordan_kernels)"
    else:
        return None
    return (f"{kernels} are verified through Triton's interpreter only, not yet measured on a GPU; "
            f"engine='triton' runs them")


# -- the table -----------------------------------------------------------------------------------

_LSTM_CPP = ("bench/RESULTS.md, CPU, cpp against torch.nn.LSTM (oneDNN), paired steps, same weights")

POLICY: List[Preference] = [
    Preference(
        "one-step-cell-functions", "native", (ANY,),
        "one time step on the CPU (generation, beam search, streaming), with or without gradients",
        "torch's cell functions 0.3 ms a token for a 2 x 256 LSTM, torch's fused call 2.1 ms, the cpp engine "
        "0.85 ms (bench/RESULTS.md, 'one step at a time')",
        _one_step_on_cpu),
    Preference(
        "lstm-lengths", "cpp", ("native",),
        f"a CPU LSTM (no projection, float32/float64, no autocast) with lengths: with gradients, or without "
        f"them at H <= {LENGTHS_NO_GRAD_MAX_HIDDEN}",
        "1.6-7.4x trained at B = 2-64, T = 20-200, H = 64-1024; 1.4-2.1x without gradients at H <= 256 "
        f"(0.87-1.12x at H = 512-1024, kept on native); {_LSTM_CPP}",
        _lstm_lengths),
    Preference(
        "lstm-fused-loop", "cpp", ("native",),
        f"a float32 CPU LSTM with >= {cpp_lstm.FUSED_INPUT_MIN_ROWS} rows per thread and T >= {FUSED_MIN_STEPS}: "
        f"trained at H <= {FUSED_MAX_HIDDEN} (H > {FUSED_NARROW_HIDDEN} from T >= {FUSED_WIDE_MIN_STEPS}), "
        f"without gradients at H <= {FUSED_NO_GRAD_MAX_HIDDEN}",
        "trained 1.06-1.41x at B = 16-128, T = 10-200, H = 128-256 (two threads), 1.13-1.27x on one thread, "
        "1.02-1.21x at H = 512 from T = 50 (0.88x at (8, 35, 512)), 1.10x at H = 768, 0.82x at 1024; without "
        "gradients 1.09-1.27x at H = 128-256, T = 10-100 (0.95-1.11x at H = 512, 0.79x at 1024); fewer rows "
        "per thread 0.88-1.21x, kept on native (bench/RESULTS.md run K, 2-core Zen 3, AVX2 panel kernel)",
        _lstm_fused_loop),
    Preference(
        "lstm-one-sequence", "cpp", ("native",),
        f"a CPU LSTM trained on one sequence (B = 1) with T x H >= {ONE_SEQUENCE_MIN_WORK}",
        "1.13-1.40x at T = 100, H = 256-1024 (1 and 2 layers), 1.30-1.35x at T = 50-60, H = 512-768, "
        f"1.00-1.08x at T = 200-400, H = 64-128; below the line 0.76-1.13x; {_LSTM_CPP}",
        _lstm_one_sequence),
    Preference(
        "lstm-batch", "cpp", ("native",),
        f"a CPU LSTM trained with B >= {BATCH_ROWS_PER_THREAD} per thread, T >= {BATCH_MIN_STEPS}, "
        f"H <= {BATCH_MAX_HIDDEN}",
        "1.07-1.56x at B = 32-128, T = 100-200, H = 64-256, 1-2 layers, both directions, 2 threads; level at "
        f"(32, 100, 128) and on one thread; outside it 0.73-1.06x; {_LSTM_CPP}",
        _lstm_batch),
    Preference(
        "lstm-bf16-products", "cpp", ("native",),
        f"a float32 CPU LSTM (no projection, no lengths) under bfloat16 autocast with >= "
        f"{cpp_lstm.FUSED_INPUT_MIN_ROWS} rows per thread, T >= {FUSED_MIN_STEPS} and H <= {FUSED_MAX_HIDDEN}",
        "a 2 x 384 LSTM language model (embedding 128, B = 32, T = 128, forward + backward + AdamW, one "
        "thread, AMD EPYC with AVX-512 BF16): 220 ms an update against 186 on native in bf16 and 299 / 340 on "
        "native / cpp in float32; per update as good as float32 (validation 1.846 at update 510 of the plays "
        "against 1.859), where native's all-bf16 LSTM was behind (1.958 against 1.865) (docs/lm.md, 'Session 15')",
        _lstm_bf16_products),
    Preference(
        "dropconnect-tiny-batch", "cpp", ("native",),
        f"DropConnect in training on the CPU with B < {DROPCONNECT_MIN_BATCH} and T > 1",
        "torch's fused LSTM 0.78-0.82x torch.nn.LSTM at B = 1 (oneDNN re-packs the masked W_hh at every "
        "call), cpp about 1.0x (bench/RESULTS.md, CPU)",
        _dropconnect_tiny_batch),
    Preference(
        "one-step-gru-kernel", "cpp", ("native",),
        "one GRU step (reset gate after the matmul, no LayerNorm) without gradients, lengths or regulariser "
        "masks on the CPU, float32/float64",
        "0.77-2.12x torch.nn.GRU's per-token time where torch.gru_cell gave 0.58-0.90x, 2 layers of 128-512 "
        "units (bench/RESULTS.md, 'one step at a time')",
        gru_kernel_serves),
    Preference(
        "one-step-reference", "reference", ("cpp", "bptt"),
        "one time step without gradients on the CPU that the single-step GRU kernel does not take",
        "the reference engine's cell step 1.1-2.4x faster per token than the cpp and bptt engines for 2 layers "
        "of 128-512 units (bench/RESULTS.md, 'one step at a time')",
        _reference_step),
    Preference(
        "cudnn-wide-float32", "native", ("triton",),
        "an LSTM or GRU in float32 on CUDA at H >= 1024, or H >= 512 with gradients under 3xTF32 dots",
        "the Triton kernels against torch.nn on cuDNN, H100: fp32 (3xTF32) 0.78-0.96x trained at H = 512, "
        "0.12-0.38x at H = 1024; TF32 0.25-0.85x at H = 1024 (bench/RESULTS.md, GPU, LSTM / GRU)",
        _cudnn_faster),
    Preference(
        "triton-unmeasured", NEXT, ("triton",),
        "the LayerNorm-LSTM, reset-before GRU and Jordan kernels on CUDA",
        "not measured on a GPU yet (verified through Triton's interpreter only); before they were fused these "
        "cells ran 0.07x (LayerNorm-LSTM), 0.24x (Jordan), 0.17x (GRU reset-before) cuDNN's LSTM on bptt "
        "(bench/RESULTS.md, GPU)",
        _triton_unmeasured),
]


def table_markdown(policy: Optional[List[Preference]] = None) -> str:
    """The table as Markdown, in order (docs/engines.md holds this text; a test keeps them equal)."""
    lines = ["| # | row | prefer | over | when | measured |", "|---|---|---|---|---|---|"]
    for i, row in enumerate(policy if policy is not None else POLICY, 1):
        over = "any engine" if row.over == (ANY,) else ", ".join(row.over)
        cells = [str(i), f"`{row.name}`", row.prefer, over, row.when, row.measured]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
