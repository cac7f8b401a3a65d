"""The explicit-BPTT GRU engine (both variants): gradcheck of GRUFunction's hand-written backward,
parity with the reference engine (outputs, final and per-step states, gradients of input, initial
state and every parameter) through rnnkit.Recurrent / build_layer / rnnkit.GRU, and dispatch tests
proving GRUFunction actually ran."""
import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.engines.base import EngineError
from rnnkit.engines.bptt import _common
from rnnkit.engines.bptt import gru as bptt_gru
from rnnkit.engines.bptt.gru import GRUFunction

F64 = torch.float64


# -- gradcheck of the Function ----------------------------------------------------------------------
GRADCHECK = {
    "after": {},
    "before": {"reset_after": False},
    "after_no_bias": {"bias": False},
    "before_no_bias": {"reset_after": False, "bias": False},
    "after_ln": {"ln": True},
    "before_ln": {"reset_after": False, "ln": True},
    "after_zoneout": {"zoneout": True},
    "before_zoneout_eval": {"reset_after": False, "zoneout_eval": True},
    "after_h_mask": {"h_mask": True},
    "before_h_mask": {"reset_after": False, "h_mask": True},
    "after_lengths": {"lengths": True},
    "before_everything": {"reset_after": False, "ln": True, "zoneout": True, "h_mask": True, "lengths": True},
    "after_everything": {"ln": True, "zoneout": True, "h_mask": True, "lengths": True},
}


@pytest.mark.parametrize("case", list(GRADCHECK))
def test_function_gradcheck(case):
    opt = GRADCHECK[case]
    T, B, H = 4, 3, 2
    after = opt.get("reset_after", True)
    gen = torch.Generator().manual_seed(11)

    def leaf(*shape, scale=1.0):
        return (torch.randn(*shape, dtype=F64, generator=gen) * scale).requires_grad_()

    rec = 3 * H if after else 2 * H
    ln = opt.get("ln", False)
    inputs = [leaf(T, B, 3 * H), leaf(3 * H, H), leaf(3 * H) if opt.get("bias", True) else None,
              leaf(rec) if ln else None, leaf(rec) if ln else None,
              leaf(H) if ln and not after else None, leaf(H) if ln and not after else None,
              leaf(B, H)]
    h_mask = torch.rand(B, H, dtype=F64, generator=gen) * 2 if opt.get("h_mask") else None
    zone = None
    if opt.get("zoneout"):
        zone = torch.bernoulli(torch.full((T, B, H), 0.4, dtype=F64), generator=gen)  # (T, B, H)
    if opt.get("zoneout_eval"):
        zone = torch.full((T, 1, 1), 0.3, dtype=F64)
    valid = None
    if opt.get("lengths"):
        valid = (torch.arange(T).unsqueeze(1) < torch.tensor([4, 2, 1])).unsqueeze(-1)  # (T, B, 1) bool
    fn = lambda *a: GRUFunction.apply(*a, h_mask, zone, valid, after)  # noqa: E731
    # LN cases in fast mode (random directional derivatives): torch's layer_norm kernel opens a
    # parallel region per call, which is slow on a loaded 2-core machine; a wrong term still fails it
    assert torch.autograd.gradcheck(fn, tuple(inputs), fast_mode=ln)


# -- parity with the reference engine ---------------------------------------------------------------
def _run(layer, x, engine, lengths=None, hx=None, seed=5):
    """Output, final state, per-step states and every gradient of one forward+backward."""
    layer.engine = engine
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    hx = hx.detach().clone().requires_grad_() if hx is not None else None
    torch.manual_seed(seed)  # the same dropout/zoneout masks for both engines
    res = layer.run(x, hx, lengths=lengths, all_states=True)
    out = res.output
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    loss = (out * weights).sum() + (res.state ** 2).sum() + sum((s["h"] ** 3).sum() for s in res.states)
    loss.backward()
    grads = {n: p.grad for n, p in layer.named_parameters()}
    return res.engine, out, res.state, [s["h"] for s in res.states], x.grad, \
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
    "gru": ("gru", {}),
    "gru_cho": ("gru_cho", {}),
    "lngru": ("lngru", {}),
    "lngru_cho": ("gru", {"layer_norm": True, "reset_after": False}),
    "gru_no_bias": ("gru", {"bias": False}),
    "gru_cho_no_bias_learned_h0": ("gru_cho", {"bias": False, "learn_initial_state": True}),
}
REGS = {
    "none": {},
    "dropconnect": {"dropconnect": 0.4},
    "zoneout": {"zoneout": 0.3},
    "recurrent_dropout": {"recurrent_dropout": 0.3},
    "variational_dropout": {"variational_dropout": 0.3, "dropout": 0.2},
    "all": {"dropconnect": 0.3, "zoneout": 0.2, "recurrent_dropout": 0.2, "variational_dropout": 0.2},
}


