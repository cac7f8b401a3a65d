"""``rnnkit bench [--device cpu|cuda] [--json FILE]``: the CPU table or the GPU table
(Triton engines vs cuDNN), tokens per second and ratios to torch.nn measured in the same run."""
from __future__ import annotations

import argparse

import torch

from ..config import ConfigError
from .cpu import SHAPES, parse_shape


def setup_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="cpu: the CPU table; cuda: the GPU table (Triton engines vs cuDNN); "
                        "auto: cuda when available (default)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--shapes", nargs="+", type=parse_shape, metavar="B,T,H",
                   help="(batch, steps, hidden) shapes (default: the benchmark's)")
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions per row, CPU (median)")
    p.add_argument("--quick", action="store_true", help="GPU: two shapes and two scan lengths")


def bench_command(args: argparse.Namespace) -> int:
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.repeat < 1:
        raise ConfigError(f"--repeat must be >= 1, got {args.repeat}")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is visible to torch")
        from .gpu import run_gpu_bench

        run_gpu_bench(args.json, args.quick, shapes=args.shapes)
        return 0
    from .cpu import format_table, machine_line, run_cpu_bench

    print(machine_line())
    rows = run_cpu_bench(args.shapes or SHAPES, args.repeat, args.json)
    print("\n" + format_table(rows))
    return 0
