"""The explicit-BPTT LSTM engine: gradcheck of its hand-written backward, parity with the reference
engine (outputs, final and per-step states, gradients of input, initial state and every parameter)
through rnnkit.Recurrent and rnnkit.LSTM, and dispatch tests proving the Function actually ran."""
import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.cells.lstm import LSTMCell, LSTMConfig
from rnnkit.engines.base import EngineError
from rnnkit.engines.bptt import _lstm_factors as lstm_factors
from rnnkit.engines.bptt import _lstm_function as lstm_function
from rnnkit.engines.bptt import lstm as bptt_lstm
from rnnkit.engines.bptt._lstm_function import LSTMBPTTFunction, LSTMMasks

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny shapes: intra-op threads only add synchronisation (and stalls on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- gradcheck of the Function --------------------------------------------------------------------
def _function_inputs(T, B, H, P, proj, peephole, ln, gen):
    def leaf(*shape):
        return torch.randn(*shape, dtype=F64, generator=gen).requires_grad_()

    w_hr = leaf(P, H) if proj else None
    return [leaf(T, B, 4 * H), leaf(4 * H, P), leaf(B, P), leaf(B, H), w_hr,
            leaf(3, H) if peephole else None,
            leaf(4 * H) if ln else None, leaf(4 * H) if ln else None,
            leaf(H) if ln else None, leaf(H) if ln else None]


GRADCHECK_CASES = {
    "plain": {},
    "proj": {"proj": True},
    "peephole": {"peephole": True},
    "layer_norm": {"ln": True},
    "zoneout": {"zoneout": True},
    "h_mask": {"h_mask": True},
    "lengths": {"lengths": True},
    "everything": {"proj": True, "peephole": True, "ln": True, "zoneout": True, "h_mask": True, "lengths": True},
}


MODES = {  # name -> (SIGMOID_TANH_MIN_UNITS, CHUNK_UNITS)
    "tanh-one-chunk": (10**9, 10**9),
    "sigmoid-tanh-step-chunks": (0, 1),  # chunks of one step
    "tanh-chunks": (10**9, 20),  # chunks of 2 steps at B = H = 3, of 1 at B = H = 4
}


def _set_mode(monkeypatch, name):
    """Both ways the forward computes tanh (directly, and as 2 * sigmoid(2x) - 1, taken at large B * H
    on CPU) and backward factor chunks from one step to the whole sequence."""
    tanh_units, chunk_units = MODES[name]
    monkeypatch.setattr(lstm_function, "SIGMOID_TANH_MIN_UNITS", tanh_units)
    monkeypatch.setattr(lstm_factors, "CHUNK_UNITS", chunk_units)
    return name


@pytest.fixture(params=list(MODES))
def mode(request, monkeypatch):
    return _set_mode(monkeypatch, request.param)


@pytest.fixture(params=["tanh-one-chunk", "sigmoid-tanh-step-chunks"])
def tanh_mode(request, monkeypatch):
    return _set_mode(monkeypatch, request.param)


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_function_gradcheck(case, mode):
    opt = GRADCHECK_CASES[case]
    T, B, H = 4, 3, 3
    P = 2 if opt.get("proj") else H
    gen = torch.Generator().manual_seed(7)
    inputs = _function_inputs(T, B, H, P, opt.get("proj"), opt.get("peephole"), opt.get("ln"), gen)
    valid = None
    if opt.get("lengths"):
        valid = (torch.arange(T).unsqueeze(1) < torch.tensor([4, 2, 1])).unsqueeze(-1).to(F64)  # (T, B, 1)
    keep_h = keep_c = None if valid is None else 1 - valid
    if opt.get("zoneout"):
        z_h = torch.bernoulli(torch.full((T, B, P), 0.4, dtype=F64), generator=gen)
        z_c = torch.bernoulli(torch.full((T, B, H), 0.4, dtype=F64), generator=gen)
        keep_h = z_h if valid is None else 1 - valid * (1 - z_h)
        keep_c = z_c if valid is None else 1 - valid * (1 - z_c)
    h_mask = torch.rand(B, P, dtype=F64, generator=gen) * 2 if opt.get("h_mask") else None
    masks = LSTMMasks(h_mask=h_mask, keep_h=keep_h, keep_c=keep_c, valid=valid)
    assert torch.autograd.gradcheck(lambda *a: LSTMBPTTFunction.apply(*a, masks), tuple(inputs))


def test_function_gradcheck_eval_zoneout_broadcast_masks(mode):
    """Evaluation zoneout masks are (T, 1, 1) constants broadcast over batch and units."""
    T, B, H = 3, 2, 3
    gen = torch.Generator().manual_seed(3)
    inputs = _function_inputs(T, B, H, H, False, True, False, gen)
    keep = torch.full((T, 1, 1), 0.3, dtype=F64)
    masks = LSTMMasks(keep_h=keep, keep_c=keep)
    assert torch.autograd.gradcheck(lambda *a: LSTMBPTTFunction.apply(*a, masks), tuple(inputs))


# -- parity with the reference engine --------------------------------------------------------------
CELL_OPTIONS = {
    "plain": {},
    "no_bias": {"bias": False},
    "proj": {"proj_size": 3},
    "peephole": {"peephole": True},
    "layer_norm": {"layer_norm": True},
    "all": {"peephole": True, "layer_norm": True, "proj_size": 3, "learn_initial_state": True},
}
REGULARISERS = {
    "none": {},
    "dropconnect": {"dropconnect": 0.4},
    "zoneout": {"zoneout": 0.3},
    "recurrent_dropout": {"recurrent_dropout": 0.4},
    "variational_dropout": {"variational_dropout": 0.3, "dropout": 0.2},
    "all": {"dropconnect": 0.3, "zoneout": 0.2, "recurrent_dropout": 0.3, "variational_dropout": 0.2},
}
LAYOUTS = {  # num_layers, bidirectional, batch_first, lengths
    "1-layer": (1, False, False, None),
    "2-layer-bidir-lengths": (2, True, False, [6, 2, 1, 4]),
    "batch-first-lengths": (1, False, True, [3, 6, 6, 5]),
}


def _perturb(layer, gen):
    """Move every parameter off its initial value (LayerNorm ones/zeros, zero initial states)."""
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn(p.shape, dtype=p.dtype, generator=gen))


