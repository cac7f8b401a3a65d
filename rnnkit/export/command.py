"""``rnnkit export RUN``: every graph of a trained run, written, checked against PyTorch, described.

The run's task comes from its checkpoint through the registry; the task names the graphs
(:meth:`~rnnkit.tasks.task.Task.export_graphs`). Each graph is traced with the export engine pinned on
its recurrent layers, written to ``OUT/<graph><suffix>``, run back on inputs of other sizes and compared
with the PyTorch model; ``OUT/export.json`` lists the graphs, their inputs and outputs (with the
dynamic axes named) and the largest difference found.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from rnnkit.engines import REGISTRY
from rnnkit.export.parity import check_parity
from rnnkit.export.pin import EXPORT_ENGINE, pinned_engine, recurrent_layers
from rnnkit.export.routes import FORMATS, SUFFIX, ExportError, export_graph
from rnnkit.tasks import task_of_run
from rnnkit.tasks.graphs import ExportGraph
from rnnkit.tasks.runs import write_json


def cannot_export(model: nn.Module) -> str | None:
    """Why the export engine cannot run one of the model's recurrent layers (naming it), or None."""
    engine = REGISTRY.get(EXPORT_ENGINE)
    for name, layer in recurrent_layers(model):
        reason = REGISTRY.reason(engine, layer.request(torch.device("cpu"), torch.float32))
        if reason is not None:
            return f"layer {name} ({type(layer.first_cell).__name__}, {layer.family} cell): {reason}"
    return None


class _Layer(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]


def culprit(model: nn.Module) -> str | None:
    """The first recurrent layer of ``model`` that torch.export cannot trace alone, with the reason."""
    for name, layer in recurrent_layers(model):
        x = torch.zeros(3, 2, layer.input_size)  # (T, B, I); batch_first layers read it as (B=3, T=2)
        probe = _Layer(layer).eval()
        torch.compiler.reset()  # as routes.trace: no guards left over from earlier traces
        try:
            with pinned_engine(probe), torch.no_grad():
                torch.export.export(probe, (x,), dynamic_shapes=({0: torch.export.Dim("a", min=1),
                                                                  1: torch.export.Dim("b", min=1)},))
        except Exception as err:  # any tracing failure: reported with the cell it came from
            return (f"the {type(layer.first_cell).__name__} cell ({layer.family}) of layer {name} cannot be "
                    f"traced: {str(err).strip().splitlines()[0]}")
    return None


def describe(graph: ExportGraph) -> tuple[list, list]:
    """Inputs and outputs of a graph for export.json: names, dtypes, shapes with dynamic axes named."""
    inputs = []
    for name, t in zip(graph.input_names, graph.inputs):
        axes = graph.dynamic.get(name, {})
        inputs.append({"name": name, "dtype": str(t.dtype).replace("torch.", ""),
                       "shape": [axes.get(i, int(n)) for i, n in enumerate(t.shape)]})
    outputs = [{"name": n} for n in graph.output_names]
    return inputs, outputs


def export_one(graph: ExportGraph, fmt: str, out: Path, check: bool = True) -> dict:
    """Export one graph (and check it); its entry of export.json."""
    reason = cannot_export(graph.module)
    if reason is not None:
        raise ExportError(f"graph {graph.name}: {reason}")
    path = out / f"{graph.name}{SUFFIX[fmt]}"
    try:
        export_graph(graph, fmt, path)
    except ExportError:
        raise
    except Exception as err:  # torch.export / the ONNX translation: say which cell, if one is the cause
        why = culprit(graph.module)
        detail = why or f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        raise ExportError(f"graph {graph.name} cannot be exported to {fmt}: {detail}") from err
    inputs, outputs = describe(graph)
    entry = {"name": graph.name, "file": path.name, "about": graph.about, "inputs": inputs, "outputs": outputs}
    if graph.multiples:
        entry["multiples"] = graph.multiples  # dimension -> the graph takes multiples of this only
    if check:
        entry["parity"] = {"rtol": graph.rtol, "atol": graph.atol,
                           "checked_on": [list(t.shape) for t in graph.check_inputs],
                           "max_abs_error": check_parity(graph, fmt, path)}
    return entry


def export_run(run: str | Path, fmt: str = "onnx", out: str | Path | None = None, which: str = "best",
               check: bool = True) -> dict:
    """Export every graph of a trained run into ``out`` (default ``RUN/export-<format>``); the manifest."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    task = task_of_run(run)
    loaded = task.load(run, which)
    graphs = task.export_graphs(loaded)
    out = Path(out) if out else (Path(run) if Path(run).is_dir() else Path(run).parent) / f"export-{fmt}"
    manifest = {"out": str(out), "task": task.name, "run": str(run), "checkpoint": which, "format": fmt,
                "torch": torch.__version__, "engine": f"{EXPORT_ENGINE} (the reference step loop as torch's scan)",
                "graphs": [export_one(g, fmt, out, check) for g in graphs]}
    write_json(out / "export.json", manifest)
    return manifest


# ----------------------------------------------------------------------- CLI

def setup_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory of `rnnkit train TASK` (or a .safetensors file)")
    p.add_argument("--format", choices=FORMATS, default="onnx",
                   help="onnx (run with onnxruntime) or torch-export (a torch.export program, .pt2)")
    p.add_argument("--out", metavar="DIR", default="", help="where to write (default: RUN_DIR/export-FORMAT)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    p.add_argument("--no-check", action="store_true",
                   help="skip running each exported graph against the PyTorch model")


def export_command(args: argparse.Namespace) -> int:
    manifest = export_run(args.run, args.format, args.out or None, args.checkpoint, check=not args.no_check)
    for g in manifest["graphs"]:
        where = Path(manifest["out"]) / g["file"]
        parity = g.get("parity")
        said = (f"; max |difference| vs PyTorch {max(parity['max_abs_error'].values()):.2e}" if parity else "")
        print(f"{where}: {g['about']}{said}")
    return 0
