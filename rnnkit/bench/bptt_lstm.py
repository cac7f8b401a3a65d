"""CPU training-step time (forward + backward) of LSTM variants on the bptt engine vs torch.nn.LSTM.

Target: custom LSTMs (LayerNorm, peephole, zoneout, DropConnect) on the bptt engine at
>= 0.8x torch.nn.LSTM's throughput at the same (B, T, H), input size = H. Ratios are measured in the
same run: ratio = time(torch.nn.LSTM) / time(variant), so > 1 is faster than torch.

    python -m rnnkit.bench.bptt_lstm                 # all shapes
    python -m rnnkit.bench.bptt_lstm --shapes 1,100,256 32,100,128 --reps 5
"""
from __future__ import annotations

import argparse
import platform
import time
from typing import Callable, Dict, List, Tuple

import torch

import rnnkit
from rnnkit.cells.lstm import LSTMCell, LSTMConfig
from rnnkit.layers.recurrent import check_engine_ran

SHAPES = [(1, 100, 256), (32, 100, 128), (32, 100, 256), (64, 200, 512)]

#: name -> (cell options, layer regularisers)
VARIANTS: Dict[str, Tuple[dict, dict]] = {
    "plain": ({}, {}),
    "peephole": ({"peephole": True}, {}),
    "layernorm": ({"layer_norm": True}, {}),
    "zoneout": ({}, {"zoneout": 0.1}),
    "dropconnect": ({}, {"dropconnect": 0.3}),
}


def time_steps(steps: Dict[str, Callable[[], None]], reps: int, warmup: int = 2) -> Dict[str, float]:
    """Minimum seconds of one call of each step over reps rounds, the steps interleaved within each
    round so that load from other processes hits all of them alike (the minimum is the least
    disturbed run, as timeit recommends)."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(reps):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


def torch_step(B: int, T: int, H: int) -> Callable[[], None]:
    lstm = torch.nn.LSTM(H, H).train()
    x = torch.randn(T, B, H)

    def step():
        lstm.zero_grad(set_to_none=True)
        out, _ = lstm(x)
        out.sum().backward()
    return step


def bptt_step(B: int, T: int, H: int, cell_opts: dict, reg: dict) -> Callable[[], None]:
    layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(H, H, **cell_opts)), engine="bptt", **reg).train()
    x = torch.randn(T, B, H)
    check_engine_ran(layer.run(x), "bptt")

    def step():
        layer.zero_grad(set_to_none=True)
        out, _ = layer(x)
        out.sum().backward()
    return step


def main(argv=None) -> List[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="*", default=None, help="B,T,H triples (default: the CPU benchmark's four)")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--reps", type=int, default=0, help="timed rounds (default: 10 small, 3 for T*B*H > 1e6)")
    args = ap.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes] if args.shapes else SHAPES
    torch.manual_seed(0)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; min fwd+bwd ms (ratio = torch / variant)")
    header = "| B, T, H | torch.nn.LSTM ms | " + " | ".join(f"{v} ms (ratio)" for v in args.variants) + " |"
    print(header)
    print("|" + "---|" * (2 + len(args.variants)))
    rows = []
    for B, T, H in shapes:
        reps = args.reps or (3 if B * T * H > 1_000_000 else 10)
        steps = {"torch": torch_step(B, T, H)}
        steps.update({name: bptt_step(B, T, H, *VARIANTS[name]) for name in args.variants})
        row = time_steps(steps, reps)
        ref = row["torch"]
        cells = [f"{row[name] * 1e3:.1f} ({ref / row[name]:.2f}x)" for name in args.variants]
        row["shape"] = (B, T, H)
        print(f"| {B}, {T}, {H} | {ref * 1e3:.1f} | " + " | ".join(cells) + " |", flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
