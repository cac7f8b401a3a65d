"""The two routes a graph is exported by, and how each exported file is run back.

* ``onnx``: ``torch.onnx.export(..., dynamo=True)`` (torch.export, then onnxscript's translation). The
  recurrent loop becomes one ONNX ``Scan`` node, so batch and sequence length stay symbolic.
  Run back with onnxruntime alone.
* ``torch-export``: the ``torch.export.ExportedProgram`` itself, saved as ``.pt2`` (``torch.export.save``):
  a Python-free graph for PyTorch runtimes (AOTInductor, ExecuTorch). Run back with ``torch.export.load``.

Both trace the model with the export engine pinned on every recurrent layer (:mod:`rnnkit.export.pin`).
"""
from __future__ import annotations

import importlib
import inspect
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch

from rnnkit.config import ConfigError
from rnnkit.export.pin import pinned_engine
from rnnkit.tasks.graphs import ExportGraph

FORMATS = ("onnx", "torch-export")
SUFFIX = {"onnx": ".onnx", "torch-export": ".pt2"}


class ExportError(ConfigError):
    """A graph could not be exported, or its exported form disagrees with the PyTorch model."""


def need(module: str):
    """Import an optional dependency of the ONNX route or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ExportError(f"ONNX export needs {module}: pip install 'rnnkit[export]'") from err


def dynamic_shapes(graph: ExportGraph, as_names: bool = False) -> tuple:
    """torch.export's dynamic_shapes for the graph's inputs: one ``Dim`` per dimension name (``as_names``:
    the names themselves, which is how torch.onnx.export names the axes of the ONNX graph)."""
    names = {name for axes in graph.dynamic.values() for name in axes.values()}
    dims = {name: (name if as_names else
                   torch.export.Dim(f"{name}_over_{graph.multiples[name]}", min=1) * graph.multiples[name]
                   if graph.multiples.get(name, 1) > 1 else torch.export.Dim(name, min=1)) for name in names}
    specs = tuple({axis: dims[name] for axis, name in graph.dynamic[inp].items()} if inp in graph.dynamic else None
                  for inp in graph.input_names)
    # torch.export matches dynamic_shapes to forward's signature: a `*state` parameter is one nested entry
    params = list(inspect.signature(graph.module.forward).parameters.values())
    for i, p in enumerate(params):
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return specs[:i] + (specs[i:],)
    return specs


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    """Write through ``write(temp_path)``, then move into place (no half-written file on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp made it private; an exported model is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def trace(graph: ExportGraph) -> torch.export.ExportedProgram:
    """The graph as a torch.export program, traced on the export engine."""
    # scan compiles the step with dynamo, whose cache keeps the guards of earlier exports in this process:
    # one traced with a size of 8 somewhere would add a guard "size != 8" to this one and break its
    # dynamic axes. Each export starts from an empty cache.
    torch.compiler.reset()
    with pinned_engine(graph.module), torch.no_grad():
        return torch.export.export(graph.module.eval(), graph.inputs, dynamic_shapes=dynamic_shapes(graph))


def export_graph(graph: ExportGraph, fmt: str, path: Path) -> None:
    """Write ``graph`` in format ``fmt`` to ``path`` (atomically)."""
    if fmt == "torch-export":
        program = trace(graph)
        _atomic(path, lambda tmp: torch.export.save(program, tmp))
        return
    if fmt != "onnx":
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    need("onnx"), need("onnxscript")
    # traced here, not by torch.onnx.export: given a module, it retries a failed torch.export in other ways
    # (static shapes among them) where a failure must be an error
    program = trace(graph)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on renamed axes and deprecations
        onnx_program = torch.onnx.export(program, graph.inputs, dynamo=True, verbose=False,
                                         dynamic_shapes=dynamic_shapes(graph, as_names=True),
                                         input_names=list(graph.input_names), output_names=list(graph.output_names))
    _atomic(path, lambda tmp: onnx_program.save(tmp))


def run_exported(fmt: str, path: Path, inputs: tuple) -> list[torch.Tensor]:
    """Run an exported file on ``inputs`` the way a user of that format would: onnxruntime alone for
    ONNX, ``torch.export.load`` for a .pt2 program."""
    if fmt == "onnx":
        ort = need("onnxruntime")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: not the notes on unused initialisers
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
        try:
            return [torch.from_numpy(o) for o in session.run(None, feed)]
        except ort.capi.onnxruntime_pybind11_state.RuntimeException as err:
            raise ExportError(f"{path}: onnxruntime cannot run it on inputs of shapes "
                              f"{[tuple(t.shape) for t in inputs]}: {err}") from err
        except ort.capi.onnxruntime_pybind11_state.InvalidArgument as err:
            raise ExportError(f"{path}: onnxruntime refuses inputs of shapes {[tuple(t.shape) for t in inputs]}: "
                              f"{err}") from err
    program = torch.export.load(str(path))
    with torch.no_grad():
        return list(program.module()(*inputs))
