"""The native engine with DropConnect: the layer's mask is applied to W_hh and the masked weight goes to
torch's fused kernel (AWD-LSTM's WeightDrop). Under the same seed the masks are the ones the direction
engines draw, so native equals the reference loop exactly; gradients reach W_hh through the mask."""
import pytest
import torch

import rnnkit
from rnnkit.engines.native import NativeEngine
from rnnkit.layers import build_layer
from rnnkit.layers.regularizers import bernoulli_keep

F64 = torch.float64


def _run(layer, engine, x, lengths=None, seed=3):
    layer.engine = engine
    layer.zero_grad()
    torch.manual_seed(seed)
    res = layer.run(x, lengths=lengths)
    out, state = res.output, res.state
    comps = state if isinstance(state, tuple) else (state,)
    loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum() + sum(c.square().sum() for c in comps)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    return res.engine, out.detach(), [c.detach() for c in comps], grads


@pytest.mark.parametrize("cell,options", [("lstm", {}), ("lstm", {"proj_size": 3}), ("gru", {}),
                                          ("rnn", {"activation": "relu"})])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_dropconnect_on_native_equals_reference(cell, options, with_lengths):
    torch.manual_seed(0)
    layer = build_layer(cell, 3, 5, num_layers=2, bidirectional=True, dropconnect=0.4, **options).to(F64).train()
    x = torch.randn(6, 4, 3, dtype=F64)
    lengths = torch.tensor([6, 2, 5, 1]) if with_lengths else None
    name, out_n, state_n, grads_n = _run(layer, "native", x, lengths)
    assert name == "native"
    _, out_r, state_r, grads_r = _run(layer, "reference", x, lengths)
    torch.testing.assert_close(out_n, out_r)
    for a, b in zip(state_n, state_r):
        torch.testing.assert_close(a, b)
    for n in grads_r:
        torch.testing.assert_close(grads_n[n], grads_r[n], msg=n)
    # the mask really reached the kernel: without it the outputs differ
    layer.regularization.dropconnect = 0.0
    _, out_plain, _, _ = _run(layer, "native", x, lengths)
    assert not torch.allclose(out_plain, out_n)


def test_dropconnect_masks_zero_whole_gradient_entries_of_w_hh():
    torch.manual_seed(1)
    layer = build_layer("lstm", 3, 4, dropconnect=0.5).to(F64).train()
    x = torch.randn(5, 4, 3, dtype=F64)
    _, _, _, grads = _run(layer, "native", x)
    torch.manual_seed(3)  # the seed _run set: the layer's mask is the first draw after it
    mask = bernoulli_keep(layer.cells[0].weight_hh.shape, 0.5, "cpu", F64)
    assert (mask == 0).any() and (mask != 0).any()
    assert torch.all(grads["cells.0.weight_hh"][mask == 0] == 0)
    assert torch.any(grads["cells.0.weight_hh"][mask != 0] != 0)


def test_auto_sends_a_dropconnect_lstm_to_native_on_cpu_and_eval_needs_no_mask():
    layer = build_layer("lstm", 3, 4, dropconnect=0.3).train()
    x = torch.randn(5, 4, 3)
    assert layer.explain(x).engine == "native"
    layer.eval()
    with torch.no_grad():
        out_eval = layer(x)[0]
        layer.regularization.dropconnect = 0.0
        torch.testing.assert_close(layer(x)[0], out_eval)


# -- one time step on the CPU: torch's cell functions instead of the fused call ------------------------
def _pair(kind, **kw):
    torch.manual_seed(0)
    tcls, rcls = {"lstm": (torch.nn.LSTM, rnnkit.LSTM), "gru": (torch.nn.GRU, rnnkit.GRU),
                  "rnn": (torch.nn.RNN, rnnkit.RNN)}[kind]
    theirs = tcls(5, 7, num_layers=2, bidirectional=True, **kw)
    ours = rcls(5, 7, num_layers=2, bidirectional=True, **kw)
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


@pytest.mark.parametrize("kind,kw", [("lstm", {}), ("lstm", {"proj_size": 3}), ("gru", {}),
                                     ("rnn", {}), ("rnn", {"nonlinearity": "relu"})])
