"""One step at a time (generation, beam search): per-token time of a stacked layer on the CPU.

Each call runs one time step (T = 1) under no_grad with the state carried from the previous call, as
``rnnkit generate`` and a beam-search decoder do. Rows: torch.nn, rnnkit with engine auto, and rnnkit
forced onto the cpp engine; each rnnkit row is timed alternately with torch.nn's (blocks of calls)
and its ratio is the median of the paired ratios (torch.nn time / rnnkit time, > 1: rnnkit faster).

A second table covers the cells torch has no fused kernel for: rnnkit with engine auto and forced onto
the reference engine (the cell's step, one call per layer), each paired with the same layer forced onto
its compiled engine (cpp where it has a C++ loop, otherwise bptt), which auto took for these calls
before single steps went to the reference engine.

    python -m rnnkit.bench.onestep [--hidden 128 256 512] [--layers 2] [--batch 1] [--repeat 7]
"""
from __future__ import annotations

import argparse
from typing import List

import torch

import rnnkit
from rnnkit.layers import build_layer

from .cpu import machine_line
from .timing import paired_ratio

LAYERS = {"lstm": (torch.nn.LSTM, rnnkit.LSTM), "gru": (torch.nn.GRU, rnnkit.GRU)}


def _tokens(layer, x: torch.Tensor, n: int):
    """n calls of one step each, the state carried (what a generator does per token)."""
    def run():
        state = None
        with torch.no_grad():
            for _ in range(n):
                _, state = layer(x, state)
    return run


def bench_one_step(hidden: List[int], layers: int = 2, batch: int = 1, repeat: int = 7, tokens: int = 50) -> str:
    lines = ["| layer | H | torch.nn us/token | rnnkit auto (engine) | ratio | rnnkit cpp us/token | ratio |",
             "|---|---:|---:|---|---:|---:|---:|"]
    for kind, (torch_cls, ours_cls) in LAYERS.items():
        for H in hidden:
            torch.manual_seed(0)
            theirs = torch_cls(H, H, num_layers=layers)
            auto = ours_cls(H, H, num_layers=layers)
            cpp = ours_cls(H, H, num_layers=layers, engine="cpp")
            auto.load_state_dict(theirs.state_dict())
            cpp.load_state_dict(theirs.state_dict())
            x = torch.randn(1, batch, H)
            with torch.no_grad():  # the engine the timed calls take (they keep no gradient)
                engine = auto.run(x).engine
            peer = _tokens(theirs, x, tokens)
            a_s, p_s, a_ratio = paired_ratio(_tokens(auto, x, tokens), peer, repeat=repeat)
            c_s, _, c_ratio = paired_ratio(_tokens(cpp, x, tokens), peer, repeat=repeat)
            per = 1e6 / tokens
            lines.append(f"| {kind} x{layers} | {H} | {p_s * per:.0f} | {a_s * per:.0f} ({engine}) | {a_ratio:.2f}x "
                         f"| {c_s * per:.0f} | {c_ratio:.2f}x |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


#: (row name, build_layer cell, options) for the cells torch.nn lacks
VARIANTS = [("lnlstm", "lnlstm", {}), ("peephole_lstm", "peephole_lstm", {}),
            ("lstm+zoneout", "lstm", {"zoneout": 0.1}), ("gru_cho", "gru_cho", {}), ("lngru", "lngru", {}),
            ("elman sigmoid", "elman", {"activation": "sigmoid"}), ("jordan", "jordan", {}), ("indrnn", "indrnn", {})]


def bench_variants(hidden: List[int], layers: int = 2, batch: int = 1, repeat: int = 7, tokens: int = 50) -> str:
    lines = ["| layer | H | compiled engine us/token | rnnkit auto (engine) | ratio | reference us/token | ratio |",
             "|---|---:|---:|---|---:|---:|---:|"]
    for name, cell, options in VARIANTS:
        for H in hidden:
            torch.manual_seed(0)
            auto = build_layer(cell, H, H, num_layers=layers, **options)
            x = torch.randn(1, batch, H)
            compiled_name = "cpp" if cell not in ("jordan", "indrnn") else "bptt"
            layers_by_engine = {}
            for engine in (compiled_name, "reference"):
                layers_by_engine[engine] = build_layer(cell, H, H, num_layers=layers, engine=engine, **options)
                layers_by_engine[engine].load_state_dict(auto.state_dict())
            with torch.no_grad():
                engine = auto.run(x).engine
            peer = _tokens(layers_by_engine[compiled_name], x, tokens)
            a_s, p_s, a_ratio = paired_ratio(_tokens(auto, x, tokens), peer, repeat=repeat)
            r_s, _, r_ratio = paired_ratio(_tokens(layers_by_engine["reference"], x, tokens), peer, repeat=repeat)
            per = 1e6 / tokens
            lines.append(f"| {name} x{layers} | {H} | {p_s * per:.0f} ({compiled_name}) | {a_s * per:.0f} ({engine}) "
                         f"| {a_ratio:.2f}x | {r_s * per:.0f} | {r_ratio:.2f}x |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m rnnkit.bench.onestep", description=__doc__.split("\n")[0])
    p.add_argument("--hidden", nargs="+", type=int, default=[128, 256, 512])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args(argv)
    for name, value in (("--layers", a.layers), ("--batch", a.batch), ("--repeat", a.repeat)):
        if value < 1:
            p.error(f"{name} must be >= 1, got {value}")
    print(machine_line())
    print("\n" + bench_one_step(a.hidden, a.layers, a.batch, a.repeat))
    print("\n" + bench_variants(a.hidden, a.layers, a.batch, a.repeat))


if __name__ == "__main__":
    main()
