"""The parallel-scan engine for minGRU/minLSTM: scan forms vs the loop, and the engine inside
rnnkit.Recurrent (stacked, bidirectional, lengths, zoneout) vs the reference engine."""
import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.cells.minrnn import MinGRUCell, MinLSTMCell, MinRNNConfig
from rnnkit.engines import scan as scan_mod
from rnnkit.engines.registry import REGISTRY, register_engine
from rnnkit.engines.scan import (ScanEngine, chunked_log_scan, doubling_scan, heinsen_log_scan,
                                 sequential_scan)

if "scan" not in REGISTRY.names():  # until the core registers it (see rnnkit/engines/scan.py)
    register_engine(ScanEngine(), {"cpu": 1, "cuda": 3})

CELLS = [MinGRUCell, MinLSTMCell]


def _coeffs(T, B, H, dtype=torch.float64):
    log_a = -torch.nn.functional.softplus(torch.randn(T, B, H, dtype=dtype))
    log_b = torch.randn(T, B, H, dtype=dtype)
    return log_a, log_b


@pytest.mark.parametrize("T", [1, 5, 64, 130])
@pytest.mark.parametrize("chunk", [1, 8, 64])
def test_chunked_log_scan_matches_loop(T, chunk):
    log_a, log_b = _coeffs(T, 2, 3)
    h0 = torch.randn(2, 3, dtype=torch.float64)  # any sign
    ref = sequential_scan(log_a.exp(), log_b.exp(), h0)
    assert_close(chunked_log_scan(log_a, log_b, h0, chunk), ref)
    assert_close(chunked_log_scan(log_a, log_b, None, chunk), sequential_scan(log_a.exp(), log_b.exp()))


@pytest.mark.parametrize("T", [1, 2, 7, 33])
def test_doubling_scan_matches_loop(T):
    a = torch.rand(T, 2, 3, dtype=torch.float64)
    b = torch.randn(T, 2, 3, dtype=torch.float64)
    h0 = torch.randn(2, 3, dtype=torch.float64)
    assert_close(doubling_scan(a, b, h0), sequential_scan(a, b, h0))


def test_chunked_scan_stays_accurate_on_long_sequences():
    """float32, T = 8192: the chunked log-space scan keeps ~1e-6 where the unchunked one drifts."""
    torch.manual_seed(0)
    log_a, log_b = _coeffs(8192, 1, 8, torch.float32)
    ref = sequential_scan(log_a.double().exp(), log_b.double().exp())
    err = lambda h: ((h.double() - ref).norm() / ref.norm()).item()  # noqa: E731
    assert err(chunked_log_scan(log_a, log_b)) < 1e-5
    assert err(chunked_log_scan(log_a, log_b)) < err(heinsen_log_scan(log_a, log_b))


def test_chunked_scan_gradcheck():
    log_a, log_b = _coeffs(11, 2, 2)
    h0 = torch.randn(2, 2, dtype=torch.float64)
    args = tuple(t.requires_grad_() for t in (log_a, log_b, h0))
    assert torch.autograd.gradcheck(lambda a, b, h: chunked_log_scan(a, b, h, 4), args)
    assert torch.autograd.gradcheck(lambda a, b, h: doubling_scan(a.exp(), b, h), args)


def _pair(cls, positive=True, layers=1, bidirectional=False, **kw):
    torch.manual_seed(0)
    cell = cls(MinRNNConfig(3, 4, positive_candidate=positive))
    fast = rnnkit.Recurrent(cell, layers, bidirectional=bidirectional, engine="scan", **kw).double()
    ref = rnnkit.Recurrent(cell.clone(), layers, bidirectional=bidirectional, engine="reference",
                           **kw).double()
    ref.load_state_dict(fast.state_dict())
    return fast, ref


def _check_parity(fast, ref, x, hx=None, lengths=None, all_states=False):
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    r_fast = fast.run(xs[0], hx, lengths=lengths, all_states=all_states)
    r_ref = ref.run(xs[1], hx, lengths=lengths, all_states=all_states)
    assert r_fast.engine == "scan" and r_ref.engine == "reference"
    assert_close(r_fast.output, r_ref.output)
    assert_close(r_fast.state, r_ref.state)
    if all_states:
        for a, b in zip(r_fast.states, r_ref.states):
            assert_close(a["h"], b["h"])
    w = torch.randn_like(r_fast.output)
    loss_f = (r_fast.output * w).sum() + r_fast.state.sum()
    loss_r = (r_ref.output * w).sum() + r_ref.state.sum()
    g_f = torch.autograd.grad(loss_f, [xs[0]] + list(fast.parameters()))
    g_r = torch.autograd.grad(loss_r, [xs[1]] + list(ref.parameters()))
    for a, b in zip(g_f, g_r):
        assert_close(a, b)


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_engine_matches_reference(cls, positive, layers, bidirectional, with_lengths):
    fast, ref = _pair(cls, positive, layers, bidirectional)
    x = torch.randn(9, 3, 3, dtype=torch.float64)
    lengths = torch.tensor([9, 4, 1]) if with_lengths else None
    _check_parity(fast, ref, x, lengths=lengths, all_states=True)


