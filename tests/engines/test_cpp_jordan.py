"""The cpp engine for the Jordan network: its C++ time loop equals the explicit-BPTT Function (outputs
and every gradient, for each pair of activations and option combination, with and without the output
bias, an output size other than the hidden size), gradcheck of its backward, float32 accuracy, parity
with the reference engine through rnnkit.Recurrent, and dispatch proven by a spy."""
import itertools

import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.cells.jordan import JordanCell, JordanConfig
from rnnkit.engines.bptt.jordan import JordanFunction
from rnnkit.engines.cpp.jordan import JordanCppFunction
from cpp_checks import assert_layer_matches_reference, random_valid, spy_on_apply, two_threads

ACTS = ("tanh", "relu", "sigmoid", "identity")
# option flags: recurrent dropout, zoneout, lengths, output bias
FLAGS = list(itertools.product([False, True], repeat=4))


def _case(h_mask, zone, lengths, bias, dtype=torch.float64, T=5, B=3, H=4, O=3, seed=0):
    """Leaves of the Jordan Function (xp, w_hy, w_yh, b_y, s0) and its masks (h_mask, zone, valid)."""
    gen = torch.Generator().manual_seed(seed)

    def leaf(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=gen, dtype=torch.float64)).to(dtype).requires_grad_()

    leaves = [leaf(T, B, H), leaf(H, O, scale=0.5), leaf(O, H, scale=0.5), leaf(O) if bias else None, leaf(B, O)]
    m = (torch.rand(B, O, generator=gen) > 0.3).to(dtype) / 0.7 if h_mask else None
    z = (torch.rand(T, B, O, generator=gen) < 0.3).to(dtype) if zone else None
    valid = random_valid(T, B, gen) if lengths else None  # (T, B, 1) bool
    return leaves, (m, z, valid)


def _run(function, leaves, masks, acts):
    """Outputs and the gradients of a loss weighing every output element differently."""
    outs = function.apply(*leaves, *masks, *acts)
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs)
    return list(outs) + list(torch.autograd.grad(loss, [t for t in leaves if t is not None]))


@pytest.mark.parametrize("acts", [("tanh", "tanh"), ("relu", "sigmoid"), ("sigmoid", "identity"),
                                  ("identity", "relu")])
@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "".join("MZVB"[i] if v else "-" for i, v in enumerate(f)))
def test_cpp_function_equals_bptt_function(acts, flags):
    leaves, masks = _case(*flags)
    got, want = _run(JordanCppFunction, leaves, masks, acts), _run(JordanFunction, leaves, masks, acts)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w)


@pytest.mark.parametrize("acts", list(itertools.product(ACTS, repeat=2)))
def test_cpp_function_gradcheck(acts):
    leaves, (m, z, valid) = _case(True, True, True, True, T=4, B=2, H=3, O=2, seed=3)
    assert torch.autograd.gradcheck(lambda *a: JordanCppFunction.apply(*a, m, z, valid, *acts), tuple(leaves))


@pytest.mark.parametrize("flags", [(True, True, True, True), (False, False, False, False)])
def test_float32_matches_float64_as_closely_as_bptt(flags):
    """The float path uses its own tanh (vectorised) and its own products: its error against float64 stays
    at bptt's level (rounding through 7 steps of two products each: 1e-6 to 1e-4 for both, the order of
    the sums differing, so within 10x of bptt's rather than equal to it)."""
    truth = _run(JordanFunction, *_case(*flags, T=7, B=5, H=37, O=19), ("tanh", "tanh"))
    errors = {}
    for fn in (JordanCppFunction, JordanFunction):
        got = _run(fn, *_case(*flags, dtype=torch.float32, T=7, B=5, H=37, O=19), ("tanh", "tanh"))
        errors[fn] = max(((g.double() - t).abs() / (t.abs() + 1)).max().item() for g, t in zip(got, truth))
    assert errors[JordanCppFunction] < 2e-4
    assert errors[JordanCppFunction] < 10 * errors[JordanFunction] + 1e-6


def test_rows_split_across_threads_give_the_same_results():
    """B = 64, H = 256: the products and row passes split over two threads; the results must not change."""
    with two_threads():
        leaves, masks = _case(True, True, True, True, T=3, B=64, H=256, O=128)
        for got, want in zip(_run(JordanCppFunction, leaves, masks, ("tanh", "sigmoid")),
                             _run(JordanFunction, leaves, masks, ("tanh", "sigmoid"))):
            assert_close(got, want)


@pytest.mark.parametrize("opts", [{}, {"output_size": 3, "activation": "relu", "out_activation": "identity"},
                                  {"bias": False}])
@pytest.mark.parametrize("reg", [{}, {"zoneout": 0.3}, {"dropconnect": 0.4}, {"recurrent_dropout": 0.3}])
def test_recurrent_layer_matches_reference(opts, reg):
    assert_layer_matches_reference(lambda: JordanCell(JordanConfig(5, 4, **opts)), reg)


@pytest.fixture
def cpp_calls(monkeypatch):
    """A spy around JordanCppFunction.apply: proves the C++ loop ran."""
    return spy_on_apply(monkeypatch, JordanCppFunction)


def test_auto_picks_cpp_on_cpu(cpp_calls):
    layer = rnnkit.Recurrent(JordanCell(JordanConfig(3, 4, output_size=2)))
    x = torch.randn(5, 2, 3, requires_grad=True)
    assert layer.explain(x).engine == "cpp"
    res = layer.run(x)
    assert res.engine == "cpp" and len(cpp_calls) == 1
    res.output.sum().backward()
    assert x.grad is not None and layer.cells[0].weight_hy.grad is not None


def test_a_user_callable_activation_is_refused_with_a_reason(cpp_calls):
    layer = rnnkit.Recurrent(JordanCell(JordanConfig(4, 5, out_activation=torch.nn.functional.softsign)))
    explanation = layer.explain(torch.randn(6, 3, 4))
    assert "derivative" in dict(explanation.rejected)["cpp"]
    assert explanation.engine != "cpp" and cpp_calls == []



def test_float64_runs_on_cpp_under_auto(cpp_calls):
    """float64 takes the C++ loop too (its tanh and sigmoid vectorised: 1.02-1.50x bptt, run L)."""
    auto = rnnkit.Recurrent(JordanCell(JordanConfig(3, 4))).double()
    assert auto.run(torch.randn(5, 2, 3, dtype=torch.float64)).engine == "cpp" and len(cpp_calls) == 1
