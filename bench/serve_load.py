"""Load test of `rnnkit serve` on loopback: requests per second and p50/p95/p99 latency for classification
and for streamed generation at 1, 8 and 64 concurrent clients, bounded in requests and time.

    python bench/serve_load.py [--lm RUN --classify RUN] [--requests 200] [--json bench/serve_load.json]

Without runs it trains two briefly (the `demo` LM preset: a 256-unit character LSTM; the `reviews-bilstm`
classifier), a few updates each: speed depends on the model's size, not on how well it is trained.
The server runs as its own process (`rnnkit serve --threads 1`); the clients are httpx in this process.
Routes are found through GET /runs by their panel, so this names no task's route by hand.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from rnnkit.atomic import atomic_write_text
from rnnkit.serve.loadtest import run_load


def train(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "rnnkit", "train", *args], check=True, stdout=subprocess.DEVNULL)


def start_server(runs: list[str], port: int, flags: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "serve", *runs, "--port", str(port), "--threads", "1",
                             "--log-level", "warning", *flags])
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not come up")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lm", help="a language-model run (default: train one briefly)")
    p.add_argument("--classify", help="a text-classifier run (default: train one briefly)")
    p.add_argument("--clients", default="1,8,64")
    p.add_argument("--requests", type=int, default=200, help="classification requests per level")
    p.add_argument("--streams", type=int, default=64, help="streamed generations per level")
    p.add_argument("--length", type=int, default=100, help="tokens per streamed generation")
    p.add_argument("--seconds", type=float, default=60.0, help="no request starts later than this, per level")
    p.add_argument("--max-concurrent", type=int, default=4)
    p.add_argument("--max-queue", type=int, default=28)
    p.add_argument("--json", default="", help="write the results here")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rnnkit-serve-bench-"))
    lm, cls = args.lm, args.classify
    if not lm:
        lm = str(tmp / "lm")
        train(["lm", "--preset", "demo", "--out", lm, "--max-steps", "5", "--max-time", "60", "--eval-every", "5"])
    if not cls:
        cls = str(tmp / "classify")
        train(["classify", "--preset", "reviews-bilstm", "--out", cls, "--max-steps", "5", "--epochs", "1"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = start_server([lm, cls], port, ["--max-concurrent", str(args.max_concurrent),
                                            "--max-queue", str(args.max_queue), "--max-length", "10000"])
    try:
        runs = httpx.get(url + "/runs").json()
        route = {r["panel"]: r for run in runs for r in run["routes"]}
        levels = [int(c) for c in args.clients.split(",")]
        rows = []
        for clients in levels:
            for what, path, body, n, stream in (
                    ("classify", route["classify"]["path"], {"inputs": ["a wonderful, moving film"]}, args.requests,
                     False),
                    ("generate (streamed)", route["generate"]["stream"],
                     {"prompt": "def ", "length": args.length, "temperature": 0.8}, args.streams, True)):
                load_before = os.getloadavg()[0]
                r = asyncio.run(run_load(url, path, body, clients=clients, requests=n, stream=stream,
                                         seconds=args.seconds))
                rows.append({"route": what, **r.row(), "load_1min_before": round(load_before, 2)})
                s = r.statuses
                print(f"{what:20} clients {clients:3}: {r.requests:4} requests in {r.seconds:6.1f} s, "
                      f"{r.rps:7.1f} ok/s, p50 {r.latency_ms.get('p50', 0):8.1f} ms, p95 {r.latency_ms.get('p95', 0):8.1f}"
                      f" ms, p99 {r.latency_ms.get('p99', 0):8.1f} ms, statuses {s}, lost {r.lost}"
                      + (f", first piece p50 {r.first_piece_ms['p50']} ms" if r.first_piece_ms else ""), flush=True)
    finally:
        server.terminate()
        server.wait(10)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_name(),
            "cores": os.cpu_count(), "load_1_5_15_after": [round(v, 2) for v in os.getloadavg()],
            "server": {"threads": 1, "max_concurrent": args.max_concurrent, "max_queue": args.max_queue},
            "lm": lm, "classify": cls, "length": args.length}
    print(json.dumps(meta))
    if args.json:
        atomic_write_text(args.json, json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