@pytest.mark.parametrize("cls", CELLS)
def test_engine_with_initial_state_of_any_sign(cls):
    fast, ref = _pair(cls, True, 2, False)
    hx = torch.randn(2, 3, 4, dtype=torch.float64)
    _check_parity(fast, ref, torch.randn(70, 3, 3, dtype=torch.float64), hx=hx)


@pytest.mark.parametrize("cls", CELLS)
def test_engine_zoneout_matches_reference(cls):
    fast, ref = _pair(cls, True, 1, False, zoneout=0.3)
    fast.eval(), ref.eval()  # deterministic zoneout (the expectation) in eval
    _check_parity(fast, ref, torch.randn(6, 2, 3, dtype=torch.float64))
    fast.train()
    torch.manual_seed(1)
    out = fast(torch.randn(6, 2, 3, dtype=torch.float64))[0]
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("cls", CELLS)
def test_parallel_equals_step_by_step_generation_and_chunks(cls):
    """Mode equivalence: whole sequence == chunks with state carried == cell.step loop."""
    torch.manual_seed(0)
    cell = cls(MinRNNConfig(3, 4))
    layer = rnnkit.Recurrent(cell, engine="scan").double()
    x = torch.randn(20, 2, 3, dtype=torch.float64)
    out, h = layer(x)
    o1, h1 = layer(x[:7])
    o2, h2 = layer(x[7:], h1)
    assert_close(torch.cat([o1, o2]), out)
    assert_close(h2, h)
    state = None
    steps = []
    for t in range(20):
        y, state = cell.step(x[t], state)
        steps.append(y)
    assert_close(torch.stack(steps), out)


def test_auto_picks_scan_on_cpu_and_engine_entry_runs(monkeypatch):
    cell = MinGRUCell(MinRNNConfig(3, 4))
    layer = rnnkit.Recurrent(cell)
    calls = []
    real = ScanEngine.run_direction

    def spy(self, *args, **kw):
        calls.append(1)
        return real(self, *args, **kw)

    monkeypatch.setattr(ScanEngine, "run_direction", spy)
    res = layer.run(torch.randn(5, 2, 3))
    assert res.engine == "scan" and calls == [1]
    assert "scan" in str(layer.explain(torch.randn(5, 2, 3)))


def test_scan_refuses_matrix_recurrences_and_probes():
    from rnnkit.cells import GRUCell
    from rnnkit.engines.base import EngineError

    gru = rnnkit.Recurrent(GRUCell.from_options(3, 4), engine="scan")
    with pytest.raises(EngineError, match="input only"):
        gru(torch.randn(2, 1, 3))
    layer = rnnkit.Recurrent(MinGRUCell(MinRNNConfig(3, 4)), engine="scan")
    with pytest.raises(EngineError, match="step-by-step"):
        layer.run(torch.randn(2, 1, 3), probe_grads=True)
    assert scan_mod.scan_features_reason is not None


def test_bfloat16_runs_in_float32_internally():
    cell = MinLSTMCell(MinRNNConfig(3, 8))
    layer = rnnkit.Recurrent(cell, engine="scan")
    x = torch.randn(40, 2, 3)
    out32, _ = layer(x)
    out16, _ = layer.to(torch.bfloat16)(x.bfloat16())
    assert out16.dtype == torch.bfloat16
    assert_close(out16.float(), out32, rtol=2e-2, atol=2e-2)


def test_cpu_install_without_triton_imports_and_says_why(tmp_path):
    """With triton unimportable: rnnkit imports, the scan engine runs, and the lazy Triton engines
    report the import error instead of failing at import or hiding it."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, rnnkit\n"
        "from rnnkit.cells.minrnn import MinGRUCell, MinRNNConfig\n"
        "from rnnkit.engines.registry import REGISTRY\n"
        "layer = rnnkit.Recurrent(MinGRUCell(MinRNNConfig(3, 4)))\n"
        "assert layer.run(torch.randn(5, 2, 3)).engine == 'scan'\n"
        "for name in ('triton', 'triton_scan'):\n"
        "    err = REGISTRY.get(name)._load()\n"
        "    assert err and 'cannot import' in err and 'rnnkit[gpu]' in err, err\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
