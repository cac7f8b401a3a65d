"""The explicit-BPTT engines for Elman, Jordan and IndRNN: gradcheck of each Function's hand-written
backward, parity with the reference engine (outputs, final and per-step states, gradients of input,
initial state and every parameter) through rnnkit.Recurrent / build_layer / rnnkit.RNN, and dispatch
tests proving the Functions actually ran."""
import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.cells.elman import ElmanCell, ElmanConfig
from rnnkit.engines.base import EngineError
from rnnkit.engines.bptt.elman import ElmanFunction
from rnnkit.engines.bptt.indrnn import IndRNNFunction
from rnnkit.engines.bptt.jordan import JordanFunction

F64 = torch.float64
ACTS = ["tanh", "relu", "sigmoid", "identity"]


# -- gradcheck of the Functions ---------------------------------------------------------------------
def _masks(opt, T, B, S, gen):
    """(h_mask, zone, valid) for one gradcheck case."""
    h_mask = torch.rand(B, S, dtype=F64, generator=gen) * 2 if opt == "h_mask" or opt == "all" else None
    zone = None
    if opt in ("zoneout", "all"):
        zone = torch.bernoulli(torch.full((T, B, S), 0.4, dtype=F64), generator=gen)  # (T, B, S)
    if opt == "zoneout_eval":
        zone = torch.full((T, 1, 1), 0.3, dtype=F64)
    valid = None
    if opt in ("lengths", "all"):
        valid = (torch.arange(T).unsqueeze(1) < torch.tensor([4, 2, 1])).unsqueeze(-1)  # (T, B, 1) bool
    return h_mask, zone, valid


OPTS = ["plain", "h_mask", "zoneout", "zoneout_eval", "lengths", "all"]
CASES = [(a, "plain") for a in ACTS] + [(a, o) for a in ("tanh", "identity") for o in OPTS[1:]]


def _leaf(gen, *shape, scale=1.0):
    return (torch.randn(*shape, dtype=F64, generator=gen) * scale).requires_grad_()


@pytest.mark.parametrize("act,opt", CASES)
def test_elman_function_gradcheck(act, opt):
    T, B, H = 4, 3, 3
    gen = torch.Generator().manual_seed(1)
    inputs = (_leaf(gen, T, B, H), _leaf(gen, H, H, scale=0.5), _leaf(gen, B, H))
    masks = _masks(opt, T, B, H, gen)
    assert torch.autograd.gradcheck(lambda *a: ElmanFunction.apply(*a, *masks, act), inputs)


@pytest.mark.parametrize("act,opt", CASES)
def test_indrnn_function_gradcheck(act, opt):
    T, B, H = 4, 3, 3
    gen = torch.Generator().manual_seed(2)
    inputs = (_leaf(gen, T, B, H), _leaf(gen, H), _leaf(gen, B, H))
    masks = _masks(opt, T, B, H, gen)
    assert torch.autograd.gradcheck(lambda *a: IndRNNFunction.apply(*a, *masks, act), inputs)


@pytest.mark.parametrize("act,opt", CASES + [("sigmoid", "all")])
@pytest.mark.parametrize("bias", [True, False])
def test_jordan_function_gradcheck(act, opt, bias):
    T, B, H, O = 4, 3, 3, 2
    gen = torch.Generator().manual_seed(3)
    out_act = {"tanh": "sigmoid", "relu": "tanh", "sigmoid": "relu", "identity": "identity"}[act]
    inputs = (_leaf(gen, T, B, H), _leaf(gen, H, O, scale=0.5), _leaf(gen, O, H, scale=0.5),
              _leaf(gen, O) if bias else None, _leaf(gen, B, O))
    masks = _masks(opt, T, B, O, gen)
    assert torch.autograd.gradcheck(lambda *a: JordanFunction.apply(*a, *masks, act, out_act), inputs)


# -- parity with the reference engine ---------------------------------------------------------------
def _run(layer, x, engine, lengths=None, hx=None, seed=5):
    layer.engine = engine
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    hx = hx.detach().clone().requires_grad_() if hx is not None else None
    torch.manual_seed(seed)  # the same dropout/zoneout masks for both engines
    res = layer.run(x, hx, lengths=lengths, all_states=True)
    out = res.output
    name = layer.cells[0].state_names[0]
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    loss = (out * weights).sum() + (res.state ** 2).sum() + sum((s[name] ** 3).sum() for s in res.states)
    loss.backward()
    grads = {n: p.grad for n, p in layer.named_parameters()}
    return res.engine, out, res.state, [s[name] for s in res.states], x.grad, \
        (hx.grad if hx is not None else None), grads


