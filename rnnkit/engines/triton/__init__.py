"""Triton GPU engines. Nothing here imports triton at package import: the engine modules do, and
the registry loads them lazily (``rnnkit.engines.base.LazyEngine``), so CPU installs never need it.

* ``scan_engine``  -- fused minGRU/minLSTM scan (gates + linear recurrence in one pass, fwd + bwd)
* ``rnn_engine``   -- fused recurrent engine for LSTM, GRU (reset after) and Elman: the input
  projection as one matmul, then one persistent kernel over time that keeps W_hh on chip
"""

from ..base import LazyEngine
from ..scan import ScanEngine

#: where the Triton engines go in the CUDA priority list (index; native, i.e. cuDNN, is at 0)
PRIORITY = {"triton_scan": 0, "triton": 1}


def lazy_engines():
    """The Triton engines as lazily imported registry entries (triton is imported on first use)."""
    hint = "; install the GPU extra: pip install 'rnnkit[gpu]'"
    return [
        LazyEngine("triton_scan", "rnnkit.engines.triton.scan_engine", "TritonScanEngine", ("cuda",),
                   install_hint=hint),
        LazyEngine("triton", "rnnkit.engines.triton.rnn_engine", "TritonRNNEngine", ("cuda",),
                   install_hint=hint),
    ]


def register(registry) -> None:
    """Register the Triton engines (and the torch 'scan' engine) in ``registry`` unless already there
    (the engine registry does so for its own table when it is built)."""
    names = registry.names()
    if "scan" not in names:
        registry.register(ScanEngine(), {"cpu": 0, "cuda": 2})
    for engine in lazy_engines():
        if engine.name not in names:
            registry.register(engine, {"cuda": PRIORITY[engine.name]})
