"""Tiling of the persistent RNN kernels: how many programs, how many units each, whether the W_hh
slice stays on chip, warps; chosen from H100 measurements (bench/NOTES_gpu.md). Environment
overrides for tuning sweeps: RNNKIT_TRITON_BH, RNNKIT_TRITON_BH_BWD, RNNKIT_TRITON_RESIDENT,
RNNKIT_TRITON_WARPS.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace

import torch

import triton
import triton.runtime.errors  # noqa: F401 (OutOfResources)

from .scan_engine import interpreting


def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 1
    return torch.cuda.get_device_properties(device).multi_processor_count


@dataclass(frozen=True)
class Plan:
    """Launch shape of one kernel: NP programs of BH hidden units, batch tiles of BB rows, K tiles of
    BK (streaming mode), W_hh slice kept on chip (RESIDENT) when it has at most ``resident_limit``
    elements; HP / NGP / GP: padded H, gates per program, padded gate rows (powers of two)."""

    NP: int
    BB: int
    BH: int
    BK: int
    HP: int
    NGP: int
    GP: int
    RESIDENT: bool
    num_warps: int


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def resident_limit(dtype: torch.dtype) -> int:
    """Elements of a W slice kept on chip per program (float32 goes through 3xTF32 dots, which stage
    more shared memory: half the budget); RNNKIT_TRITON_RESIDENT overrides it (0: always stream)."""
    return _env_int("RNNKIT_TRITON_RESIDENT", 8192 if dtype == torch.float32 else 16384)


#: the kernels' activation codes (rnn_kernels._act)
ACTIVATION_CODES = {"tanh": 0, "relu": 1, "sigmoid": 2, "identity": 3}


def plan(B: int, H: int, NG: int, device: torch.device, dtype: torch.dtype, backward: bool) -> Plan:
    """Tile the problem. Forward: each program owns BH units and all NGP gates of them (NGP*BH >= 16
    for tl.dot). Backward: the recurrent matmul's N dimension is BH itself, so BH >= 16."""
    HP = max(16, triton.next_power_of_2(H))  # tl.dot needs K >= 16
    NGP = 4 if NG > 1 else 1
    GP = max(16, triton.next_power_of_2(NG * H))
    # elements of W_hh kept on chip per program (float32 goes through 3xTF32 dots, which stage
    # more shared memory: half the budget); measured on an H100, see bench/NOTES_gpu.md
    wide = dtype == torch.float32
    limit = resident_limit(dtype)
    BB = min(64, max(16, triton.next_power_of_2(B)))
    if interpreting():  # programs run one after another there: a single program, no barrier
        BH = max(16, triton.next_power_of_2(H))
        resident = (GP if backward else HP * NGP) * BH <= limit
        return Plan(1, BB, BH, 16, HP, NGP, GP, resident, 4)
    sms = _sm_count(device)
    if backward:
        BH = max(16, _env_int("RNNKIT_TRITON_BH_BWD", 16))
        resident = GP * BH <= limit
        if resident:
            BB = min(BB, max(16, 2 * limit // GP))
    else:
        bh_min = 16 // NGP
        forced = os.environ.get("RNNKIT_TRITON_BH")
        BH = max(bh_min, int(forced) if forced else triton.next_power_of_2(triton.cdiv(H, 64)))
        big = 2 * limit  # bf16: W slices up to 32K elements stay on chip when the grid allows it
        if not forced and not wide:
            bh = bh_min
            while triton.cdiv(H, bh) > sms:
                bh *= 2
            # the widest grid whose W slice fits on chip; a slice over 16K elements leaves room for
            # one 16-row batch tile only, which won at B=16 (H=768: 1.55x -> 1.94x cuDNN) and lost
            # at B >= 64 (H=1024: 1.17x -> 0.92x), so it is taken for B <= 16 only
            if HP * NGP * bh <= limit or (HP * NGP * bh <= big and B <= 16):
                BH = bh
        resident = HP * NGP * BH <= (limit if wide or B > 16 else big)
        if resident:
            BB = min(BB, max(16, (limit if HP * NGP * BH > limit else 2 * limit) // HP))
    while triton.cdiv(H, BH) > sms:
        BH *= 2
        resident = False
    BK = 64 if dtype != torch.float32 else 32
    big_slice = resident and not backward and HP * NGP * BH > limit
    warps = _env_int("RNNKIT_TRITON_WARPS", 8 if big_slice or not (resident or wide) else 4)
    return Plan(triton.cdiv(H, BH), BB, BH, BK, HP, NGP, GP, resident, warps)


#: plans that ran out of shared memory or registers and were relaunched streaming W_hh (not silent:
#: each is also a warning, and bench/NOTES_gpu.md records the budgets)
STREAMED_PLANS: list = []


def _launch_or_stream(launch, P: Plan) -> None:
    """Launch with the W_hh slice kept on chip; if the compiler finds it does not fit on this GPU,
    relaunch the same kernel reading W_hh per K tile (same maths, slower), and say so."""
    try:
        launch(P)
    except triton.runtime.errors.OutOfResources as exc:
        if not P.RESIDENT:
            raise
        fallback = replace(P, RESIDENT=False, num_warps=4 if P.BK == 32 else 8)
        STREAMED_PLANS.append((P, str(exc)[:120]))
        warnings.warn(f"rnnkit triton engine: {P} does not fit on this GPU ({exc}); "
                      f"streaming W_hh instead", RuntimeWarning, stacklevel=3)
        launch(fallback)


def _precision(dtype: torch.dtype) -> str:
    """float32 dots: three-pass TF32 (about float32 accuracy) unless the user allowed TF32 for
    matmuls (``torch.backends.cuda.matmul.allow_tf32``), as torch does for its own matmuls."""
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "tf32x3"
    return "tf32"