def _run(make_layer, engine, dtype, T, B, layout, training=True, hx=True, all_states=True, compute=None):
    """Outputs, final state, per-step states and gradients of one engine. Every value is drawn in
    ``dtype``; ``compute`` (default ``dtype``) is the dtype the layer runs in, so the float32 case can
    be run again in float64 as its truth."""
    compute = compute or dtype
    num_layers, bidir, batch_first, lengths = layout
    torch.manual_seed(0)
    layer = make_layer(engine).to(dtype).train(training)
    _perturb(layer, torch.Generator().manual_seed(1))
    layer = layer.to(compute)
    gen = torch.Generator().manual_seed(2)

    def draw(*shape):
        return torch.randn(*shape, dtype=dtype, generator=gen).to(compute)

    cell = layer.cells[0]
    I, (P, H) = cell.input_size, cell.state_sizes
    x = draw(*((B, T) if batch_first else (T, B)), I).requires_grad_()
    L = num_layers * (2 if bidir else 1)
    state = (draw(L, B, P).requires_grad_(), draw(L, B, H).requires_grad_()) if hx else None
    torch.manual_seed(3)  # the same dropout / zoneout masks for both engines
    res = layer.run(x, state, lengths=None if lengths is None else torch.tensor(lengths), all_states=all_states)
    assert res.engine == engine
    loss = (res.output * draw(*res.output.shape)).sum()
    loss = loss + (res.state[0] * draw(*res.state[0].shape)).sum()
    loss = loss + (res.state[1] ** 2).sum()
    per_step = []
    for comps in res.states or []:
        for name in ("h", "c"):
            per_step.append(comps[name])
            loss = loss + (comps[name] * draw(*comps[name].shape)).sum()
    leaves = [x] + (list(state) if hx else []) + list(layer.parameters())
    grads = torch.autograd.grad(loss, leaves, allow_unused=False)
    names = ["x"] + (["h0", "c0"] if hx else []) + [n for n, _ in layer.named_parameters()]
    return res.output, res.state, per_step, dict(zip(names, grads))


