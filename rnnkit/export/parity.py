"""An exported graph against the PyTorch model it came from.

The check runs both on the graph's ``check_inputs`` (other batch and sequence sizes than the traced
ones, so a size baked into the graph fails it): the exported file the way its users run it
(:func:`~rnnkit.export.routes.run_exported`), the model as rnnkit runs it (the engines ``auto`` picks,
not the export engine). Every output must agree within the graph's ``rtol`` / ``atol``
(``torch.testing.assert_close``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from rnnkit.export.routes import ExportError, run_exported
from rnnkit.tasks.graphs import ExportGraph


def reference_outputs(graph: ExportGraph) -> list[torch.Tensor]:
    with torch.no_grad():
        return list(graph.module.eval()(*graph.check_inputs))


def check_parity(graph: ExportGraph, fmt: str, path: Path) -> dict:
    """``{output name: max |exported - PyTorch|}``; an ExportError when an output is off or missing."""
    got = run_exported(fmt, path, graph.check_inputs)
    want = reference_outputs(graph)
    if len(got) != len(want):
        raise ExportError(f"{path}: the exported graph returns {len(got)} outputs, the model {len(want)}")
    errors = {}
    for name, g, w in zip(graph.output_names, got, want):
        if tuple(g.shape) != tuple(w.shape):
            raise ExportError(f"{path}: output {name} has shape {tuple(g.shape)}, the model's {tuple(w.shape)} "
                              f"(on inputs of shapes {[tuple(t.shape) for t in graph.check_inputs]})")
        try:
            torch.testing.assert_close(g, w.to(g.dtype), rtol=graph.rtol, atol=graph.atol)
        except AssertionError as err:
            raise ExportError(f"{path}: output {name} differs from the PyTorch model beyond rtol {graph.rtol}, "
                              f"atol {graph.atol}: {err}") from None
        errors[name] = float((g.double() - w.double()).abs().max()) if g.numel() and g.is_floating_point() else 0.0
    return errors