def test_one_step_equals_torch_nn_with_state_and_gradients(kind, kw, monkeypatch):
    calls = []
    real = NativeEngine.one_step
    monkeypatch.setattr(NativeEngine, "one_step", staticmethod(lambda *a: calls.append(1) or real(*a)))
    theirs, ours = _pair(kind, **kw)
    x = torch.randn(1, 3, 5, requires_grad=True)
    with torch.no_grad():  # a non-zero state carried in, as a generator does
        state = theirs(torch.randn(4, 3, 5))[1]
    want_y, want_s = theirs(x, state)
    res = ours.run(x, state)
    assert res.engine == "native" and calls == [1]
    torch.testing.assert_close(res.output, want_y)
    for a, b in zip(res.state if isinstance(res.state, tuple) else (res.state,),
                    want_s if isinstance(want_s, tuple) else (want_s,)):
        torch.testing.assert_close(a, b)
    got = torch.autograd.grad(res.output.square().sum(), [x] + list(ours.parameters()))
    want = torch.autograd.grad(want_y.square().sum(), [x] + list(theirs.parameters()))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_one_step_goes_first_on_cpu_only_for_a_single_step(monkeypatch):
    calls = []
    real = NativeEngine.one_step
    monkeypatch.setattr(NativeEngine, "one_step", staticmethod(lambda *a: calls.append(1) or real(*a)))
    gru = rnnkit.GRU(5, 7)  # several steps: the cpp (or bptt) engine beats torch's unfused GRU loop
    assert gru.explain(torch.randn(1, 2, 5)).engine == "native"
    assert gru.explain(torch.randn(3, 2, 5)).engine != "native"
    lstm = rnnkit.LSTM(5, 7)
    lstm(torch.randn(3, 2, 5), lengths=torch.tensor([3, 1]))
    lstm(torch.randn(3, 2, 5))
    assert calls == []
    lstm(torch.randn(1, 2, 5))
    assert calls == [1]


def test_one_step_applies_dropout_between_layers_only_in_training():
    theirs, ours = _pair("lstm", dropout=0.5)
    x = torch.randn(1, 4, 5)
    ours.eval()
    theirs.eval()
    torch.testing.assert_close(ours(x)[0], theirs(x)[0])
    ours.train()
    torch.manual_seed(1)
    a = ours(x)[0]
    torch.manual_seed(2)
    b = ours(x)[0]
    assert not torch.allclose(a, b)  # a fresh mask per call between the two layers


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_dropconnect_on_cudnn_equals_reference():
    """cuDNN takes the masked W_hh outside its flat buffer (it copies the weights for the call)."""
    torch.manual_seed(0)
    layer = build_layer("lstm", 3, 5, num_layers=2, dropconnect=0.4).cuda().train()
    x = torch.randn(6, 4, 3, device="cuda")
    layer.engine = "native"
    torch.manual_seed(3)
    out_n = layer(x)[0]
    layer.engine = "reference"
    torch.manual_seed(3)
    out_r = layer(x)[0]
    torch.testing.assert_close(out_n, out_r, atol=1e-5, rtol=1e-4)


def test_dropconnect_on_a_tiny_batch_leaves_native_on_cpu_and_says_why():
    layer = build_layer("lstm", 3, 4, dropconnect=0.3).train()
    e = layer.explain(torch.randn(5, 1, 3))
    assert e.engine != "native"
    assert any(n == "native" and "fewer than 4 sequences" in r for n, r in e.passed_over)
    assert "native" not in dict(e.rejected)  # a preference, not an incapacity
    assert layer.explain(torch.randn(5, 4, 3)).engine == "native"
    assert layer.eval().explain(torch.randn(5, 1, 3)).engine == "native"  # no mask in evaluation


@pytest.mark.parametrize("dtype,check", [(torch.bfloat16, "_is_mkldnn_bf16_supported"),
                                         (torch.float16, "_is_mkldnn_fp16_supported")])
def test_low_precision_autocast_leaves_native_where_onednn_cannot_run_it(dtype, check, monkeypatch):
    """Under CPU autocast torch's fused LSTM runs oneDNN in bf16 / fp16, which raises on a CPU without
    oneDNN's instructions for it (as torch.nn.LSTM does there): rnnkit.LSTM says so and runs the next
    engine; where oneDNN can, native keeps the call. Both outcomes forced through torch's own check."""
    layer = rnnkit.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    monkeypatch.setattr(torch.ops.mkldnn, check, lambda: False)
    with torch.autocast("cpu", dtype=dtype):
        e = layer.explain(x)
        assert e.engine != "native"
        assert any(n == "native" and f"{check}() is False" in r for n, r in e.rejected)
        y, _ = layer(x)
    assert torch.isfinite(y).all()
    with torch.autocast("cpu", dtype=dtype):
        assert rnnkit.LSTM(3, 4, proj_size=2).explain(x).engine == "native"  # torch's own loop, any dtype
    assert layer.explain(x).engine == "native"  # outside autocast
    monkeypatch.setattr(torch.ops.mkldnn, check, lambda: True)
    with torch.autocast("cpu", dtype=dtype):
        assert layer.explain(x).engine == "native"


