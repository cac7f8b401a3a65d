"""The cpp engine for the GRU family, both variants (reset gate after the matmul as cuDNN/torch, before
it as Cho et al. 2014): its C++ time loop equals the explicit-BPTT Function (outputs and every gradient,
over all option combinations), gradcheck of its backward, float32 accuracy, parity with the reference
engine through rnnkit.Recurrent and with torch.nn.GRU, and dispatch proven by a spy."""
import itertools

import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.cells.gru import GRUCell, GRUConfig
from rnnkit.engines.base import EngineError
from rnnkit.engines.bptt.gru import GRUFunction
from rnnkit.engines.cpp.gru import GRUCppFunction
from cpp_checks import (assert_drop_in_inference_matches_torch, assert_layer_matches_reference, random_valid,
                        spy_on_apply, two_threads)

# option flags: reset_after, bias, layer norm, recurrent dropout, zoneout, lengths
FLAGS = list(itertools.product([False, True], repeat=6))


def _case(reset_after, bias, ln, h_mask, zone, lengths, dtype=torch.float64, T=5, B=3, H=4, seed=0):
    """Leaves of the GRU Function (None where the option is off) and its masks (h_mask, zone, valid)."""
    gen = torch.Generator().manual_seed(seed)

    def leaf(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=gen, dtype=torch.float64)).to(dtype).requires_grad_()

    rec = 3 * H if reset_after else 2 * H  # the LN over the recurrent product of [r, z(, n)]
    ln_leaves = [leaf(rec), leaf(rec)] + ([leaf(H), leaf(H)] if not reset_after else [None, None])
    leaves = [leaf(T, B, 3 * H), leaf(3 * H, H, scale=0.5), leaf(3 * H) if bias else None,
              *(ln_leaves if ln else [None] * 4), leaf(B, H)]
    m = (torch.rand(B, H, generator=gen) > 0.3).to(dtype) / 0.7 if h_mask else None
    z = (torch.rand(T, B, H, generator=gen) < 0.3).to(dtype) if zone else None
    valid = random_valid(T, B, gen) if lengths else None  # (T, B, 1) bool
    return leaves, (m, z, valid, reset_after)


def _run(function, leaves, masks):
    """Outputs and the gradients of a loss weighing every output element differently."""
    outs = function.apply(*leaves, *masks)
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs)
    return list(outs) + list(torch.autograd.grad(loss, [x for x in leaves if x is not None]))


def _ids(flags):
    return "".join("ABLMZV"[i] if v else "-" for i, v in enumerate(flags))


@pytest.mark.parametrize("flags", FLAGS, ids=_ids)
def test_cpp_function_equals_bptt_function(flags):
    leaves, masks = _case(*flags)
    got, want = _run(GRUCppFunction, leaves, masks), _run(GRUFunction, leaves, masks)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w)


@pytest.mark.parametrize("flags", [(True,) + (False,) * 5, (False,) + (False,) * 5, (True,) * 6,
                                   (False,) + (True,) * 5, (True, True, False, True, False, True),
                                   (False, False, True, False, True, False)], ids=_ids)
def test_cpp_function_gradcheck(flags):
    leaves, masks = _case(*flags, T=4, B=2, H=3, seed=5)
    assert torch.autograd.gradcheck(lambda *a: GRUCppFunction.apply(*a, *masks), tuple(leaves))


@pytest.mark.parametrize("reset_after", [True, False])
def test_float32_matches_float64_as_closely_as_bptt(reset_after):
    """The float path uses its own exp/tanh (vectorised): its error against float64 stays at bptt's level."""
    flags = (reset_after, True, True, True, True, True)
    truth = _run(GRUFunction, *_case(*flags, T=7, B=5, H=37))
    errors = {}
    for fn in (GRUCppFunction, GRUFunction):
        got = _run(fn, *_case(*flags, dtype=torch.float32, T=7, B=5, H=37))
        errors[fn] = max(((g.double() - t).abs() / (t.abs() + 1)).max().item() for g, t in zip(got, truth))
    assert errors[GRUCppFunction] < 1e-4
    assert errors[GRUCppFunction] < 3 * errors[GRUFunction] + 1e-6


