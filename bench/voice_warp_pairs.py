"""The vocal-tract warp estimator on pairs whose answer is known (docs/voice-translation.md, "Depth, validated").

The depth criterion compares an English input with its French output: envelopes averaged over different words.
Here the same estimator meets pairs of that kind with a known answer: two different held-out sentences of the
same held-out voice (answer 1.0: one vocal tract, other words), and the same pairs with the second's envelope
warped by a known factor (0.85, 1.2). Besides :func:`rnnkit.modules.voice.estimate_warp` (mean-removed log
envelopes, squared difference, both directions) it scores two variants: one direction only, and one minus the
correlation instead of the squared difference.

    python bench/voice_warp_pairs.py BUNDLE [--every 4] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from rnnkit.data.audio import read_audio
from rnnkit.data.speech_parallel import read_translation_manifest
from rnnkit.modules import voice, world

FS = 16000


def read_warped(source: np.ndarray, alphas: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """``source`` (K,) warped by each alpha, read on the ``inside`` bins (A, I), its mean per row removed."""
    reads = np.flatnonzero(inside)[None, :] / alphas[:, None]
    w = np.interp(reads, np.arange(len(source), dtype=np.float64), source)
    return w - w.mean(axis=1, keepdims=True)


def squared(source, target, alphas, inside):
    t = target[inside] - target[inside].mean()
    return np.mean((read_warped(source, alphas, inside) - t) ** 2, axis=1)


def one_minus_correlation(source, target, alphas, inside):
    t = target[inside] - target[inside].mean()
    w = read_warped(source, alphas, inside)
    return 1.0 - (w @ t) / (np.linalg.norm(w, axis=1) * np.linalg.norm(t))


VARIANTS = {"squared, both directions (estimate_warp)": (squared, True), "squared, one direction": (squared, False),
            "correlation, both directions": (one_minus_correlation, True)}


def estimate(a: world.WorldAnalysis, b: world.WorldAnalysis, errors, both: bool) -> tuple[float, bool]:
    """The grid point of least error (no parabola: the grid's 0.1% is finer than the 5% judged) and whether it is
    the search range's edge."""
    ref, oth = voice.mean_log_envelope(a), voice.mean_log_envelope(b)
    f = a.frequencies
    inside = (f >= voice.BAND[0]) & (f <= min(voice.BAND[1], 0.95 * a.sample_rate / 2))
    grid = voice.warp_grid()
    e = errors(ref, oth, grid, inside) + (errors(oth, ref, 1.0 / grid, inside) if both else 0.0)
    best = int(np.argmin(e))
    return float(grid[best]), best in (0, len(grid) - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--every", type=int, default=4, help="use one ordered pair in this many")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    c0 = time.process_time()
    by_voice: dict[str, list] = {}
    for r in read_translation_manifest(Path(args.bundle) / "data" / "test.jsonl"):
        by_voice.setdefault(r.voice, []).append(world.analyze(read_audio(r.audio, FS), FS, aperiodicity=False))
    results = {}
    for name, (errors, both) in VARIANTS.items():
        results[name] = {}
        for alpha in (1.0, 0.85, 1.2):
            dev, edge = [], 0
            for analyses in by_voice.values():
                for i, a in enumerate(analyses):
                    for j, b in enumerate(analyses):
                        if i == j or (i + j) % args.every:
                            continue
                        warped = b if alpha == 1.0 else b.with_(envelope=voice.warp_envelope(b.envelope, alpha))
                        est, at_edge = estimate(a, warped, errors, both)
                        dev.append(abs(est / alpha - 1))
                        edge += at_edge
            dev = np.array(dev)
            results[name][str(alpha)] = {"pairs": len(dev), "within_5pct": float(np.mean(dev <= 0.05)),
                                         "at_range_edge": edge / len(dev), "median_abs_dev": float(np.median(dev))}
        print(name, json.dumps(results[name]), flush=True)
    out = {"bundle": args.bundle, "every": args.every, "cpu_s": time.process_time() - c0, "variants": results}
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    sys.exit(main())