def _cpp_loop_runs_with_native_results(monkeypatch, x, reason: str, lengths=None, **layer_kw):
    """An auto rnnkit.LSTM(**layer_kw) on x (and lengths): explain() names cpp, with native passed over by a
    policy row giving `reason`, a spy sees one C++ loop per (layer, direction), and the output, final state and input
    gradient equal a native copy's. Returns (auto layer, native layer); skips where the kernels cannot be
    built."""
    from rnnkit.engines.cpp.build import CppBuildError, kernels
    from rnnkit.engines.cpp.lstm import LSTMCppFunction

    from cpp_checks import spy_on_apply

    try:
        kernels()
    except CppBuildError as exc:  # pragma: no cover - CI has a compiler
        pytest.skip(str(exc))
    H = x.shape[-1]
    layer = rnnkit.LSTM(H, H, **layer_kw)
    ref = rnnkit.LSTM(H, H, engine="native", **layer_kw)
    ref.load_state_dict(layer.state_dict())
    e = layer.explain(x, lengths=lengths)
    assert e.engine == "cpp"
    assert any(n == "native" and reason in r for n, r in e.passed_over)
    calls = spy_on_apply(monkeypatch, LSTMCppFunction)
    res = layer.run(x, lengths=lengths)
    assert res.engine == "cpp" and len(calls) == len(layer.cells)  # one C++ loop per layer and direction
    (gx,) = torch.autograd.grad(res.output.sum(), [x])
    out_ref, state_ref = ref(x, lengths=lengths)
    (gx_ref,) = torch.autograd.grad(out_ref.sum(), [x])
    torch.testing.assert_close(res.output, out_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(res.state, state_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(gx, gx_ref, atol=1e-5, rtol=1e-4)
    return layer, ref


def test_one_trained_sequence_goes_to_cpp_above_the_measured_size(monkeypatch):
    """B = 1 with gradients and T x H >= ONE_SEQUENCE_MIN_WORK: the cpp engine's loop runs (spy), with
    native's results; a batch of 2, no gradients, a shorter sequence, a named engine or the cpp engine
    turned off keep native."""
    from rnnkit.engines.policy import ONE_SEQUENCE_MIN_WORK

    torch.manual_seed(0)
    H = 64
    T = ONE_SEQUENCE_MIN_WORK // H
    x = torch.randn(T, 1, H, requires_grad=True)
    layer, ref = _cpp_loop_runs_with_native_results(monkeypatch, x, "one sequence with gradients", num_layers=2)
    assert layer.explain(torch.randn(T, 2, H)).engine == "native"
    assert layer.explain(torch.randn(T - 1, 1, H)).engine == "native"
    with torch.no_grad():
        assert layer.explain(x).engine == "native"
    assert ref.explain(x).engine == "native"
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # oneDNN's own bf16 LSTM: not what was measured
        assert layer.explain(x).engine == "native"
    monkeypatch.setenv("RNNKIT_CPP", "0")
    assert layer.explain(x).engine == "native"


def test_a_trained_batch_goes_to_cpp_inside_the_measured_region(monkeypatch):
    """float64 (float32 takes the fused-loop rule below): B >= BATCH_ROWS_PER_THREAD per thread,
    T >= BATCH_MIN_STEPS, H <= BATCH_MAX_HIDDEN, with gradients: the cpp engine's loop runs (spy) with
    native's results and gradients; one sequence per thread too few, one step too few, one unit too many,
    no gradients, a projection or a named engine keep native."""
    from rnnkit.engines.policy import BATCH_MAX_HIDDEN, BATCH_MIN_STEPS, BATCH_ROWS_PER_THREAD

    torch.manual_seed(0)
    f64 = torch.float64
    B, T, H = BATCH_ROWS_PER_THREAD * torch.get_num_threads(), BATCH_MIN_STEPS, 6
    x = torch.randn(T, B, H, dtype=f64, requires_grad=True)
    layer, ref = _cpp_loop_runs_with_native_results(monkeypatch, x, "a batch with gradients", bidirectional=True,
                                                    dtype=f64)
    assert layer.explain(torch.randn(T, B - 1, H, dtype=f64)).engine == "native"
    assert layer.explain(torch.randn(T - 1, B, H, dtype=f64)).engine == "native"
    wide = BATCH_MAX_HIDDEN + 1
    assert rnnkit.LSTM(wide, wide, dtype=f64).explain(torch.randn(T, B, wide, dtype=f64)).engine == "native"
    assert rnnkit.LSTM(H, H, proj_size=3, dtype=f64).explain(x).engine == "native"
    with torch.no_grad():
        assert layer.explain(x).engine == "native"
    assert ref.explain(x).engine == "native"


def test_a_float32_batch_goes_to_the_fused_cpp_loop_inside_the_measured_region(monkeypatch):
    """float32 with FUSED_INPUT_MIN_ROWS rows per thread and FUSED_MIN_STEPS steps, trained or not: the cpp
    engine's loop runs (spy) with native's results; one row or one step too few, past the width limits
    (trained: FUSED_MAX_HIDDEN, and FUSED_NARROW_HIDDEN below FUSED_WIDE_MIN_STEPS steps; without gradients:
    FUSED_NO_GRAD_MAX_HIDDEN), a projection or a named engine keep native."""
    from rnnkit.engines import policy
    from rnnkit.engines.cpp import lstm as cpp_lstm

    torch.manual_seed(0)
    rows, T, H = cpp_lstm.FUSED_INPUT_MIN_ROWS, policy.FUSED_MIN_STEPS, 6  # B x 4H < 8192: one block of B rows
    x = torch.randn(T, rows, H, requires_grad=True)
    layer, ref = _cpp_loop_runs_with_native_results(monkeypatch, x, "input projection into each step",
                                                    num_layers=2)
    with torch.no_grad():
        assert layer.explain(x).engine == "cpp"
        assert "input projection into each step" in dict(layer.explain(x).passed_over)["native"]
    assert layer.explain(torch.randn(T, rows - 1, H)).engine == "native"
    assert layer.explain(torch.randn(T - 1, rows, H)).engine == "native"

    def engine(h, steps, grad):  # (wide rows split over the threads: `rows` rows for each)
        with torch.set_grad_enabled(grad):
            return rnnkit.LSTM(h, h).explain(torch.randn(steps, rows * torch.get_num_threads(), h)).engine

    assert engine(policy.FUSED_MAX_HIDDEN, policy.FUSED_WIDE_MIN_STEPS, True) == "cpp"
    assert engine(policy.FUSED_MAX_HIDDEN + 1, policy.FUSED_WIDE_MIN_STEPS, True) == "native"
    assert engine(policy.FUSED_NARROW_HIDDEN + 1, policy.FUSED_WIDE_MIN_STEPS - 1, True) == "native"
    assert engine(policy.FUSED_NARROW_HIDDEN, policy.FUSED_WIDE_MIN_STEPS - 1, True) == "cpp"
    assert engine(policy.FUSED_NO_GRAD_MAX_HIDDEN, T, False) == "cpp"
    assert engine(policy.FUSED_NO_GRAD_MAX_HIDDEN + 1, T, False) == "native"
    assert rnnkit.LSTM(H, H, proj_size=3).explain(x).engine == "native"
    assert ref.explain(x).engine == "native"


def test_lengths_go_to_cpp_where_torch_leaves_onednn(monkeypatch):
    """With lengths (torch then runs the packed sequence through ATen's per-step loop, not oneDNN): the cpp
    engine's loop runs (spy) with native's outputs, final states (each sequence's own last step) and
    gradients, for a small batch and a PackedSequence too; without gradients only up to
    LENGTHS_NO_GRAD_MAX_HIDDEN; a projection or a named engine keep native."""
    from torch.nn.utils.rnn import pack_padded_sequence

    from rnnkit.engines.policy import LENGTHS_NO_GRAD_MAX_HIDDEN

    torch.manual_seed(0)
    T, B, H = 7, 3, 5
    x = torch.randn(T, B, H, requires_grad=True)
    lengths = torch.tensor([7, 4, 2])
    layer, ref = _cpp_loop_runs_with_native_results(monkeypatch, x, "with lengths", lengths=lengths,
                                                    num_layers=2, bidirectional=True)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    assert layer.run(packed).engine == "cpp"
    with torch.no_grad():
        assert layer.explain(x, lengths=lengths).engine == "cpp"
        wide = LENGTHS_NO_GRAD_MAX_HIDDEN + 1
        assert rnnkit.LSTM(wide, wide).explain(torch.randn(T, B, wide), lengths=lengths).engine == "native"
    assert rnnkit.LSTM(H, H, proj_size=2).explain(x, lengths=lengths).engine == "native"
    assert ref.explain(x, lengths=lengths).engine == "native"