def _assert_parity(layer, x, lengths=None, hx=None, tol=None):
    got, ref = _run(layer, x, "bptt", lengths, hx), _run(layer, x, "reference", lengths, hx)
    assert got[0] == "bptt" and ref[0] == "reference"
    kw = tol or {}
    for a, b in zip(got[1:6], ref[1:6]):
        assert_close(a, b, **kw)
    assert set(got[6]) == set(ref[6])
    for name in ref[6]:
        assert ref[6][name] is not None, name
        assert_close(got[6][name], ref[6][name], msg=lambda m: f"grad of {name}: {m}", **kw)


CELLS = {
    **{f"elman_{a}": ("elman", {"activation": a}) for a in ACTS},
    "elman_readout": ("elman", {"output_size": 5, "out_activation": "sigmoid"}),
    "elman_no_bias_learned_h0": ("elman", {"bias": False, "learn_initial_state": True}),
    "jordan": ("jordan", {}),
    "jordan_relu_sigmoid_o3": ("jordan", {"activation": "relu", "out_activation": "sigmoid", "output_size": 3}),
    "jordan_identity_no_bias": ("jordan", {"activation": "identity", "out_activation": "identity",
                                           "bias": False}),
    "indrnn": ("indrnn", {}),
    "indrnn_tanh_clamped": ("indrnn", {"activation": "tanh", "recurrent_init": (-2.0, 2.0)}),
    "indrnn_identity_learned_h0": ("indrnn", {"activation": "identity", "learn_initial_state": True,
                                              "recurrent_init": (-0.5, 0.5)}),
}
REGS = {
    "none": {},
    "dropconnect": {"dropconnect": 0.4},
    "zoneout": {"zoneout": 0.3},
    "recurrent_dropout": {"recurrent_dropout": 0.3},
    "variational_dropout": {"variational_dropout": 0.3, "dropout": 0.2},
    "all": {"dropconnect": 0.3, "zoneout": 0.2, "recurrent_dropout": 0.2, "variational_dropout": 0.2},
}
PARITY = ([(c, "none") for c in CELLS] + [(c, "all") for c in CELLS]
          + [(c, r) for c in ("elman_tanh", "jordan", "indrnn") for r in REGS if r not in ("none", "all")])


@pytest.mark.parametrize("cell,reg", PARITY)
def test_parity_with_reference_float64(cell, reg):
    name, opts = CELLS[cell]
    torch.manual_seed(0)
    layer = rnnkit.build_layer(name, 3, 4, 2, bidirectional=True, **REGS[reg], **opts).double().train()
    x = torch.randn(6, 3, 3, dtype=F64)
    _assert_parity(layer, x)
    _assert_parity(layer, x, lengths=torch.tensor([6, 2, 4]))


def test_indrnn_clamp_gradient_is_zero_outside_the_range():
    torch.manual_seed(6)
    layer = rnnkit.build_layer("indrnn", 3, 6, recurrent_init=(-2.0, 2.0), engine="bptt").double()
    with torch.no_grad():
        layer.cells[0].weight_hh.copy_(torch.tensor([-2.0, -1.0, -0.5, 0.5, 1.0, 1.5], dtype=F64))
    _assert_parity(layer, torch.randn(5, 2, 3, dtype=F64))
    out, _ = layer(torch.randn(5, 2, 3, dtype=F64))
    layer.zero_grad()
    out.sum().backward()
    g = layer.cells[0].weight_hh.grad
    assert g[0] == 0 and g[5] == 0 and bool((g[1:5] != 0).all())


