"""GPU benchmark: rnnkit's Triton engines vs torch.nn (cuDNN), ratios measured in one run.

Rows:
* LSTM / GRU (and Elman, DropConnect-LSTM) at the benchmark's (B, T, H) shapes, float32 and bfloat16:
  training step (forward + backward of sum(output), input size H, input requiring grad) and
  inference (forward under no_grad); throughput B*T/time; ratio = torch's time / ours.
* minGRU / minLSTM at B=16, H=512, T = 512, 4096, 16384: the fused Triton scan vs a plain-torch
  log-space scan (Heinsen's, as in minGRU-pytorch) with the same projection, and vs torch.nn.GRU;
  plus the scan kernels alone as a fraction of the measured device-copy bandwidth.

Times are medians of CUDA-event timings after warm-up.

    python -m rnnkit.bench.gpu [--quick] [--json FILE] [--only lstm gru scan]
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional

import torch

from rnnkit.atomic import atomic_write_text

SHAPES = [(1, 256, 256), (16, 256, 256), (64, 256, 512), (64, 256, 1024), (256, 256, 1024),
          (64, 1024, 512), (16, 1024, 768)]
SCAN_T = [512, 4096, 16384]
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16}
#: the cells torch lacks, fused by the triton engine or run by whatever engine "auto" picks
CUSTOM = ("elman", "indrnn", "lstm+dropconnect", "peephole_lstm", "lnlstm", "jordan", "gru_cho",
          "lstm+zoneout")


@dataclass
class Row:
    part: str             # rnn | custom | scan | kernel
    name: str
    shape: tuple          # (B, T, H)
    dtype: str
    mode: str             # train | infer | fwd+bwd kernels
    engine: str
    ms: float
    tokens_per_s: float
    peer: str
    peer_ms: float
    ratio: float          # peer_ms / ms (> 1: faster than the peer)
    target: Optional[float] = None
    note: str = ""


def cuda_ms(fn: Callable[[], None], reps: int = 10, warmup: int = 3) -> float:
    """Median milliseconds of fn() by CUDA events, after warm-up."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def _train_fn(layer, x):
    def fn():
        out = layer(x)[0]
        out.float().sum().backward()
    return fn


def _infer_fn(layer, x):
    def fn():
        with torch.no_grad():
            layer(x)
    return fn


def _ours(kind: str, H: int, dtype, dev):
    import rnnkit
    from rnnkit.cells import ElmanCell, GRUCell, IndRNNCell, LSTMCell
    from rnnkit.layers import build_layer

    fused = {"lstm": lambda: LSTMCell.from_options(H, H, forget_bias=0.0),
             "gru": lambda: GRUCell.from_options(H, H),
             "elman": lambda: ElmanCell.from_options(H, H, activation="relu"),
             "indrnn": lambda: IndRNNCell.from_options(H, H),
             "lstm+dropconnect": lambda: LSTMCell.from_options(H, H, forget_bias=0.0),
             "peephole_lstm": lambda: LSTMCell.from_options(H, H, peephole=True)}
    if kind in fused:
        kw = {"dropconnect": 0.3} if kind == "lstm+dropconnect" else {}
        return rnnkit.Recurrent(fused[kind](), engine="triton", **kw).to(device=dev, dtype=dtype)
    if kind in ("lnlstm", "jordan", "gru_cho"):  # fused kernels engine="auto" takes only once measured here
        return build_layer(kind, H, H, engine="triton").to(device=dev, dtype=dtype)
    if kind == "lstm+zoneout":
        cell = LSTMCell.from_options(H, H, forget_bias=0.0)
        return rnnkit.Recurrent(cell, engine="triton", zoneout=0.1).to(device=dev, dtype=dtype)
    return build_layer(kind, H, H).to(device=dev, dtype=dtype)  # engine "auto"


def _torch(kind: str, H: int, dtype, dev):
    mod = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    return mod(H, H).to(device=dev, dtype=dtype)


