"""The cpp kernels' sequence-buffer pool (csrc/pool.cpp): a training step's buffers are reused by the
next step instead of taken afresh, reused (dirty) buffers give the reference engine's results, the
tensors stay ordinary resizable tensors, and RNNKIT_CPU_POOL_MB caps, turns off or rejects."""
import os
import subprocess
import sys

import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.engines import cpp
from rnnkit.engines.cpp import build

# (T, B, H): an LSTM's (T, B, 4H) gate buffers are 320 KB in float32, over the pool's 256 KB floor
T, B, H = 40, 8, 64


def _ops():
    try:
        return build.kernels()
    except build.CppBuildError as exc:  # pragma: no cover - CI has a compiler
        pytest.skip(str(exc))


def _train_step(layer, x):
    out, _ = layer(x)
    out.pow(2).sum().backward()


def test_the_second_step_takes_no_new_memory():
    _ops()
    torch.manual_seed(0)
    layer = rnnkit.build_layer("lnlstm", H, H, engine="cpp")
    x = torch.randn(T, B, H, requires_grad=True)
    _train_step(layer, x)
    first = cpp.pool_stats()
    assert first["cached_bytes"] >= T * B * 4 * H * 4  # at least the gate buffer came back
    _train_step(layer, x)
    second = cpp.pool_stats()
    assert second["misses"] == first["misses"]
    assert second["hits"] > first["hits"]


def test_empty_cache_gives_every_cached_block_back():
    _ops()
    _train_step(rnnkit.build_layer("gru", H, H, engine="cpp"), torch.randn(T, B, H, requires_grad=True))
    assert cpp.pool_stats()["cached_bytes"] > 0
    cpp.empty_cache()
    assert cpp.pool_stats()["cached_bytes"] == 0


@pytest.mark.parametrize("cell", ["lnlstm", "peephole_lstm", "gru", "gru_cho", "lngru", "rnn"])
def test_reused_buffers_give_the_reference_results(cell):
    """Two steps on the cpp engine in float64: the second runs on the first's (dirty) buffers and must
    still equal the reference engine; a kernel that read a buffer before writing it would differ."""
    _ops()
    torch.manual_seed(0)
    ours = rnnkit.build_layer(cell, H, H, engine="cpp").double()
    ref = rnnkit.build_layer(cell, H, H, engine="reference").double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(T, B, H, dtype=torch.float64)
    for seed in (1, 2):
        xs = (x * seed).requires_grad_(True)
        results = []
        for layer in (ours, ref):
            layer.zero_grad()
            out, state = layer(xs)
            h = state[0] if isinstance(state, tuple) else state
            grads = torch.autograd.grad(out.pow(2).sum() + h.sum(), [xs] + list(layer.parameters()))
            results.append([out, h, *grads])
        for got, want in zip(*results):
            assert_close(got, want)


def test_a_pooled_output_resizes_like_any_tensor():
    """The plain LSTM's output is the kernel's hidden-state buffer itself (pooled at this size: freeing it
    returns its bytes to the pool); resize_ works on it as on any tensor and keeps its values."""
    _ops()
    layer = rnnkit.build_layer("lstm", 4 * H, 4 * H, engine="cpp")
    with torch.no_grad():
        out, _ = layer(torch.randn(T, B, 4 * H))  # (T, B, 4H): 320 KB
    keep = out.clone()
    out.resize_(2 * T, B, 4 * H)
    assert torch.equal(out[:T], keep)
    before = cpp.pool_stats()["cached_bytes"]
    del out
    assert cpp.pool_stats()["cached_bytes"] >= before + 2 * keep.numel() * 4


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


STEPS = f"""
import torch, rnnkit
from rnnkit.engines import cpp
layer = rnnkit.build_layer("lnlstm", {H}, {H}, engine="cpp")
x = torch.randn({T}, {B}, {H}, requires_grad=True)
for _ in range(3):
    out, _ = layer(x)
    out.sum().backward()
print(cpp.pool_stats())
"""


def test_the_cap_bounds_what_is_kept_and_zero_turns_the_pool_off():
    _ops()
    capped = _run(STEPS, RNNKIT_CPU_POOL_MB="1")
    assert capped.returncode == 0, capped.stderr
    stats = eval(capped.stdout.strip().splitlines()[-1])
    assert stats["cap_bytes"] == 1 << 20 and 0 < stats["cached_bytes"] <= 1 << 20
    off = _run(STEPS, RNNKIT_CPU_POOL_MB="0")
    assert off.returncode == 0, off.stderr
    stats = eval(off.stdout.strip().splitlines()[-1])
    assert stats == {"cached_bytes": 0, "cap_bytes": 0, "hits": 0, "misses": 0}


def test_a_bad_cap_is_an_error_naming_the_variable():
    _ops()
    bad = _run(STEPS, RNNKIT_CPU_POOL_MB="lots")
    assert bad.returncode != 0
    assert "RNNKIT_CPU_POOL_MB must be a whole number of megabytes" in bad.stderr and "'lots'" in bad.stderr
