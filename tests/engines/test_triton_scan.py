"""The fused Triton minGRU/minLSTM scan (forward + backward) vs the torch scan and the loop.
On CPU through Triton's interpreter (tiny shapes); on a GPU the same tests plus larger ones."""
import pytest
import torch
from torch.testing import assert_close

from triton_setup import DEVICE, ON_GPU, use_engine  # noqa: F401 (sets TRITON_INTERPRET)

import rnnkit  # noqa: E402
from rnnkit.cells.minrnn import MinGRUCell, MinLSTMCell, MinRNNConfig  # noqa: E402
from rnnkit.engines.scan import sequential_scan  # noqa: E402
from rnnkit.engines.triton.scan_engine import TritonScanEngine, fused_min_scan  # noqa: E402

CELLS = [MinGRUCell, MinLSTMCell]
SHAPES = [(19, 2, 5)] + ([(300, 3, 70), (1000, 4, 128)] if ON_GPU else [])


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("T,B,H", SHAPES)
def test_fused_scan_matches_loop_values_and_grads(cls, positive, T, B, H):
    torch.manual_seed(0)
    cell = cls(MinRNNConfig(3, H, positive_candidate=positive)).to(DEVICE)
    xp = (cell.project_input(torch.randn(T, B, 3, device=DEVICE)) * 2).detach().requires_grad_()
    h0 = torch.randn(B, H, device=DEVICE, requires_grad=True)
    valid = torch.ones(T, B, 1, dtype=torch.bool, device=DEVICE)
    valid[T // 2:, 1] = False
    h = fused_min_scan(xp, h0, cell.family, positive, valid)
    x64, h064 = xp.double(), h0.double()
    a, b = cell.double().scan_coefficients(x64)
    a, b = torch.where(valid, a, 1.0), torch.where(valid, b, 0.0)
    ref = sequential_scan(a, b, h064)
    assert_close(h.double(), ref, rtol=1e-4, atol=1e-5)
    w = torch.randn_like(h)
    g = torch.autograd.grad((h * w).sum(), (xp, h0))
    g_ref = torch.autograd.grad((ref * w.double()).sum(), (xp, h0))
    for p, q in zip(g, g_ref):
        assert_close(p.double(), q.double(), rtol=1e-4, atol=1e-5)


def test_fused_scan_gradcheck_float64():
    """The interpreter computes in float32 inside; gradcheck with loose tolerances on tiny shapes."""
    torch.manual_seed(0)
    xp = torch.randn(5, 1, 4, dtype=torch.float64, device=DEVICE, requires_grad=True)
    h0 = torch.randn(1, 2, dtype=torch.float64, device=DEVICE, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h: fused_min_scan(x, h, "mingru"), (xp, h0),
                                    eps=1e-3, atol=1e-3, rtol=1e-2)


@pytest.mark.parametrize("cls", CELLS)
def test_recurrent_layer_runs_fused_scan(cls, monkeypatch):
    """In rnnkit.Recurrent (2 layers, bidirectional, lengths) against the reference engine; the
    spy proves the fused engine's entry point ran."""
    engine = use_engine(monkeypatch, TritonScanEngine())
    torch.manual_seed(0)
    cell = cls(MinRNNConfig(3, 6))
    fast = rnnkit.Recurrent(cell, 2, bidirectional=True, engine="triton_scan").to(DEVICE)
    ref = rnnkit.Recurrent(cell.clone(), 2, bidirectional=True, engine="reference").to(DEVICE)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(11, 3, 3, device=DEVICE)
    lengths = torch.tensor([11, 6, 2])
    before = type(engine).calls
    r1 = fast.run(x, lengths=lengths)
    assert r1.engine == "triton_scan" and type(engine).calls == before + 4  # 2 layers x 2 directions
    r2 = ref.run(x, lengths=lengths)
    assert_close(r1.output, r2.output, rtol=1e-4, atol=1e-5)
    assert_close(r1.state, r2.state, rtol=1e-4, atol=1e-5)
    g1 = torch.autograd.grad(r1.output.square().sum(), list(fast.parameters()))
    g2 = torch.autograd.grad(r2.output.square().sum(), list(ref.parameters()))
    for p, q in zip(g1, g2):
        assert_close(p, q, rtol=1e-4, atol=1e-5)
    auto = rnnkit.Recurrent(cell).to(DEVICE)
    assert auto.run(x).engine == "triton_scan"


def test_fused_scan_refuses_zoneout_and_other_families(monkeypatch):
    from rnnkit.cells import GRUCell
    from rnnkit.engines.base import EngineError

    use_engine(monkeypatch, TritonScanEngine())
    with pytest.raises(EngineError, match="input only"):
        rnnkit.Recurrent(GRUCell.from_options(3, 4), engine="triton_scan").to(DEVICE)(
            torch.randn(2, 1, 3, device=DEVICE))
    layer = rnnkit.Recurrent(MinGRUCell(MinRNNConfig(3, 4)), engine="triton_scan", zoneout=0.1)
    with pytest.raises(EngineError, match="zoneout"):
        layer.to(DEVICE)(torch.randn(2, 1, 3, device=DEVICE))


@pytest.mark.skipif(not ON_GPU, reason="bfloat16 kernels are checked on the GPU")
@pytest.mark.parametrize("cls", CELLS)
def test_fused_scan_bfloat16(cls):
    torch.manual_seed(0)
    cell = cls(MinRNNConfig(8, 64)).to(DEVICE)
    xp = cell.project_input(torch.randn(512, 4, 8, device=DEVICE)).detach()
    h = fused_min_scan(xp.bfloat16(), None, cell.family)
    ref = fused_min_scan(xp, None, cell.family)
    assert h.dtype == torch.bfloat16
    assert_close(h.float(), ref, rtol=2e-2, atol=2e-2)