def _close(got, ref, truth, what):
    """float64 (truth None): assert_close's defaults. float32: bptt's error against the float64 run of
    the same draws is at most 4x the reference engine's own float32 error, or within 1e-4 of the
    tensor's largest magnitude. The sigmoid form of tanh and LayerNorm's 1/std amplify float32
    rounding in the small entries: with some draws (mask realisations) bptt's LayerNorm-gain gradients
    are 6e-5 of the largest magnitude off the float64 truth where the reference's are 1e-5, so a fixed
    tolerance against the float32 reference alone fails on some seeds; a wrong gradient is off by O(1).
    """
    if truth is None:
        assert_close(got, ref, msg=what)
        return
    truth = truth.detach()
    scale = max(float(truth.abs().max()), 1.0)
    err_got = float((got.detach().double() - truth).abs().max()) / scale
    err_ref = float((ref.detach().double() - truth).abs().max()) / scale
    assert err_got <= max(4 * err_ref, 1e-4), \
        f"{what}: bptt float32 error {err_got:.2e}, reference float32 error {err_ref:.2e} (of the largest magnitude)"


def _assert_parity(make_layer, dtype, layout, T=6, B=4, **kw):
    ref = _run(make_layer, "reference", dtype, T, B, layout, **kw)
    got = _run(make_layer, "bptt", dtype, T, B, layout, **kw)
    truth = _run(make_layer, "reference", dtype, T, B, layout, compute=F64, **kw) if dtype != F64 else None

    def pick(i):
        return truth[i] if truth is not None else None

    _close(got[0], ref[0], pick(0), "output")
    for a, b, c in zip(got[1], ref[1], pick(1) or [None] * len(ref[1])):
        _close(a, b, c, "final state")
    assert len(got[2]) == len(ref[2])
    for a, b, c in zip(got[2], ref[2], pick(2) or [None] * len(ref[2])):
        _close(a, b, c, "per-step state")
    assert got[3].keys() == ref[3].keys()
    for name in ref[3]:
        _close(got[3][name], ref[3][name], truth[3][name] if truth is not None else None, f"gradient of {name}")


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("reg", list(REGULARISERS))
@pytest.mark.parametrize("opts", list(CELL_OPTIONS))
def test_recurrent_parity_with_reference(opts, reg, layout, dtype, tanh_mode):
    num_layers, bidir, batch_first, _ = LAYOUTS[layout]

    def make(engine):
        cell = LSTMCell(LSTMConfig(5, 4, **CELL_OPTIONS[opts]))
        return rnnkit.Recurrent(cell, num_layers, bidirectional=bidir, batch_first=batch_first,
                                engine=engine, **REGULARISERS[reg])

    _assert_parity(make, dtype, LAYOUTS[layout], hx=not CELL_OPTIONS[opts].get("learn_initial_state"))


@pytest.mark.parametrize("proj_size", [0, 2])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_torch_compatible_lstm_parity(proj_size, layout):
    num_layers, bidir, batch_first, _ = LAYOUTS[layout]

    def make(engine):
        return rnnkit.LSTM(5, 4, num_layers, batch_first=batch_first, bidirectional=bidir,
                           proj_size=proj_size, engine=engine)

    _assert_parity(make, F64, LAYOUTS[layout])


@pytest.mark.parametrize("opts", ["plain", "all"])
def test_large_batch_takes_the_sigmoid_tanh_path(opts):
    """B * H >= SIGMOID_TANH_MIN_UNITS without monkeypatching: the default switch itself."""
    B = lstm_function.SIGMOID_TANH_MIN_UNITS // 4 + 1

    def make(engine):
        return rnnkit.Recurrent(LSTMCell(LSTMConfig(3, 4, **CELL_OPTIONS[opts])), zoneout=0.2, engine=engine)

    _assert_parity(make, torch.float32, (1, False, False, [3] * (B - 1) + [2]), T=3, B=B,
                   hx=not CELL_OPTIONS[opts].get("learn_initial_state"))


