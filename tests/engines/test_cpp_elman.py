"""The cpp engine for the Elman family: its C++ time loop equals the explicit-BPTT Function (outputs and
every gradient, for each activation and option combination), gradcheck of its backward, float32
accuracy, parity with the reference engine through rnnkit.Recurrent and with torch.nn.RNN, and
dispatch proven by a spy."""
import itertools

import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.cells.elman import ElmanCell, ElmanConfig
from rnnkit.engines.bptt.elman import ElmanFunction
from rnnkit.engines.cpp.elman import ElmanCppFunction
from cpp_checks import (assert_drop_in_inference_matches_torch, assert_layer_matches_reference, random_valid,
                        spy_on_apply, two_threads)

ACTS = ("tanh", "relu", "sigmoid", "identity")
# option flags: recurrent dropout, zoneout, lengths
FLAGS = list(itertools.product([False, True], repeat=3))


def _case(h_mask, zone, lengths, dtype=torch.float64, T=5, B=3, H=4, seed=0, zone_shape=None):
    """Leaves of the Elman Function (xp, w_hh, s0) and its masks (h_mask, zone, valid)."""
    gen = torch.Generator().manual_seed(seed)

    def leaf(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=gen, dtype=torch.float64)).to(dtype).requires_grad_()

    leaves = [leaf(T, B, H), leaf(H, H, scale=0.5), leaf(B, H)]
    m = (torch.rand(B, H, generator=gen) > 0.3).to(dtype) / 0.7 if h_mask else None
    z = (torch.rand(*(zone_shape or (T, B, H)), generator=gen) < 0.3).to(dtype) if zone else None
    valid = random_valid(T, B, gen) if lengths else None  # (T, B, 1) bool
    return leaves, (m, z, valid)


def _run(function, leaves, masks, act):
    """Outputs and the gradients of a loss weighing every output element differently."""
    outs = function.apply(*leaves, *masks, act)
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs)
    return list(outs) + list(torch.autograd.grad(loss, leaves))


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "".join("MZV"[i] if v else "-" for i, v in enumerate(f)))
def test_cpp_function_equals_bptt_function(act, flags):
    leaves, masks = _case(*flags)
    for got, want in zip(_run(ElmanCppFunction, leaves, masks, act), _run(ElmanFunction, leaves, masks, act)):
        assert_close(got, want)


@pytest.mark.parametrize("zone_shape", [(5, 1, 1), (5, 3, 1), (5, 1, 4)])
def test_broadcast_zoneout_masks(zone_shape):
    leaves, masks = _case(True, True, True, zone_shape=zone_shape)
    for got, want in zip(_run(ElmanCppFunction, leaves, masks, "tanh"), _run(ElmanFunction, leaves, masks, "tanh")):
        assert_close(got, want)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("flags", [(False, False, False), (True, True, True)])
def test_cpp_function_gradcheck(act, flags):
    leaves, (m, z, valid) = _case(*flags, T=4, B=2, H=3, seed=3)
    assert torch.autograd.gradcheck(lambda *a: ElmanCppFunction.apply(*a, m, z, valid, act), tuple(leaves))


def test_float32_matches_float64_as_closely_as_bptt():
    """The float path uses its own tanh (vectorised): its error against float64 stays at bptt's level."""
    flags = (True, True, True)
    truth = _run(ElmanFunction, *_case(*flags, T=7, B=5, H=37), "tanh")
    errors = {}
    for fn in (ElmanCppFunction, ElmanFunction):
        got = _run(fn, *_case(*flags, dtype=torch.float32, T=7, B=5, H=37), "tanh")
        errors[fn] = max(((g.double() - t).abs() / (t.abs() + 1)).max().item() for g, t in zip(got, truth))
    assert errors[ElmanCppFunction] < 1e-4
    assert errors[ElmanCppFunction] < 3 * errors[ElmanFunction] + 1e-6


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("reg", [{}, {"zoneout": 0.3}, {"dropconnect": 0.4}, {"recurrent_dropout": 0.3}])
def test_recurrent_layer_matches_reference(act, reg):
    assert_layer_matches_reference(lambda: ElmanCell(ElmanConfig(5, 4, activation=act)), reg)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_drop_in_rnn_with_weights_from_torch(nonlinearity):
    torch.manual_seed(0)
    ref = torch.nn.RNN(4, 6, num_layers=2, bidirectional=True, nonlinearity=nonlinearity)
    ours = rnnkit.RNN(4, 6, num_layers=2, bidirectional=True, nonlinearity=nonlinearity, engine="cpp")
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(7, 3, 4)
    (y_ref, h_ref), (y, h) = ref(x), ours(x)
    assert_close(y, y_ref, atol=1e-5, rtol=1e-4)
    assert_close(h, h_ref, atol=1e-5, rtol=1e-4)
    y.sum().backward()
    y_ref.sum().backward()
    assert_close(ours.weight_hh_l1_reverse.grad, ref.weight_hh_l1_reverse.grad, atol=1e-4, rtol=1e-4)
    assert_close(ours.weight_ih_l0.grad, ref.weight_ih_l0.grad, atol=1e-4, rtol=1e-4)


