"""Timing helpers: median wall time of a callable after warm-up, with device synchronisation."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def median_seconds(fn: Callable[[], None], *, repeat: int = 5, warmup: int = 1, device: str = "cpu") -> float:
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_ratio(fn: Callable[[], None], peer: Callable[[], None], *, repeat: int = 5, warmup: int = 1,
                 device: str = "cpu"):
    """Time ``fn`` and ``peer`` alternately, so that a machine that speeds up or slows down during the
    run affects both alike, in an order that swaps every pair (fn, peer, peer, fn, fn, peer, ...): the
    second call of a pair runs on caches and an allocator the first one left, which on a 2-core VM
    moved a torch.nn.LSTM-vs-itself ratio by up to 10% when one side always went first. Returns
    (median seconds of fn, median of peer, median over the pairs of peer time / fn time)."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
        peer()
    sync()
    mine, theirs = [], []
    for i in range(repeat):
        pair = ((fn, mine), (peer, theirs))
        for f, out in (pair if i % 2 == 0 else pair[::-1]):
            start = time.perf_counter()
            f()
            sync()
            out.append(time.perf_counter() - start)
    ratios = [p / m for m, p in zip(mine, theirs)]
    return statistics.median(mine), statistics.median(theirs), statistics.median(ratios)