@pytest.mark.parametrize("opts", ["plain", "all"])
def test_evaluation_zoneout_and_no_states_parity(opts):
    """Evaluation mode (zoneout uses its expectation p) and a call without per-step states."""
    def make(engine):
        cell = LSTMCell(LSTMConfig(5, 4, **CELL_OPTIONS[opts]))
        return rnnkit.Recurrent(cell, 2, bidirectional=True, zoneout=0.6, dropconnect=0.5, engine=engine)

    _assert_parity(make, F64, LAYOUTS["2-layer-bidir-lengths"], training=False, hx=False, all_states=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("opts", ["plain", "all"])
def test_inference_under_no_grad(opts, dtype):
    """torch.no_grad: same outputs as the reference, nothing requires grad; bf16 computes in bf16."""
    outs = []
    for engine in ("reference", "bptt"):
        torch.manual_seed(0)
        cell = LSTMCell(LSTMConfig(6, 8, **CELL_OPTIONS[opts]))
        layer = rnnkit.Recurrent(cell, 2, zoneout=0.3, engine=engine).to(dtype).eval()
        x = torch.randn(7, 3, 6, generator=torch.Generator().manual_seed(1)).to(dtype)
        with torch.no_grad():
            res = layer.run(x, lengths=torch.tensor([7, 3, 5]), all_states=True)
        assert res.engine == engine
        assert not res.output.requires_grad and res.output.dtype == dtype
        outs.append(res)
    tol = {"atol": 3e-2, "rtol": 3e-2} if dtype == torch.bfloat16 else {}
    assert_close(outs[1].output, outs[0].output, **tol)
    assert_close(outs[1].state, outs[0].state, **tol)
    assert_close(outs[1].states[1]["c"], outs[0].states[1]["c"], **tol)


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
def test_low_precision_training_gradients_close_to_float32(low):
    """bf16 / f16 run forward and backward in that dtype; their gradients stay near the float32 ones."""
    grads = {}
    for dtype in (torch.float32, low):
        torch.manual_seed(0)
        layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(6, 8, peephole=True, layer_norm=True)), engine="bptt").to(dtype)
        x = torch.randn(5, 3, 6, generator=torch.Generator().manual_seed(1)).to(dtype)
        out, _ = layer(x)
        out.float().square().sum().backward()
        assert layer.cells[0].weight_hh.grad.dtype == dtype
        grads[dtype] = {n: p.grad.float() for n, p in layer.named_parameters()}
    for name, g in grads[torch.float32].items():
        assert_close(grads[low][name], g, atol=0.1, rtol=0.1, msg=name)


# -- dispatch ---------------------------------------------------------------------------------------
@pytest.fixture
def apply_calls(monkeypatch):
    """Count calls of the BPTT Function (a spy around LSTMBPTTFunction.apply)."""
    calls = []
    real = LSTMBPTTFunction.apply

    def spy(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(LSTMBPTTFunction, "apply", spy)
    return calls


def test_forced_bptt_runs_the_function(apply_calls):
    layer = rnnkit.LSTM(4, 5, num_layers=2, bidirectional=True, engine="bptt")
    res = layer.run(torch.randn(6, 3, 4))
    assert res.engine == "bptt"
    assert len(apply_calls) == 4  # 2 layers x 2 directions
    res.output.sum().backward()
    assert layer.cells[0].weight_hh.grad is not None


@pytest.mark.parametrize("opts", [{"peephole": True}, {"layer_norm": True}])
def test_auto_picks_bptt_for_custom_lstm_on_cpu_without_the_cpp_engine(opts, apply_calls, monkeypatch):
    monkeypatch.setenv("RNNKIT_CPP", "0")  # the compiled loop (tests/engines/test_cpp_lstm.py) comes first
    layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5, **opts)), zoneout=0.1)
    x = torch.randn(6, 3, 4)
    explanation = layer.explain(x)
    assert explanation.engine == "bptt"
    assert "RNNKIT_CPP=0" in dict(explanation.rejected)["cpp"]
    assert layer.run(x).engine == "bptt"
    assert len(apply_calls) == 1


def test_reference_engine_does_not_call_the_function(apply_calls):
    rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5, peephole=True)), engine="reference").run(torch.randn(6, 3, 4))
    assert apply_calls == []


def test_probes_and_traces_are_refused_with_a_reason():
    layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5)), engine="bptt")
    with pytest.raises(EngineError, match="probes"):
        layer.run(torch.randn(6, 3, 4), probe_grads=True)
    auto = rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5, peephole=True)))
    assert auto.run(torch.randn(6, 3, 4), record_gates=True).engine == "reference"


def test_supports_refuses_cells_that_change_the_equations():
    class Scaled(LSTMCell):
        def recur(self, xp_t, state, ctx):
            h, c = super().recur(xp_t, state, ctx)
            return 2 * h, c

    layer = rnnkit.Recurrent(Scaled(LSTMConfig(4, 5, peephole=True)), engine="bptt")
    with pytest.raises(EngineError, match="overrides LSTMCell.recur"):
        layer.run(torch.randn(3, 2, 4))
    auto = rnnkit.Recurrent(Scaled(LSTMConfig(4, 5, peephole=True)))  # peephole: native refuses too
    assert auto.run(torch.randn(3, 2, 4)).engine == "reference"


def test_supports_refuses_integer_dtypes():
    layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5)))
    req = layer.request("cpu", torch.int32)
    assert "dtype torch.int32" in bptt_lstm.supports(layer.cells[0], req)
