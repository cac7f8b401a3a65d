"""Shared set-up of the Triton engine tests: on a machine without CUDA, run the kernels through
Triton's CPU interpreter (TRITON_INTERPRET=1, set before the kernel modules are imported)."""
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

triton = pytest.importorskip("triton")

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
ON_GPU = DEVICE.type == "cuda"

if not ON_GPU and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no CUDA and TRITON_INTERPRET is not 1", allow_module_level=True)


def use_engine(monkeypatch, engine):
    """Put ``engine`` (an instance) in the global registry for this test only, first on its device."""
    from rnnkit.engines.registry import REGISTRY

    dev = DEVICE.type
    monkeypatch.setitem(REGISTRY._engines, engine.name, engine)
    order = [n for n in REGISTRY._order.get(dev, []) if n != engine.name]
    monkeypatch.setitem(REGISTRY._order, dev, [engine.name] + order)
    return engine
