"""Which engine an exported model traces: the export engine, pinned on every recurrent layer.

The C++ kernels, torch's fused RNNs and the GPU kernels are opaque to ``torch.export``; the reference
engine's Python loop would be unrolled to the traced length. :func:`pinned_engine` names the export
engine (``rnnkit.engines.export``: the reference step loop as torch's ``scan``) on every
:class:`~rnnkit.layers.Recurrent` of a model for the duration of an export, then restores what each
layer had.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn

from rnnkit.layers import Recurrent

EXPORT_ENGINE = "export"


def recurrent_layers(model: nn.Module) -> list[tuple[str, Recurrent]]:
    """(qualified name, layer) of every rnnkit recurrent layer inside ``model``."""
    return [(name or "(the model)", m) for name, m in model.named_modules() if isinstance(m, Recurrent)]


@contextlib.contextmanager
def pinned_engine(model: nn.Module, engine: str = EXPORT_ENGINE) -> Iterator[list[tuple[str, Recurrent]]]:
    """Every recurrent layer of ``model`` runs on ``engine`` inside the block (restored on exit)."""
    layers = recurrent_layers(model)
    saved = [layer.engine for _, layer in layers]
    try:
        for _, layer in layers:
            layer.engine = engine
        yield layers
    finally:
        for (_, layer), was in zip(layers, saved):
            layer.engine = was
