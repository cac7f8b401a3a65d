"""Data-parallel throughput on one machine: 1 process vs 2 (one thread each), and two "machines"
simulated on loopback (two torchrun launches with --nnodes 2, one process each).

Trains the character LM on its embedded default for a fixed number of updates of the same global
batch and reports training tokens per second (the median over the updates after the first 5, from
rank 0's metrics.jsonl), with the machine's load average before and after each run.

    python bench/ddp_throughput.py --steps 60 --hidden 256 --batch-size 32 --bptt 64
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rnnkit.atomic import atomic_write_text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tokens_per_s(run: Path) -> float:
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_s"] for r in steps if r["kind"] == "step"][5:]
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--bptt", type=int, default=64)
    ap.add_argument("--json", default="", help="also write the results here")
    args = ap.parse_args()
    train = ["train", "lm", "--max-steps", str(args.steps), "--epochs", "100", "--hidden", str(args.hidden),
             "--layers", "1", "--batch-size", str(args.batch_size), "--bptt", str(args.bptt), "--threads", "1",
             "--device", "cpu", "--progress", "none", "--tensorboard", "off", "--log-every", "1",
             "--eval-every", "0", "--patience", "0"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                              "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    root = Path(tempfile.mkdtemp(prefix="rnnkit-ddp-bench-"))
    rnnkit = [sys.executable, "-m", "rnnkit"]
    port = free_port()

    def node(rank: int, out: Path) -> list[str]:
        return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
                "--nproc-per-node", "1", "--rdzv-endpoint", f"127.0.0.1:{port}", "-m", "rnnkit", *train,
                "--out", str(out)]

    setups = {
        "1 process": [rnnkit + train + ["--out", str(root / "one")]],
        "2 processes (--devices 2)": [rnnkit + train + ["--out", str(root / "two"), "--devices", "2"]],
        "2 nodes on loopback (--nnodes 2)": [node(0, root / "nodes"), node(1, root / "nodes")],
    }
    results = {}
    for (name, commands), out in zip(setups.items(), ("one", "two", "nodes")):
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for c in commands]
        errors = [p.communicate()[1] for p in procs]
        if any(p.returncode for p in procs):
            raise SystemExit(f"{name} failed:\n" + "\n".join(errors))
        results[name] = {"tokens_per_s": round(tokens_per_s(root / out)), "wall_s": round(time.perf_counter() - t, 1),
                         "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2)}
        print(name, results[name], flush=True)
    base = results["1 process"]["tokens_per_s"]
    for r in results.values():
        r["speedup"] = round(r["tokens_per_s"] / base, 2)
    print(json.dumps({"settings": vars(args), "cores": os.cpu_count(), "results": results}, indent=1))
    if args.json:
        atomic_write_text(args.json, json.dumps({"settings": vars(args), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