def bench_rnn(shapes=SHAPES, dtypes=("fp32", "tf32", "bf16"), kinds=("lstm", "gru"), reps: int = 10,
              log=print) -> List[Row]:
    """fp32: torch's defaults (cuDNN RNNs use TF32 since cudnn.allow_tf32 is True by default; our
    float32 dots are 3xTF32, float32-accurate); tf32: torch.backends.cuda.matmul.allow_tf32 = True
    too, so our dots are single-pass TF32 like cuDNN's."""
    dev = torch.device("cuda")
    rows: List[Row] = []
    tf32_before = torch.backends.cuda.matmul.allow_tf32
    for B, T, H in shapes:
        for dn in dtypes:
            dt = DTYPES[dn]
            torch.backends.cuda.matmul.allow_tf32 = dn == "tf32" or tf32_before
            x = torch.randn(T, B, H, device=dev, dtype=dt, requires_grad=True)
            peer_cache = {}
            for kind in kinds:
                peer_kind = kind if kind in ("lstm", "gru") else ("gru" if kind == "gru_cho" else "lstm")
                mine = _ours(kind, H, dt, dev)
                engine = mine.explain(x).engine  # the whole input's choice (what the timed calls run)
                note = ""
                if engine == "triton" and kind in ("lstm", "gru", "elman"):
                    from rnnkit.engines.triton.rnn_engine import plan

                    ng = {"lstm": 4, "gru": 3, "elman": 1}[kind]
                    p = plan(B, H, ng, dev, dt, backward=False)
                    note = f"fwd NP={p.NP} BH={p.BH} {'W on chip' if p.RESIDENT else 'W streamed'}"
                slow = engine in ("reference",)
                for mode, make in (("train", _train_fn), ("infer", _infer_fn)):
                    key = (peer_kind, mode)
                    if key not in peer_cache:
                        peer_cache[key] = cuda_ms(make(_torch(peer_kind, H, dt, dev), x), reps)
                    peer_ms = peer_cache[key]
                    ms = cuda_ms(make(mine, x), 3 if slow else reps, 1 if slow else 3)
                    target = 1.0 if kind in ("lstm", "gru") else 0.8
                    if kind == "gru" and (B, T, H) == (16, 256, 256) and dn == "bf16" and mode == "train":
                        target = 2.0
                    r = Row("rnn" if kind in ("lstm", "gru") else "custom", kind, (B, T, H), dn, mode,
                            engine, ms, B * T / ms * 1e3, f"torch.nn.{peer_kind.upper()}", peer_ms,
                            peer_ms / ms, target, note)
                    rows.append(r)
                    log(_fmt(r))
                del mine
            del x
            torch.cuda.empty_cache()
    torch.backends.cuda.matmul.allow_tf32 = tf32_before
    return rows


# -- minGRU / minLSTM ------------------------------------------------------------------------------

def _plain_log_scan_step(cell, x):
    """The plain-torch log-space scan (Heinsen 2023) as minGRU-pytorch writes it, same projection."""
    from rnnkit.engines.scan import heinsen_log_scan

    def fn():
        xp = cell.project_input(x)
        log_a, log_b = cell.scan_log_coefficients(xp)
        h = heinsen_log_scan(log_a.float(), log_b.float())
        h.sum().backward()
    return fn


def copy_bandwidth_gbs(dev) -> float:
    n = 1 << 28  # 1 GiB of float32
    a = torch.empty(n, device=dev, dtype=torch.float32).normal_()
    b = torch.empty_like(a)
    ms = cuda_ms(lambda: b.copy_(a), reps=10)
    return 2 * n * 4 / ms / 1e6


def bench_scan(Ts=SCAN_T, B: int = 16, H: int = 512, dtypes=("fp32", "bf16"), reps: int = 10,
               log=print) -> List[Row]:
    import rnnkit
    from rnnkit.cells.minrnn import MinGRUCell, MinLSTMCell, MinRNNConfig
    from rnnkit.engines.triton.scan_engine import fused_min_scan

    dev = torch.device("cuda")
    rows: List[Row] = []
    bw = copy_bandwidth_gbs(dev)
    log(f"device copy bandwidth (read + write): {bw:.0f} GB/s")
    for T in Ts:
        for dn in dtypes:
            dt = DTYPES[dn]
            x = torch.randn(T, B, H, device=dev, dtype=dt, requires_grad=True)
            gru_ms = cuda_ms(_train_fn(torch.nn.GRU(H, H).to(dev, dt), x), reps)
            for cls in (MinGRUCell, MinLSTMCell):
                cell = cls(MinRNNConfig(H, H)).to(dev, dt)
                fused = rnnkit.Recurrent(cell, engine="triton_scan")
                ms = cuda_ms(_train_fn(fused, x), reps)
                plain_ms = cuda_ms(_plain_log_scan_step(cell, x), reps)
                torch_scan = rnnkit.Recurrent(cell, engine="scan")
                scan_ms = cuda_ms(_train_fn(torch_scan, x), reps)
                name = cell.family
                for peer, pms, tgt in (("plain-torch log-space scan", plain_ms, 4.0),
                                       ("torch.nn.GRU", gru_ms, None),
                                       ("rnnkit scan engine (torch, chunked)", scan_ms, None)):
                    r = Row("scan", name, (B, T, H), dn, "train", "triton_scan", ms, B * T / ms * 1e3,
                            peer, pms, pms / ms, tgt)
                    rows.append(r)
                    log(_fmt(r))
                # the kernels alone: bytes moved over the copy bandwidth
                G = H * (2 if name == "mingru" else 3)
                xp = cell.project_input(x).detach().requires_grad_()
                dout = torch.randn(T, B, H, device=dev, dtype=dt)

                def kernels():
                    h = fused_min_scan(xp, None, name)
                    h.backward(dout)

                kms = cuda_ms(kernels, reps)
                e = torch.tensor([], dtype=dt).element_size()
                nbytes = T * B * e * ((G + H) + (G + 2 * H + G))  # fwd: xp, h; bwd: xp, h, dh, dxp
                gbs = nbytes / kms / 1e6
                r = Row("kernel", name + " scan kernels", (B, T, H), dn, "fwd+bwd kernels", "triton_scan",
                        kms, B * T / kms * 1e3, "device copy", 0.0, gbs / bw, 0.7,
                        note=f"{gbs:.0f} GB/s of {bw:.0f}")
                rows.append(r)
                log(_fmt(r))
            del x
            torch.cuda.empty_cache()
    return rows