@pytest.mark.parametrize("opts", [{}, {"reset_after": False}, {"layer_norm": True},
                                  {"reset_after": False, "layer_norm": True}])
@pytest.mark.parametrize("reg", [{}, {"zoneout": 0.3}, {"dropconnect": 0.4}, {"recurrent_dropout": 0.3}])
def test_recurrent_layer_matches_reference(opts, reg):
    assert_layer_matches_reference(lambda: GRUCell(GRUConfig(5, 4, **opts)), reg)


def test_drop_in_gru_with_weights_from_torch():
    torch.manual_seed(0)
    ref = torch.nn.GRU(4, 6, num_layers=2, bidirectional=True)
    ours = rnnkit.GRU(4, 6, num_layers=2, bidirectional=True, engine="cpp")
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(7, 3, 4)
    h0 = torch.randn(4, 3, 6)
    (y_ref, h_ref), (y, h) = ref(x, h0), ours(x, h0)
    assert_close(y, y_ref, atol=1e-5, rtol=1e-4)
    assert_close(h, h_ref, atol=1e-5, rtol=1e-4)
    (y.sum() + h.pow(2).sum()).backward()
    (y_ref.sum() + h_ref.pow(2).sum()).backward()
    for name in ("weight_hh_l1_reverse", "bias_hh_l0", "weight_ih_l0", "bias_ih_l1"):
        assert_close(getattr(ours, name).grad, getattr(ref, name).grad, atol=1e-4, rtol=1e-4)


# -- dispatch ---------------------------------------------------------------------------------------
@pytest.fixture
def cpp_calls(monkeypatch):
    """A spy around GRUCppFunction.apply: proves the C++ loop ran."""
    return spy_on_apply(monkeypatch, GRUCppFunction)


@pytest.mark.parametrize("opts", [{}, {"reset_after": False, "layer_norm": True}])
def test_forced_cpp_runs_the_cpp_function(opts, cpp_calls):
    layer = rnnkit.Recurrent(GRUCell(GRUConfig(4, 5, **opts)), engine="cpp", num_layers=2)
    assert layer.run(torch.randn(6, 3, 4)).engine == "cpp"
    assert len(cpp_calls) == 2


def test_half_precision_is_refused_with_a_reason(cpp_calls):
    layer = rnnkit.Recurrent(GRUCell(GRUConfig(4, 5)), engine="cpp").to(torch.bfloat16)
    with pytest.raises(EngineError, match="float32 and float64 only"):
        layer.run(torch.randn(6, 3, 4, dtype=torch.bfloat16))
    assert cpp_calls == []


@pytest.mark.parametrize("cell", ["gru", "gru_cho", "lngru"])
def test_auto_picks_cpp_on_cpu(cell, cpp_calls):
    layer = rnnkit.build_layer(cell, 3, 4)
    x = torch.randn(5, 2, 3)
    assert layer.explain(x).engine == "cpp"
    assert layer.run(x).engine == "cpp"
    assert len(cpp_calls) == 1


@pytest.mark.parametrize("reset_after", [True, False])
def test_rows_split_across_threads_give_the_same_results(reset_after):
    """B=64, H=64: the per-row passes run in several chunks (at::parallel_for) with two threads."""
    with two_threads():
        leaves, masks = _case(reset_after, True, True, True, True, True, T=3, B=64, H=64)
        for got, want in zip(_run(GRUCppFunction, leaves, masks), _run(GRUFunction, leaves, masks)):
            assert_close(got, want)


def test_inference_under_no_grad_matches_torch():
    assert_drop_in_inference_matches_torch(torch.nn.GRU, rnnkit.GRU)