#: every cell without regularisers and with all of them; every regulariser alone on both variants
PARITY = ([(c, "none") for c in CELLS] + [(c, "all") for c in CELLS]
          + [(c, r) for c in ("gru", "gru_cho") for r in REGS if r not in ("none", "all")])


@pytest.mark.parametrize("cell,reg", PARITY)
def test_parity_with_reference_float64(cell, reg):
    name, opts = CELLS[cell]
    torch.manual_seed(0)
    layers = 1 if cell.startswith("ln") else 2  # torch's layer_norm is slow on a loaded 2-core machine
    layer = rnnkit.build_layer(name, 3, 4, layers, bidirectional=True, **REGS[reg], **opts).double().train()
    x = torch.randn(6, 3, 3, dtype=F64)
    _assert_parity(layer, x)
    _assert_parity(layer, x, lengths=torch.tensor([6, 2, 4]))


@pytest.mark.parametrize("cell", ["gru", "gru_cho", "lngru_cho"])
@pytest.mark.parametrize("chunk_steps", [1, 4])
def test_parity_with_backward_in_time_chunks(cell, chunk_steps, monkeypatch):
    """The backward pass computes gate coefficients a chunk of steps at a time: chunks of 1 step and
    chunks of 4 over T = 7 (a shorter chunk at the start) give the reference's gradients."""
    B, H = 3, 4
    monkeypatch.setattr(_common, "CHUNK_ELEMENTS", chunk_steps * B * H)
    assert len(_common.time_chunks(7, B * H)) == (7 if chunk_steps == 1 else 2)
    name, opts = CELLS[cell]
    torch.manual_seed(0)
    layer = rnnkit.build_layer(name, 3, H, 1, bidirectional=True, **REGS["all"], **opts).double().train()
    _assert_parity(layer, torch.randn(7, B, 3, dtype=F64), lengths=torch.tensor([7, 2, 5]))


@pytest.mark.parametrize("cell", ["gru", "gru_cho", "lngru"])
def test_parity_float32_batch_first_eval_zoneout(cell):
    torch.manual_seed(1)
    layer = rnnkit.build_layer(cell, 5, 8, 1, batch_first=True, zoneout=0.2).eval()
    x = torch.randn(4, 9, 5)  # (B, T, I)
    h0 = torch.randn(1, 4, 8)
    _assert_parity(layer, x, lengths=torch.tensor([9, 1, 5, 7]), hx=h0, tol={"atol": 2e-5, "rtol": 1e-4})


def test_rnnkit_gru_bptt_matches_reference_and_torch():
    torch.manual_seed(2)
    gru = rnnkit.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True, engine="bptt").double()
    x = torch.randn(3, 7, 4, dtype=F64)
    h0 = torch.randn(4, 3, 6, dtype=F64)
    _assert_parity(gru, x, hx=h0)
    ref = torch.nn.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True).double()
    ref.load_state_dict(gru.state_dict())
    gru.engine = "bptt"
    out, h = gru(x, h0)
    out_t, h_t = ref(x, h0)
    assert_close(out, out_t)
    assert_close(h, h_t)


@pytest.mark.parametrize("cell", ["gru", "gru_cho", "lngru"])
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


def test_no_grad_matches_and_builds_no_graph():
    torch.manual_seed(4)
    layer = rnnkit.build_layer("gru_cho", 3, 5, engine="bptt").eval()
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
@pytest.fixture
def spy(monkeypatch):
    calls = []
    original = GRUFunction.apply

    def counting(*args):
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(GRUFunction, "apply", counting)
    return calls


def test_forced_bptt_runs_the_function(spy):
    gru = rnnkit.GRU(3, 4, num_layers=2, bidirectional=True, engine="bptt")
    res = gru.run(torch.randn(5, 2, 3))
    assert res.engine == "bptt"
    assert len(spy) == 4  # 2 layers x 2 directions


@pytest.mark.parametrize("cell", ["gru_cho", "lngru"])
def test_auto_picks_bptt_on_cpu_for_cells_torch_lacks(cell, spy, monkeypatch):
    monkeypatch.setenv("RNNKIT_CPP", "0")  # the cpp engine goes first where it is built
    layer = rnnkit.build_layer(cell, 3, 4)
    x = torch.randn(5, 2, 3)
    assert layer.explain(x).engine == "bptt"
    assert layer.run(x).engine == "bptt"
    assert len(spy) == 1


def test_unsupported_requests_say_why():
    layer = rnnkit.build_layer("gru", 3, 4, engine="bptt").half()
    with pytest.raises(EngineError, match="dtype torch.float16"):
        layer(torch.randn(5, 2, 3).half())
    layer = rnnkit.build_layer("gru", 3, 4, engine="bptt")
    with pytest.raises(EngineError, match="gradient probes"):
        layer.run(torch.randn(5, 2, 3), probe_grads=True)
    assert bptt_gru.supports(layer.cells[0], _request(layer, torch.float32)) is None


def _request(layer, dtype):
    return layer.request("cpu", dtype)
