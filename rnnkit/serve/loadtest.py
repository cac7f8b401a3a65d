"""A bounded load test of a running ``rnnkit serve`` over HTTP (httpx): N concurrent clients send a fixed
number of requests to one route (plain or streamed), within a time budget; what comes back is counted by
status, and latencies give requests per second and p50 / p95 / p99.

    python -m rnnkit.serve.loadtest http://127.0.0.1:8000 /runs/cls/classify '{"inputs": ["I love it"]}' \\
        --clients 8 --requests 200 [--stream]

A request is *lost* when no complete answer came back (a transport error, a client timeout, or a stream that
ended without its ``done`` event); a healthy server loses none, refusing what it cannot take with 503.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import httpx


@dataclass
class LoadResult:
    clients: int
    requests: int
    seconds: float
    statuses: dict = field(default_factory=dict)   # status code -> count (str keys, JSON-ready)
    lost: int = 0
    retry_after_missing: int = 0                   # 503 / 429 answers without a Retry-After header
    latency_ms: dict = field(default_factory=dict)  # p50 / p95 / p99 of the 200 answers (whole stream if streamed)
    first_piece_ms: dict = field(default_factory=dict)  # streamed: p50 / p95 / p99 time to the first event

    @property
    def rps(self) -> float:
        return self.statuses.get("200", 0) / self.seconds if self.seconds else 0.0

    def row(self) -> dict:
        return {**asdict(self), "ok_per_s": round(self.rps, 2)}


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(round(q * (len(v) - 1))))]  # noqa: E731 - nearest rank
    return {"p50": round(pick(0.50), 2), "p95": round(pick(0.95), 2), "p99": round(pick(0.99), 2)}


async def _one(client: httpx.AsyncClient, path: str, body: dict, stream: bool) -> tuple[int, float, float | None, bool]:
    """(status, latency ms, first-piece ms, has Retry-After) of one request; a stream without its done event
    raises."""
    start = time.perf_counter()
    if not stream:
        r = await client.post(path, json=body)
        return r.status_code, 1000 * (time.perf_counter() - start), None, "retry-after" in r.headers
    first = None
    async with client.stream("POST", path, json=body) as r:
        if r.status_code != 200:
            await r.aread()
            return r.status_code, 1000 * (time.perf_counter() - start), None, "retry-after" in r.headers
        done = False
        async for line in r.aiter_lines():
            if first is None and line.startswith("data: "):
                first = 1000 * (time.perf_counter() - start)
            if line == "event: done":
                done = True
            if line == "event: error":
                raise RuntimeError("the stream ended with an error event")
        if not done:
            raise RuntimeError("the stream ended without its done event")
    return 200, 1000 * (time.perf_counter() - start), first, False


async def run_load(base_url: str, path: str, body: dict, *, clients: int, requests: int, stream: bool = False,
                   seconds: float = 60.0, headers: dict | None = None, client_timeout: float = 60.0) -> LoadResult:
    """``requests`` requests over ``clients`` concurrent clients; none is started after ``seconds``."""
    statuses: Counter = Counter()
    latencies, firsts = [], []
    lost = missing_retry = 0
    jobs = iter(range(requests))
    t0 = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=client_timeout, limits=limits) as client:
        async def worker():
            nonlocal lost, missing_retry
            for _ in jobs:
                if time.perf_counter() - t0 > seconds:
                    return
                try:
                    status, ms, first, retry_after = await _one(client, path, body, stream)
                except (httpx.HTTPError, RuntimeError):
                    lost += 1
                    continue
                statuses[str(status)] += 1
                missing_retry += status in (429, 503) and not retry_after
                if status == 200:
                    latencies.append(ms)
                    if first is not None:
                        firsts.append(first)
        await asyncio.gather(*(worker() for _ in range(clients)))
    result = LoadResult(clients, sum(statuses.values()) + lost, time.perf_counter() - t0, dict(statuses), lost,
                        missing_retry, percentiles(latencies), percentiles(firsts))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("path")
    p.add_argument("body", help="the JSON request")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--seconds", type=float, default=60.0, help="start no request after this many seconds")
    p.add_argument("--stream", action="store_true", help="the route's /stream (server-sent events)")
    p.add_argument("--api-key", default="")
    args = p.parse_args(argv)
    headers = {"X-API-Key": args.api_key} if args.api_key else None
    r = asyncio.run(run_load(args.url, args.path, json.loads(args.body), clients=args.clients,
                             requests=args.requests, stream=args.stream, seconds=args.seconds, headers=headers))
    print(json.dumps(r.row()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
