"""CPU training-step benchmark: rnnkit layers vs torch.nn and a Python LSTMCell loop.

A training step is forward + backward of sum(output) at (B, T, H) with input size H; throughput is
B*T/time in tokens per second. Every ratio divides two numbers measured in the same run: each
rnnkit row is timed alternately with its torch.nn peer and its ratio is the median of the paired ratios.

    python -m rnnkit.bench.cpu [--shapes 1,100,256 32,100,128] [--repeat 5] [--json FILE]
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch

import rnnkit
from rnnkit.atomic import atomic_write_text
from rnnkit.layers import build_layer

from .timing import median_seconds, paired_ratio

SHAPES = [(1, 100, 256), (32, 100, 128), (32, 100, 256), (64, 200, 512)]


@dataclass
class Row:
    shape: Tuple[int, int, int]
    name: str
    engine: str
    ms: float
    tokens_per_s: float
    peer: str
    ratio: float          # peer time / our time (>1: faster than the peer)
    target: Optional[float]


def _torch_layer(kind: str, H: int):
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](H, H)


def _cell_loop(H: int):
    cell = torch.nn.LSTMCell(H, H)

    def run(x):
        h = x.new_zeros(x.shape[1], H)
        c = h
        outs = []
        for t in range(x.shape[0]):
            h, c = cell(x[t], (h, c))
            outs.append(h)
        return torch.stack(outs)

    return run


def _step(module: Callable, x: torch.Tensor) -> Callable[[], None]:
    def fn():
        out = module(x)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()
    return fn


#: (name, factory, peer kind, target ratio vs that peer) for the rows of the table
def _candidates(H: int):
    return [
        # a second torch.nn.LSTM against the peer: the ratio two identical layers get in this run, so
        # a reader can tell a real difference from the machine's noise
        ("torch.nn.LSTM (A/A control)", lambda: torch.nn.LSTM(H, H), "lstm", None),
        ("rnnkit.LSTM", lambda: rnnkit.LSTM(H, H), "lstm", 1.0),
        ("rnnkit.GRU", lambda: rnnkit.GRU(H, H), "gru", 1.0),
        ("rnnkit.RNN", lambda: rnnkit.RNN(H, H), "rnn", 1.0),
        # the same layers forced onto rnnkit's own engine: what decides the CPU priority order
        ("rnnkit.GRU engine=bptt", lambda: rnnkit.GRU(H, H, engine="bptt"), "gru", None),
        ("rnnkit.RNN engine=bptt", lambda: rnnkit.RNN(H, H, engine="bptt"), "rnn", None),
        ("rnnkit.LSTM engine=bptt", lambda: rnnkit.LSTM(H, H, engine="bptt"), "lstm", None),
        ("rnnkit.LSTM engine=cpp", lambda: rnnkit.LSTM(H, H, engine="cpp"), "lstm", None),
        ("lnlstm", lambda: build_layer("lnlstm", H, H), "lstm", 0.8),
        ("peephole_lstm", lambda: build_layer("peephole_lstm", H, H), "lstm", 0.8),
        ("lstm+zoneout", lambda: build_layer("lstm", H, H, zoneout=0.1), "lstm", 0.8),
        ("lstm+dropconnect", lambda: build_layer("lstm", H, H, dropconnect=0.3), "lstm", 0.8),
        ("jordan", lambda: build_layer("jordan", H, H), "lstm", 0.8),
        ("indrnn", lambda: build_layer("indrnn", H, H), "lstm", 0.8),
        ("gru_cho", lambda: build_layer("gru_cho", H, H), "gru", None),
    ]


def bench_shape(B: int, T: int, H: int, repeat: int, only: Optional[List[str]] = None) -> List[Row]:
    torch.manual_seed(0)
    x = torch.randn(T, B, H, requires_grad=True)
    peers: Dict[str, float] = {k: median_seconds(_step(_torch_layer(k, H), x), repeat=repeat)
                               for k in ("lstm", "gru", "rnn")}
    rows = [Row((B, T, H), f"torch.nn.{k.upper()}", "torch", s * 1e3, B * T / s, f"torch.nn.{k.upper()}",
                1.0, None) for k, s in peers.items()]
    loop_s = median_seconds(_step(_cell_loop(H), x), repeat=max(1, repeat // 2))
    rows.append(Row((B, T, H), "LSTMCell loop", "python", loop_s * 1e3, B * T / loop_s, "torch.nn.LSTM",
                    peers["lstm"] / loop_s, None))
    peer_steps = {k: _step(_torch_layer(k, H), x) for k in ("lstm", "gru", "rnn")}
    for name, factory, peer, target in _candidates(H):
        if only and not any(o in name for o in only):
            continue
        layer = factory()
        engine = layer.explain(x).engine if hasattr(layer, "explain") else "torch"  # the whole input's choice
        # the ratio comes from steps alternating with the peer's, not from the peer's row above
        s, _, ratio = paired_ratio(_step(layer, x), peer_steps[peer], repeat=repeat)
        rows.append(Row((B, T, H), name, engine, s * 1e3, B * T / s, f"torch.nn.{peer.upper()}",
                        ratio, target))
    return rows


def format_table(rows: List[Row]) -> str:
    lines = ["| (B, T, H) | layer | engine | ms/step | tokens/s | ratio | vs | target |",
             "|---|---|---|---:|---:|---:|---|---:|"]
    for r in rows:
        tgt = "" if r.target is None else (f">= {r.target:.1f}x " + ("met" if r.ratio >= r.target else "MISSED"))
        lines.append(f"| {r.shape} | {r.name} | {r.engine} | {r.ms:.1f} | {r.tokens_per_s:,.0f} | "
                     f"{r.ratio:.2f}x | {r.peer} | {tgt} |")
    return "\n".join(lines)


def machine_line() -> str:
    return (f"{datetime.date.today().isoformat()}, {platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} threads, torch {torch.__version__}, python {platform.python_version()}")


def run_cpu_bench(shapes=SHAPES, repeat: int = 5, json_path: Optional[str] = None,
                  only: Optional[List[str]] = None) -> List[Row]:
    rows: List[Row] = []
    for B, T, H in shapes:
        rows += bench_shape(B, T, H, repeat, only)
        print(format_table([r for r in rows if r.shape == (B, T, H)]), flush=True)
    if json_path:
        atomic_write_text(json_path, json.dumps({"machine": machine_line(), "rows": [asdict(r) for r in rows]},
                                                indent=1) + "\n")
    return rows


def parse_shape(text: str) -> Tuple[int, int, int]:
    try:
        B, T, H = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shape is B,T,H (three integers), got {text!r}") from None
    return B, T, H


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m rnnkit.bench.cpu", description=__doc__.split("\n")[0])
    p.add_argument("--shapes", nargs="+", type=parse_shape, default=SHAPES, metavar="B,T,H")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--only", nargs="+", help="substrings of row names to run")
    p.add_argument("--json", help="write the rows as JSON here")
    a = p.parse_args(argv)
    print(machine_line())
    rows = run_cpu_bench(a.shapes, a.repeat, a.json, a.only)
    print("\n" + format_table(rows))


if __name__ == "__main__":
    main()