# -- report ----------------------------------------------------------------------------------------

def _fmt(r: Row) -> str:
    tgt = "" if r.target is None else (f">= {r.target:g}x " + ("met" if r.ratio >= r.target else "MISSED"))
    return (f"| {r.name} | {r.shape} | {r.dtype} | {r.mode} | {r.engine} | {r.ms:.3f} | "
            f"{r.tokens_per_s:,.0f} | {r.peer} | {r.peer_ms:.3f} | {r.ratio:.2f}x | {tgt} | {r.note} |")


HEADER = ("| cell | (B, T, H) | dtype | mode | engine | ms | tokens/s | peer | peer ms | ratio | target | note |\n"
          "|---|---|---|---|---|---:|---:|---|---:|---:|---|---|")


def machine_line() -> str:
    import triton

    p = torch.cuda.get_device_properties(0)
    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {p.name} ({p.multi_processor_count} SMs), "
            f"torch {torch.__version__}, triton {triton.__version__}, cuDNN {torch.backends.cudnn.version()}, "
            f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}")


def run_gpu_bench(json_path: Optional[str] = None, quick: bool = False,
                  only: Optional[List[str]] = None, shapes=None, dtypes=None, scan_t=None) -> List[dict]:
    """Run the GPU benchmark; returns the rows as dicts (and writes them as JSON to json_path)."""
    if not torch.cuda.is_available():
        raise RuntimeError("the GPU benchmark needs a CUDA device")
    from rnnkit.engines.registry import REGISTRY
    from rnnkit.engines.triton import register

    register(REGISTRY)  # no-op where the core registry already lists the engines
    print(machine_line())
    print(HEADER, flush=True)
    want = lambda part: not only or part in only  # noqa: E731
    shapes = shapes or (SHAPES[:2] if quick else SHAPES)
    dtypes = dtypes or ("fp32", "tf32", "bf16")
    rows: List[Row] = []
    if want("rnn"):
        rows += bench_rnn(shapes, dtypes=dtypes)
    if want("custom"):
        rows += bench_rnn(shapes[1:2], dtypes=("fp32", "bf16"), kinds=CUSTOM)
    if want("scan"):
        rows += bench_scan(scan_t or (SCAN_T[:2] if quick else SCAN_T),
                           dtypes=tuple(d for d in dtypes if d != "tf32"))
    from rnnkit.engines.triton.rnn_engine import STREAMED_PLANS

    for p, why in STREAMED_PLANS:
        print(f"relaunched streaming W_hh: {p}: {why}")
    out = [asdict(r) for r in rows]
    if json_path:
        atomic_write_text(json_path, json.dumps({"machine": machine_line(), "rows": out}, indent=1) + "\n")
    print("\n" + HEADER)
    for r in rows:
        print(_fmt(r))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m rnnkit.bench.gpu", description=__doc__.split("\n")[0])
    p.add_argument("--json", help="write the rows as JSON here")
    p.add_argument("--quick", action="store_true", help="two shapes, two scan lengths")
    p.add_argument("--only", nargs="+", choices=["rnn", "custom", "scan"])
    p.add_argument("--shapes", nargs="+", metavar="B,T,H", help="LSTM/GRU shapes (default: the benchmark's)")
    p.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES))
    p.add_argument("--scan-t", nargs="+", type=int, help="sequence lengths of the scan rows")
    a = p.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split(",")) for s in a.shapes] if a.shapes else None
    run_gpu_bench(a.json, a.quick, a.only, shapes, a.dtypes, a.scan_t)


if __name__ == "__main__":
    main()
