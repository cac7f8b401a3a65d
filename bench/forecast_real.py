"""Forecasting on real series: ``rnnkit train forecast`` with its defaults vs the baselines of its backtest table.

The data stays where it is (``../shared/data/timeseries/`` beside the checkout, or ``--root``); nothing is copied
into the repository.  Each series is trained with the command a user would type (defaults only, plus the target
column and, for ETTh1, the horizon); extra options after ``--`` go to every run (for trying settings).

    python bench/forecast_real.py [--root DIR] [--only NAME,..] [--out DIR] [--json FILE] [-- OPTIONS]

Prints one markdown row per series: the network's MASE, each baseline's MASE, the best baseline, wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from rnnkit.atomic import atomic_write_text

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent.parent.parent / "shared" / "data" / "timeseries"   # /work/shared/data/timeseries

# name -> (file under the root, options a user types beyond --data)
SERIES = {
    "car-sales": ("classic_univariate/monthly-car-sales.csv", ["--target", "Sales"]),
    "champagne": ("classic_univariate/monthly_champagne_sales.csv", ["--target", "Sales"]),
    "robberies": ("classic_univariate/monthly-robberies.csv", ["--target", "Robberies"]),
    "shampoo": ("classic_univariate/shampoo.csv", ["--target", "Sales"]),
    "etth1-24": ("ett/ETTh1.csv", ["--target", "OT", "--horizon", "24"]),
    "etth1-96": ("ett/ETTh1.csv", ["--target", "OT", "--horizon", "96"]),
}
BASELINES = ("naive", "seasonal", "ar", "ets", "sarima")


def run_one(name: str, root: Path, out: Path, extra: list[str]) -> dict:
    from rnnkit.cli import main
    rel, opts = SERIES[name]
    run = out / name
    if run.exists():
        shutil.rmtree(run)   # the bench's own scratch runs (--out), replaced on every call
    cmd = ["train", "forecast", "--data", str(root / rel), *opts, "--out", str(run), "--progress", "none",
           "--tensorboard", "off", *extra]
    load = os.getloadavg()[0]
    start = time.strftime("%H:%M:%S", time.gmtime())
    t0 = time.perf_counter()
    rc = main(cmd)
    wall = time.perf_counter() - t0
    if rc != 0:
        return {"series": name, "rc": rc, "command": "rnnkit " + " ".join(cmd)}
    result = json.loads((run / "result.json").read_text())
    test = result["test"]
    net = next(k for k in test if k not in BASELINES)
    base = {k: test[k]["mase"] for k in BASELINES if k in test}
    best = min(base, key=base.get)
    return {"series": name, "rc": 0, "network": net, "mase": test[net]["mase"], "baselines": base,
            "best": best, "beats": test[net]["mase"] <= base[best], "wall_s": round(wall, 1), "start_utc": start,
            "model": result.get("model"), "lookback": result.get("lookback"), "auto": result.get("auto"),
            "ar_lags": (result.get("baselines_chose") or {}).get("ar", {}).get("lags"),
            "load_1min": round(load, 2), "transform": result.get("transform"), "origins": result["origins"],
            "command": "rnnkit " + " ".join(cmd[:cmd.index("--out")] + extra)}


def main() -> int:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--only", default="", help="comma-separated series names: " + ", ".join(SERIES))
    p.add_argument("--out", type=Path, default=Path("/tmp/rnnkit-forecast-bench"))
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(SERIES)
    rows = []
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, extra options: {' '.join(extra) or '(none)'}")
    print("| series | network (model, lookback) | network MASE | " + " | ".join(BASELINES)
          + " | AR lags (AIC) | best baseline | beats | start (UTC) | time (s) | load |")
    for name in names:
        r = run_one(name, args.root, args.out, extra)
        rows.append(r)
        if r["rc"]:
            print(f"| {name} | failed (exit {r['rc']}) |", flush=True)
            continue
        cells = " | ".join(f"{r['baselines'].get(b, float('nan')):.3f}" for b in BASELINES)
        cells += f" | {r['ar_lags']}"
        print(f"| {name} | {r['network']} ({r['model']}, {r['lookback']}) | {r['mase']:.3f} | {cells} | {r['best']} | "
              f"{'yes' if r['beats'] else 'no'} | {r['start_utc']} | {r['wall_s']} | {r['load_1min']} |", flush=True)
        if args.json:  # after every series, so a run cut short keeps what it measured
            atomic_write_text(args.json, json.dumps(rows, indent=1) + "\n")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