@pytest.mark.parametrize("cell", ["elman_sigmoid", "jordan", "indrnn"])
def test_parity_float32_batch_first_eval_zoneout(cell):
    name, opts = CELLS[cell]
    torch.manual_seed(1)
    layer = rnnkit.build_layer(name, 5, 8, 1, batch_first=True, zoneout=0.2, **opts).eval()
    x = torch.randn(4, 9, 5)  # (B, T, I)
    h0 = torch.randn(1, 4, layer.cells[0].state_sizes[0])
    _assert_parity(layer, x, lengths=torch.tensor([9, 1, 5, 7]), hx=h0, tol={"atol": 2e-5, "rtol": 1e-4})


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnnkit_rnn_bptt_matches_reference_and_torch(nonlinearity):
    torch.manual_seed(2)
    rnn = rnnkit.RNN(4, 6, num_layers=2, nonlinearity=nonlinearity, bidirectional=True, batch_first=True).double()
    x = torch.randn(3, 7, 4, dtype=F64)
    h0 = torch.randn(4, 3, 6, dtype=F64)
    _assert_parity(rnn, x, hx=h0)
    ref = torch.nn.RNN(4, 6, num_layers=2, nonlinearity=nonlinearity, bidirectional=True, batch_first=True).double()
    ref.load_state_dict(rnn.state_dict())
    rnn.engine = "bptt"
    out, h = rnn(x, h0)
    out_t, h_t = ref(x, h0)
    assert_close(out, out_t)
    assert_close(h, h_t)


@pytest.mark.parametrize("cell", ["elman", "jordan", "indrnn"])
def test_bfloat16_close_to_float64(cell):
    torch.manual_seed(3)
    layer = rnnkit.build_layer(cell, 8, 16, engine="bptt", zoneout=0.1).train()
    x = torch.randn(10, 4, 8)
    torch.manual_seed(9)
    out64, _ = layer.double()(x.double())
    torch.manual_seed(9)
    out16, _ = layer.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert out16.dtype == torch.bfloat16
    assert_close(out16.double(), out64, atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize("cell", ["elman", "jordan", "indrnn"])
def test_no_grad_matches_and_builds_no_graph(cell):
    torch.manual_seed(4)
    layer = rnnkit.build_layer(cell, 3, 5, engine="bptt").eval()
    x = torch.randn(6, 2, 3)
    with torch.no_grad():
        out, h = layer(x)
    assert out.grad_fn is None and h.grad_fn is None
    layer.engine = "reference"
    with torch.no_grad():
        out_ref, h_ref = layer(x)
    assert_close(out, out_ref)
    assert_close(h, h_ref)


# -- dispatch ---------------------------------------------------------------------------------------
FUNCTIONS = {"elman": ElmanFunction, "jordan": JordanFunction, "indrnn": IndRNNFunction}


def _spy(monkeypatch, fn):
    calls = []
    original = fn.apply

    def counting(*args):
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(fn, "apply", counting)
    return calls


@pytest.mark.parametrize("cell", list(FUNCTIONS))
def test_forced_bptt_runs_the_function(cell, monkeypatch):
    calls = _spy(monkeypatch, FUNCTIONS[cell])
    layer = rnnkit.build_layer(cell, 3, 4, 2, bidirectional=True, engine="bptt")
    assert layer.run(torch.randn(5, 2, 3)).engine == "bptt"
    assert len(calls) == 4  # 2 layers x 2 directions


@pytest.mark.parametrize("cell,opts", [("jordan", {}), ("indrnn", {}), ("elman", {"activation": "sigmoid"}),
                                       ("elman", {"activation": "identity"})])
def test_auto_picks_bptt_on_cpu_for_cells_torch_lacks(cell, opts, monkeypatch):
    monkeypatch.setenv("RNNKIT_CPP", "0")  # the cpp engine goes first where it is built
    calls = _spy(monkeypatch, FUNCTIONS[cell])
    layer = rnnkit.build_layer(cell, 3, 4, **opts)
    x = torch.randn(5, 2, 3)
    assert layer.explain(x).engine == "bptt"
    assert layer.run(x).engine == "bptt"
    assert len(calls) == 1


def test_user_callable_activation_is_refused_with_a_reason():
    cell = ElmanCell(ElmanConfig(3, 4, activation=torch.nn.functional.softsign))
    layer = rnnkit.Recurrent(cell, engine="bptt")
    with pytest.raises(EngineError, match="user callable"):
        layer(torch.randn(5, 2, 3))
    layer.engine = "auto"
    explanation = layer.explain(torch.randn(5, 2, 3))
    assert explanation.engine == "reference"
    assert any(name == "bptt" and "user callable" in why for name, why in explanation.rejected)
    jordan = rnnkit.build_layer("jordan", 3, 4, out_activation=torch.nn.functional.softsign, engine="bptt")
    with pytest.raises(EngineError, match="out_activation is a user callable"):
        jordan(torch.randn(5, 2, 3))