# -- dispatch ---------------------------------------------------------------------------------------
@pytest.fixture
def cpp_calls(monkeypatch):
    """A spy around ElmanCppFunction.apply: proves the C++ loop ran."""
    return spy_on_apply(monkeypatch, ElmanCppFunction)


def test_forced_cpp_runs_the_cpp_function(cpp_calls):
    layer = rnnkit.Recurrent(ElmanCell(ElmanConfig(4, 5, activation="sigmoid")), engine="cpp", zoneout=0.2)
    assert layer.run(torch.randn(6, 3, 4)).engine == "cpp"
    assert len(cpp_calls) == 1


def test_a_user_callable_activation_is_refused_with_a_reason(cpp_calls):
    layer = rnnkit.Recurrent(ElmanCell(ElmanConfig(4, 5, activation=torch.nn.functional.softsign)))
    explanation = layer.explain(torch.randn(6, 3, 4))
    assert "derivative" in dict(explanation.rejected)["cpp"]
    assert cpp_calls == []


@pytest.mark.parametrize("act", ACTS)
def test_auto_picks_cpp_on_cpu(act, cpp_calls):
    layer = rnnkit.Recurrent(ElmanCell(ElmanConfig(3, 4, activation=act)))
    x = torch.randn(5, 2, 3)
    assert layer.explain(x).engine == "cpp"
    assert layer.run(x).engine == "cpp"
    assert len(cpp_calls) == 1


def test_rows_split_across_threads_give_the_same_results():
    """B=64, H=256: the per-row passes run in several chunks (at::parallel_for) with two threads."""
    with two_threads():
        leaves, masks = _case(True, True, True, T=3, B=64, H=256)
        for got, want in zip(_run(ElmanCppFunction, leaves, masks, "tanh"), _run(ElmanFunction, leaves, masks, "tanh")):
            assert_close(got, want)


def test_inference_under_no_grad_matches_torch():
    assert_drop_in_inference_matches_torch(torch.nn.RNN, rnnkit.RNN)


@pytest.mark.parametrize("act,code", [("tanh", 0), ("sigmoid", 2)])
def test_float64_activations_are_within_a_few_ulp_of_torchs(act, code):
    """The kernels' own vectorised float64 exp, tanh and sigmoid (csrc/common.h; libm's were scalar calls):
    through one Elman step per value (W_hh = 0, so each state is act(x_t)), within 3 ulp of torch's over
    -30..30, tiny magnitudes down to 1e-300 (tanh's small-argument branch), the overflow and underflow
    ends, and the same infinities and NaN."""
    from rnnkit.engines.cpp.build import kernels

    grid = torch.linspace(-30, 30, 20001, dtype=torch.float64)
    tiny = torch.logspace(-300, 0, 3001, dtype=torch.float64)
    ends = torch.tensor([0.0, 0.625, -0.625, 700, -700, 708.5, -708.5, 710, -710, 745, -745, 800, -800],
                        dtype=torch.float64)
    x = torch.cat([grid, tiny, -tiny, ends, torch.tensor([float("inf"), float("-inf"), float("nan")],
                                                         dtype=torch.float64)])
    zero = torch.zeros(1, 1, dtype=torch.float64)
    got = kernels().elman_forward(x.view(-1, 1, 1), zero, zero, None, None, code)[0][1:].view(-1)
    want = getattr(torch, act)(x)
    finite = torch.isfinite(want) & (want.abs() > 1e-300)
    ulp = ((got - want).abs() / torch.finfo(torch.float64).eps / want.abs())[finite]
    assert ulp.max().item() <= 3, f"max {ulp.max().item():.1f} ulp at x = {x[finite][ulp.argmax()].item()}"
    assert torch.equal(got[-3:-1], want[-3:-1]) and torch.isnan(got[-1])
    assert torch.allclose(got[~finite], want[~finite], atol=1e-300, equal_nan=True)
