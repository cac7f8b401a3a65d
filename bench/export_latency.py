"""onnxruntime vs PyTorch CPU latency of an exported language model: one generation step, and a whole
sequence. The model is the LM task's (embedding -> recurrent layer -> projection), untrained (latency does
not depend on the weights), exported with the same graphs as ``rnnkit export`` (``rnnkit.tasks.lm.export``).

PyTorch runs as rnnkit runs it (engine auto: the C++ kernels or torch's fused RNNs where they apply),
under no_grad; onnxruntime runs the exported file with one session. Both on one thread by default, timed
alternately (``rnnkit.bench.timing.paired_ratio``). Prints a table and writes JSON (``--json``) with the
date, the machine, the load average before and after, and the versions.

    python bench/export_latency.py [--cells lstm gru] [--hidden 256] [--steps 256] [--batch 1]
                                   [--repeat 30] [--threads 1] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.bench.timing import paired_ratio
from rnnkit.export.routes import export_graph
from rnnkit.tasks.graphs import zero_state
from rnnkit.tasks.lm.config import LMModelConfig
from rnnkit.tasks.lm.export import lm_graphs
from rnnkit.tasks.lm.model import LanguageModel

VOCAB = 96  # a character vocabulary


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def bench_cell(cell: str, hidden: int, layers: int, steps: int, batch: int, repeat: int, threads: int,
               folder: Path) -> list[dict]:
    torch.manual_seed(0)
    model = LanguageModel(VOCAB, LMModelConfig(cell=cell, hidden=hidden, layers=layers, dropout=0.0)).eval()
    graphs = {g.name: g for g in lm_graphs(SimpleNamespace(model=model, meta={"vocab_size": VOCAB}, config=None))}
    rows = []
    for name, T in (("step", 1), ("sequence", steps)):
        g = graphs[name]
        path = folder / f"{cell}-{name}.onnx"
        export_graph(g, "onnx", path)
        sess = session(path, threads)
        tokens = torch.randint(VOCAB, (batch,) if name == "step" else (T, batch))
        state = zero_state(model.rnn, batch)
        feed = {i.name: t.numpy() for i, t in zip(sess.get_inputs(), (tokens, *state))}

        def run_torch():
            with torch.no_grad():
                g.module(tokens, *state)

        def run_ort():
            sess.run(None, feed)

        got, want = sess.run(None, feed)[0], g.module(tokens, *state)[0].detach().numpy()
        err = float(np.abs(got - want).max())
        t_torch, t_ort, ratio = paired_ratio(run_torch, run_ort, repeat=repeat, warmup=3)
        rows.append({"cell": cell, "hidden": hidden, "layers": layers, "graph": name, "steps": T, "batch": batch,
                     "torch_ms": 1e3 * t_torch, "onnxruntime_ms": 1e3 * t_ort, "ort_over_torch": ratio,
                     "max_abs_diff": err})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru"])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--steps", type=int, default=256, help="length of the whole-sequence call")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for cell in args.cells for r in bench_cell(cell, args.hidden, args.layers, args.steps, args.batch,
                                                             args.repeat, args.threads, Path(tmp))]
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_name(),
              "cores": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(),
              "threads": args.threads, "torch": torch.__version__, "onnxruntime": ort.__version__, "rows": rows}
    print(f"{result['date']}  {result['cpu']} ({result['cores']} cores)  load {load_before[0]:.1f} -> "
          f"{result['load_after'][0]:.1f}  threads {args.threads}")
    print(f"{'cell':6} {'graph':9} {'T':>4} {'B':>3} {'torch ms':>9} {'ort ms':>9} {'ort/torch':>9} {'max diff':>9}")
    for r in rows:
        print(f"{r['cell']:6} {r['graph']:9} {r['steps']:>4} {r['batch']:>3} {r['torch_ms']:9.3f} "
              f"{r['onnxruntime_ms']:9.3f} {r['ort_over_torch']:9.2f} {r['max_abs_diff']:9.1e}")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
