"""CPU training-step time (forward + backward) of the bptt engine's GRU (both variants), Elman, Jordan
and IndRNN against torch.nn, at the CPU benchmark's shapes (B, T, H), input size = H.

Targets: rnnkit.GRU with engine auto >= 1.0x torch.nn.GRU (which has no fused CPU path);
Jordan and IndRNN on bptt >= 0.8x torch.nn.LSTM. Ratios are peer time / rnnkit time, so > 1 means
rnnkit is faster. The contenders run round-robin (one step of each, repeated) and each gets the median
of its steps, so load from other processes hits all of them alike.

    python -m rnnkit.bench.bptt_gru
    python -m rnnkit.bench.bptt_gru --shapes 32,100,128 --reps 5
    python -m rnnkit.bench.bptt_gru --threads 1 --clock cpu      # steady numbers on a loaded machine
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch

import rnnkit
from rnnkit.layers.recurrent import check_engine_ran

SHAPES = [(1, 100, 256), (32, 100, 128), (32, 100, 256), (64, 200, 512)]

#: column -> (peer column it is compared with, or None for a peer)
COLUMNS: Dict[str, object] = {
    "torch.nn.GRU": None,
    "rnnkit.GRU auto": "torch.nn.GRU",
    "gru bptt": "torch.nn.GRU",
    "gru_cho bptt": "torch.nn.GRU",
    "torch.nn.LSTM": None,
    "jordan bptt": "torch.nn.LSTM",
    "indrnn bptt": "torch.nn.LSTM",
    "torch.nn.RNN": None,
    "elman tanh bptt": "torch.nn.RNN",
    "elman sigmoid bptt": "torch.nn.RNN",
}


def _training_step(module: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step():
        module.zero_grad(set_to_none=True)
        out, _ = module(x)
        out.sum().backward()
    return step


def contenders(B: int, T: int, H: int, names: List[str]) -> Tuple[Dict[str, Callable[[], None]], str]:
    """One training step per named column, and the engine rnnkit.GRU's auto dispatch picked."""
    x = torch.randn(T, B, H)
    auto = rnnkit.GRU(H, H)
    auto_engine = auto.run(x).engine
    layers = {
        "torch.nn.GRU": torch.nn.GRU(H, H),
        "rnnkit.GRU auto": auto,
        "gru bptt": rnnkit.build_layer("gru", H, H, engine="bptt"),
        "gru_cho bptt": rnnkit.build_layer("gru_cho", H, H, engine="bptt"),
        "torch.nn.LSTM": torch.nn.LSTM(H, H),
        "jordan bptt": rnnkit.build_layer("jordan", H, H, engine="bptt"),
        "indrnn bptt": rnnkit.build_layer("indrnn", H, H, engine="bptt"),
        "torch.nn.RNN": torch.nn.RNN(H, H),
        "elman tanh bptt": rnnkit.build_layer("elman", H, H, engine="bptt"),
        "elman sigmoid bptt": rnnkit.build_layer("elman", H, H, activation="sigmoid", engine="bptt"),
    }
    layers = {name: layer for name, layer in layers.items() if name in names}
    for name, layer in layers.items():
        if name.endswith("bptt"):
            check_engine_ran(layer.run(x), "bptt")
    return {name: _training_step(layer.train(), x) for name, layer in layers.items()}, auto_engine


def time_round_robin(steps: Dict[str, Callable[[], None]], reps: int, warmup: int = 2,
                     clock: Callable[[], float] = time.perf_counter) -> Dict[str, float]:
    """Median seconds per step of each contender, the contenders interleaved."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(reps):
        for name, step in steps.items():
            t0 = clock()
            step()
            times[name].append(clock() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv=None) -> List[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="*", default=None, help="B,T,H triples (default: the CPU benchmark's four)")
    ap.add_argument("--columns", nargs="*", default=list(COLUMNS), choices=list(COLUMNS),
                    help="contenders to time (a peer is added for each rnnkit column)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: elapsed time; cpu: this thread's CPU time, steady on a loaded machine "
                         "(needs --threads 1: other threads' time is not counted)")
    ap.add_argument("--reps", type=int, default=0, help="timed reps (default: 15 small, 5 for T*B*H > 1e6)")
    args = ap.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes] if args.shapes else SHAPES
    if args.clock == "cpu" and args.threads != 1:
        ap.error("--clock cpu measures one thread's CPU time: use it with --threads 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    columns = {c: p for c, p in COLUMNS.items() if c in args.columns or c in
               {COLUMNS[k] for k in args.columns if COLUMNS[k] is not None}}
    torch.manual_seed(0)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock; "
          f"fwd+bwd ms (ratio = peer / rnnkit)")
    print("| B, T, H | " + " | ".join(columns) + " |")
    print("|" + "---|" * (1 + len(columns)))
    rows = []
    for B, T, H in shapes:
        reps = args.reps or (5 if B * T * H > 1_000_000 else 15)
        steps, auto_engine = contenders(B, T, H, list(columns))
        med = time_round_robin(steps, reps, clock=clock)
        cells = []
        for name, peer in columns.items():
            text = f"{med[name] * 1e3:.1f}"
            if peer is not None:
                text += f" ({med[peer] / med[name]:.2f}x)"
            if name == "rnnkit.GRU auto":
                text += f" [{auto_engine}]"
            cells.append(text)
        print(f"| {B}, {T}, {H} | " + " | ".join(cells) + " |", flush=True)
        rows.append({"shape": (B, T, H), "auto_engine": auto_engine, **med})
    return rows


if __name__ == "__main__":
    main()
