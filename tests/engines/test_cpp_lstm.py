"""The cpp engine for the LSTM family: its C++ time loop equals the explicit-BPTT Function (outputs and
every gradient, over all option combinations), gradcheck of its backward, parity with the reference
engine through rnnkit.Recurrent and rnnkit.LSTM, dispatch proven by a spy, and its refusals."""
import contextlib
import itertools
import platform
import warnings

import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.cells.lstm import LSTMCell, LSTMConfig
from rnnkit.engines import cpp as cpp_engine
from rnnkit.engines.base import EngineError
from rnnkit.engines.bptt._lstm_function import LSTMBPTTFunction, LSTMMasks, _recurrent_weight_grad
from rnnkit.engines.cpp import build
from rnnkit.engines.cpp.lstm import LSTMCppFunction, _joint_weight_grads
from cpp_checks import assert_layer_matches_reference, random_valid, spy_on_apply, two_threads

# option flags: projection, peepholes, layer norm, recurrent dropout, zoneout, lengths
FLAGS = list(itertools.product([False, True], repeat=6))


def _case(proj, peep, ln, h_mask, zone, lengths, dtype=torch.float64, T=5, B=3, H=4, seed=0):
    """Inputs of the LSTM Function (all leaves that require grad) and its masks."""
    gen = torch.Generator().manual_seed(seed)
    P = 3 if proj else H

    def leaf(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype).requires_grad_()

    inputs = [leaf(T, B, 4 * H), leaf(4 * H, P), leaf(B, P), leaf(B, H), leaf(P, H) if proj else None,
              leaf(3, H) if peep else None]
    inputs += [leaf(4 * H), leaf(4 * H), leaf(H), leaf(H)] if ln else [None] * 4
    m = LSTMMasks()
    if h_mask:
        m.h_mask = (torch.rand(B, P, generator=gen) > 0.3).to(dtype) / 0.7
    valid = None
    if lengths:
        valid = random_valid(T, B, gen).to(dtype)  # (T, B, 1)
        m.valid = valid
    if zone:
        keep_h = (torch.rand(T, B, P, generator=gen) < 0.3).to(dtype)
        keep_c = (torch.rand(T, B, H, generator=gen) < 0.3).to(dtype)
        if valid is not None:
            keep_h, keep_c = 1 - valid * (1 - keep_h), 1 - valid * (1 - keep_c)
        m.keep_h, m.keep_c = keep_h, keep_c
    elif valid is not None:
        m.keep_h = m.keep_c = 1 - valid
    return inputs, m


def _run(function, inputs, masks):
    """Outputs and the gradients of a loss that weighs every output element differently."""
    outs = function.apply(*inputs, masks)
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs)
    grads = torch.autograd.grad(loss, [i for i in inputs if i is not None])
    return list(outs) + list(grads)


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "".join("PKLMZV"[i] if v else "-" for i, v in enumerate(f)))
def test_cpp_function_equals_bptt_function(flags):
    inputs, masks = _case(*flags)
    for got, want in zip(_run(LSTMCppFunction, inputs, masks), _run(LSTMBPTTFunction, inputs, masks)):
        assert_close(got, want)


@pytest.mark.parametrize("flags", [(False,) * 6, (True, True, True, True, True, True),
                                   (False, True, False, False, True, True), (False, False, True, True, False, False)])
def test_cpp_function_gradcheck(flags):
    inputs, masks = _case(*flags, T=4, B=2, H=3)
    assert torch.autograd.gradcheck(lambda *a: LSTMCppFunction.apply(*a, masks), tuple(inputs))


def test_cpp_float32_matches_float64_as_closely_as_bptt():
    """The float path uses its own exp/tanh (vectorised): its error against float64 stays at bptt's level."""
    flags = (False, True, True, False, True, True)
    truth = _run(LSTMBPTTFunction, *_case(*flags, T=7, B=5, H=37))
    errors = {}
    for fn in (LSTMCppFunction, LSTMBPTTFunction):
        got = _run(fn, *_case(*flags, dtype=torch.float32, T=7, B=5, H=37))
        errors[fn] = max(((g.double() - t).abs() / (t.abs() + 1)).max().item() for g, t in zip(got, truth))
    assert errors[LSTMCppFunction] < 1e-4
    assert errors[LSTMCppFunction] < 3 * errors[LSTMBPTTFunction] + 1e-6


@pytest.mark.parametrize("opts", [{}, {"peephole": True}, {"layer_norm": True}, {"proj_size": 3},
                                  {"peephole": True, "layer_norm": True}])
@pytest.mark.parametrize("reg", [{}, {"zoneout": 0.3}, {"dropconnect": 0.4}, {"recurrent_dropout": 0.3}])
def test_recurrent_layer_matches_reference(opts, reg):
    assert_layer_matches_reference(lambda: LSTMCell(LSTMConfig(5, 4, **opts)), reg)


def test_drop_in_lstm_with_weights_from_torch():
    torch.manual_seed(0)
    ref = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True)
    ours = rnnkit.LSTM(4, 6, num_layers=2, bidirectional=True, engine="cpp")
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(7, 3, 4)
    (y_ref, (h_ref, c_ref)), (y, (h, c)) = ref(x), ours(x)
    assert_close(y, y_ref, atol=1e-5, rtol=1e-4)
    assert_close(h, h_ref, atol=1e-5, rtol=1e-4)
    assert_close(c, c_ref, atol=1e-5, rtol=1e-4)
    y.sum().backward()
    y_ref.sum().backward()
    assert_close(ours.weight_hh_l1_reverse.grad, ref.weight_hh_l1_reverse.grad, atol=1e-4, rtol=1e-4)


# -- dispatch ---------------------------------------------------------------------------------------
@pytest.fixture
def cpp_calls(monkeypatch):
    """A spy around LSTMCppFunction.apply: proves the C++ loop ran."""
    return spy_on_apply(monkeypatch, LSTMCppFunction)


@pytest.mark.parametrize("opts,reg", [({"peephole": True}, {}), ({"layer_norm": True}, {}),
                                      ({}, {"zoneout": 0.1}), ({}, {"dropconnect": 0.2, "recurrent_dropout": 0.1})])
def test_auto_picks_cpp_for_lstms_torch_lacks(opts, reg, cpp_calls):
    layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5, **opts)), **reg)
    x = torch.randn(6, 3, 4)
    assert layer.explain(x).engine == "cpp"
    assert layer.run(x).engine == "cpp"
    assert len(cpp_calls) == 1


def test_auto_keeps_torchs_kernel_for_a_plain_lstm(cpp_calls):
    assert rnnkit.LSTM(4, 5).run(torch.randn(6, 3, 4)).engine == "native"
    # DropConnect alone is a masked W_hh, which torch's kernel takes as it is (tests/engines/test_native.py)
    assert rnnkit.LSTM(4, 5, dropconnect=0.2).run(torch.randn(6, 4, 4)).engine == "native"
    assert cpp_calls == []
    assert cpp_calls == []


def test_half_precision_goes_to_bptt_with_a_reason(cpp_calls):
    layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5, peephole=True))).to(torch.bfloat16)
    x = torch.randn(6, 3, 4, dtype=torch.bfloat16)
    explanation = layer.explain(x)
    assert explanation.engine == "bptt"
    assert "float32 and float64 only" in dict(explanation.rejected)["cpp"]
    with pytest.raises(EngineError, match="float32 and float64 only"):
        rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5)), engine="cpp").to(torch.bfloat16).run(x)
    assert cpp_calls == []


def test_probes_need_the_reference_engine():
    layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5)), engine="cpp")
    with pytest.raises(EngineError, match="probes"):
        layer.run(torch.randn(6, 3, 4), probe_grads=True)


def test_disabled_by_environment(monkeypatch, cpp_calls):
    monkeypatch.setenv("RNNKIT_CPP", "0")
    layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5, peephole=True)), engine="cpp")
    with pytest.raises(EngineError, match="RNNKIT_CPP=0"):
        layer.run(torch.randn(6, 3, 4))
    assert cpp_calls == []


def test_a_failed_build_is_explained_and_warned_once(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_CPP_CACHE", str(tmp_path))
    failed = build.KernelBuild(build.cache_dir())
    failed.error = "building the C++ kernels in /x failed (g++: not found)"
    monkeypatch.setitem(build._state, "build", failed)
    monkeypatch.setitem(cpp_engine._warned, "build", False)
    layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5, peephole=True)))
    x = torch.randn(6, 3, 4)
    with pytest.warns(RuntimeWarning, match="g\\+\\+: not found"):
        explanation = layer.explain(x)
    assert explanation.engine == "bptt"
    assert "g++: not found" in dict(explanation.rejected)["cpp"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only once
        assert layer.run(x).engine == "bptt"
    with pytest.raises(EngineError, match="g\\+\\+: not found"):
        rnnkit.Recurrent(LSTMCell(LSTMConfig(4, 5)), engine="cpp").run(x)


@pytest.mark.parametrize("flags", [(False, False, True, False, False, False), (True, True, True, True, True, True)])
def test_fused_input_layer_norm_equals_layer_norm_then_bptt(flags):
    """With ln_ih_w the Function takes x W_ih^T and normalises it itself: the same as LayerNorm + biases
    in torch followed by the bptt Function, in value and in every gradient (gradcheck too)."""
    inputs, masks = _case(*flags)
    gen = torch.Generator().manual_seed(5)
    ln_ih_w, in_bias = (torch.randn(inputs[0].shape[-1], generator=gen, dtype=torch.float64).requires_grad_()
                        for _ in range(2))
    xw = inputs[0]
    fused = list(LSTMCppFunction.apply(*inputs, masks, ln_ih_w, in_bias))
    xp = torch.nn.functional.layer_norm(xw, (xw.shape[-1],), ln_ih_w, None, 1e-5) + in_bias
    unfused = list(LSTMBPTTFunction.apply(xp, *inputs[1:], masks))
    leaves = [i for i in inputs if i is not None] + [ln_ih_w, in_bias]
    weights = [torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o) for o in fused]
    g_fused = torch.autograd.grad(sum((o * w).sum() for o, w in zip(fused, weights)), leaves)
    g_unfused = torch.autograd.grad(sum((o * w).sum() for o, w in zip(unfused, weights)), leaves)
    for got, want in zip(fused + list(g_fused), unfused + list(g_unfused)):
        assert_close(got, want)
    small, m_small = _case(*flags, T=3, B=2, H=3)
    extra = tuple(torch.randn(12, dtype=torch.float64).requires_grad_() for _ in range(2))
    assert torch.autograd.gradcheck(lambda *a: LSTMCppFunction.apply(*a[:-2], m_small, *a[-2:]),
                                    tuple(small) + extra)


@pytest.mark.parametrize("flags", [(False, False, False, False, False, False), (True, True, True, True, True, True),
                                   (False, True, True, True, True, True)])
def test_row_blocks_across_threads_give_the_same_results(flags):
    """B=8, H=256 (8 x 4H = 8192 units per step): each step runs as one block of rows per thread, the
    recurrent matmul of a block included; the results must not change."""
    with two_threads():
        inputs, masks = _case(*flags, T=3, B=8, H=256)
        for got, want in zip(_run(LSTMCppFunction, inputs, masks), _run(LSTMBPTTFunction, inputs, masks)):
            assert_close(got, want)


@pytest.mark.parametrize("ln", [False, True])
@pytest.mark.parametrize("flags", [(False, False, False, False, False, False), (True, True, False, True, True, True)])
def test_fused_input_projection_equals_projection_then_bptt(flags, ln):
    """With w_ih the Function takes the layer input x and computes x W_ih^T (+ in_bias, LayerNorm) inside:
    the same values and gradients as projecting in torch and running the bptt Function; gradcheck too."""
    flags = flags[:2] + (ln,) + flags[3:]
    inputs, masks = _case(*flags)
    T, B, G4 = inputs[0].shape
    gen = torch.Generator().manual_seed(7)

    def leaf(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()

    x, w_ih, in_bias = leaf(T, B, 5), leaf(G4, 5), leaf(G4)
    ln_ih_w = leaf(G4) if ln else None
    fused = list(LSTMCppFunction.apply(x, *inputs[1:], masks, ln_ih_w, in_bias, w_ih))
    xw = torch.nn.functional.linear(x, w_ih)
    xp = (torch.nn.functional.layer_norm(xw, (G4,), ln_ih_w, None, 1e-5) if ln else xw) + in_bias
    unfused = list(LSTMBPTTFunction.apply(xp, *inputs[1:], masks))
    leaves = [x, w_ih, in_bias] + ([ln_ih_w] if ln else []) + [i for i in inputs[1:] if i is not None]
    weights = [torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o) for o in fused]
    g_fused = torch.autograd.grad(sum((o * w).sum() for o, w in zip(fused, weights)), leaves)
    g_unfused = torch.autograd.grad(sum((o * w).sum() for o, w in zip(unfused, weights)), leaves)
    for got, want in zip(fused + list(g_fused), unfused + list(g_unfused)):
        assert_close(got, want)
    small, m_small = _case(*flags, T=3, B=2, H=3)
    extra = (leaf(3, 2, 4), leaf(12) if ln else None, leaf(12), leaf(12, 4))
    args = tuple(small[1:]) + extra
    assert torch.autograd.gradcheck(lambda x_, *a: LSTMCppFunction.apply(x_, *a[:-3], m_small, *a[-3:]),
                                    (extra[0],) + args[:-4] + extra[1:])


@pytest.mark.parametrize("opts", [{}, {"layer_norm": True, "peephole": True}, {"proj_size": 3}])
def test_inference_under_no_grad_and_inference_mode(opts):
    torch.manual_seed(0)
    layer = rnnkit.Recurrent(LSTMCell(LSTMConfig(5, 4, **opts)), num_layers=2, bidirectional=True, engine="cpp")
    ref = rnnkit.Recurrent(LSTMCell(LSTMConfig(5, 4, **opts)), num_layers=2, bidirectional=True,
                           engine="reference")
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(6, 3, 5)
    with torch.no_grad():
        want = ref.run(x).output
        got = layer.run(x).output
    assert not got.requires_grad
    assert_close(got, want, atol=1e-5, rtol=1e-4)
    with torch.inference_mode():
        assert_close(layer.run(x).output, want, atol=1e-5, rtol=1e-4)


@pytest.mark.skipif(not (torch.backends.mkl.is_available() and platform.machine() in ("x86_64", "AMD64")),
                    reason="MKL's packed sgemm comes with torch's x86 builds")
def test_float_steps_use_mkls_packed_sgemm():
    build.kernels()
    assert torch.ops.rnnkit_cpu.step_gemm_packed()


@pytest.mark.parametrize("masked", [False, True])
def test_joint_weight_gradients_equal_the_two_products(masked):
    gen = torch.Generator().manual_seed(4)
    T, B, I, P, G4 = 4, 3, 5, 2, 8
    dG, x = torch.randn(T, B, G4, generator=gen), torch.randn(T, B, I, generator=gen)
    h0, Hs = torch.randn(B, P, generator=gen), torch.randn(T, B, P, generator=gen)
    h_mask = (torch.rand(B, P, generator=gen) > 0.5).float() * 2 if masked else None
    d_ih, d_hh = _joint_weight_grads(dG, x, h0, Hs, h_mask)
    assert_close(d_ih, torch.mm(dG.reshape(T * B, G4).t(), x.reshape(T * B, I)))
    assert_close(d_hh, _recurrent_weight_grad(dG, h0, Hs, h_mask))


class _KernelSpy:
    """Stands in for ``kernels()`` in rnnkit.engines.cpp.lstm: records the fuse_input flag of every
    lstm_forward call and whether each lstm_backward got w_ih (the fused dL/dx), then calls the real op."""

    def __init__(self):
        self.real = build.kernels()
        self.forward_fused, self.backward_fused = [], []

    def lstm_forward(self, *args):
        self.forward_fused.append(args[-1])
        return self.real.lstm_forward(*args)

    def lstm_backward(self, *args):
        self.backward_fused.append(args[-1] is not None)
        return self.real.lstm_backward(*args)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def kernel_spy(monkeypatch):
    import rnnkit.engines.cpp.lstm as cpp_lstm

    spy = _KernelSpy()
    monkeypatch.setattr(cpp_lstm, "kernels", lambda: spy)
    return spy


def _fused_step_case(proj, peep, h_mask, zone, lengths, T=5, B=4, H=4, I=5, seed=3):
    """float64 leaves of the Function with w_ih and in_bias (x as the input), and its masks."""
    inputs, masks = _case(proj, peep, False, h_mask, zone, lengths, T=T, B=B, H=H, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64).requires_grad_()
    w_ih = torch.randn(4 * H, I, generator=gen, dtype=torch.float64).requires_grad_()
    in_bias = torch.randn(4 * H, generator=gen, dtype=torch.float64).requires_grad_()
    return [x] + inputs[1:], (None, in_bias, w_ih), masks


@pytest.mark.skipif(not (platform.machine() in ("x86_64", "AMD64")), reason="the panel kernels are x86")
@pytest.mark.parametrize("need", ["all", "no_x", "no_w_ih"])
@pytest.mark.parametrize("flags", [(False, False, False, False, False), (True, True, True, True, True),
                                   (False, False, True, False, True), (False, True, False, True, False)],
                         ids=lambda f: "".join("PKMZV"[i] if v else "-" for i, v in enumerate(f)))
def test_input_projection_inside_the_steps_equals_the_float64_bptt(flags, need, kernel_spy, monkeypatch):
    """fuse_input: x_t W_ih^T inside each step's product ([x_t, h_{t-1}] @ [W_ih^T; W_hh^T], float32 on the
    panel kernels) and dL/dx_t inside the backward's: outputs and every gradient as the float64 bptt
    Function on the projected input, the spy showing the fused loops ran; without x's gradient the backward
    leaves dL/dx out (and the weights still get theirs from the kept [x_t, h_{t-1}])."""
    import rnnkit.engines.cpp.lstm as cpp_lstm

    assert build.kernels().step_panels()
    monkeypatch.setattr(cpp_lstm, "FUSED_INPUT_MIN_ROWS", 1)
    inputs, (ln_ih_w, in_bias, w_ih), masks = _fused_step_case(*flags)
    if need == "no_x":
        inputs[0].requires_grad_(False)
    if need == "no_w_ih":
        w_ih.requires_grad_(False)
    xp = torch.nn.functional.linear(inputs[0], w_ih) + in_bias
    want_out = LSTMBPTTFunction.apply(xp, *inputs[1:], masks)
    f32 = [None if t is None else t.detach().float().requires_grad_(t.requires_grad) for t in
           inputs + [in_bias, w_ih]]
    m32 = LSTMMasks(**{k: (None if v is None else v.float()) for k, v in vars(masks).items()})
    got_out = LSTMCppFunction.apply(*f32[:-2], m32, None, *f32[-2:])
    assert kernel_spy.forward_fused == [True]
    leaves64 = [t for t in inputs + [in_bias, w_ih] if t is not None and t.requires_grad]
    leaves32 = [t for t in f32 if t is not None and t.requires_grad]
    weights = [torch.linspace(-1, 1, o.numel(), dtype=torch.float64).view_as(o) for o in want_out]
    g_want = torch.autograd.grad(sum((o * w).sum() for o, w in zip(want_out, weights)), leaves64)
    g_got = torch.autograd.grad(sum((o * w.float()).sum() for o, w in zip(got_out, weights)), leaves32)
    assert kernel_spy.backward_fused == [need != "no_x"]
    for got, want in zip(list(got_out) + list(g_got), list(want_out) + list(g_want)):
        assert_close(got.double(), want, atol=2e-5, rtol=2e-4)


@contextlib.contextmanager
def _threads(n):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not (platform.machine() in ("x86_64", "AMD64")), reason="the panel kernels are x86")
def test_fused_steps_on_two_row_blocks_match_the_reference(kernel_spy):
    """B = 16, H = 128 on two threads: two blocks of 8 rows (FUSED_INPUT_MIN_ROWS), so rnnkit.LSTM on cpp
    fuses the input projection into its steps; with dropout between its two layers it equals the
    reference engine (float32 tolerance); one thread keeps all 16 rows in one block, fused as well."""
    torch.manual_seed(0)
    ours = rnnkit.LSTM(16, 128, num_layers=2, engine="cpp")
    ref = rnnkit.LSTM(16, 128, num_layers=2, engine="reference")
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(6, 16, 16)
    for threads in (2, 1):
        kernel_spy.forward_fused.clear()
        with _threads(threads):
            xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
            out, (h, c) = ours(xo)
            out_r, (h_r, c_r) = ref(xr)
            (out.sum() + h.pow(2).sum()).backward()
            (out_r.sum() + h_r.pow(2).sum()).backward()
        assert kernel_spy.forward_fused == [True, True]
        assert_close(out, out_r, atol=1e-5, rtol=1e-4)
        assert_close(c, c_r, atol=1e-5, rtol=1e-4)
        assert_close(xo.grad, xr.grad, atol=1e-5, rtol=1e-4)
        for (name, p), p_r in zip(ours.named_parameters(), ref.parameters()):
            assert_close(p.grad, p_r.grad, atol=1e-4, rtol=1e-4, msg=name)
        ours.zero_grad()
        ref.zero_grad()


def test_bf16_autocast_runs_the_products_in_bf16_and_the_time_loop_in_float32(cpp_calls, one_thread):
    """Under CPU bfloat16 autocast a trained LSTM in the policy's region (row 'lstm-bf16-products') runs on cpp
    (spy): its output equals the float32 explicit-BPTT loop fed the bfloat16 product x W_ih^T, so only that
    product was rounded (a bfloat16 recurrence would be about 1e-2 off); output and state come back in
    float32; the gradients (whose whole-sequence products are bfloat16 too) are within bfloat16's rounding
    of the float32 run's and differ from them."""
    torch.manual_seed(0)
    T, B, I, H = 12, 8, 6, 8
    layer = rnnkit.LSTM(I, H)
    x = torch.randn(T, B, I, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        why = layer.explain(x)
        res = layer.run(x)
    assert why.engine == "cpp" and any("lstm-bf16-products" in r for n, r in why.passed_over if n == "native")
    assert res.engine == "cpp" and len(cpp_calls) == 1
    y, (h_T, c_T) = res.output, res.state
    assert y.dtype == h_T.dtype == c_T.dtype == torch.float32
    with torch.no_grad():
        w_ih, w_hh = layer.weight_ih_l0, layer.weight_hh_l0
        proj = torch.mm(x.reshape(T * B, I).bfloat16(), w_ih.bfloat16().t()).float().view(T, B, 4 * H)
        proj += layer.bias_ih_l0 + layer.bias_hh_l0  # (T, B, 4H)
        zero = torch.zeros(B, H)
        ref = LSTMBPTTFunction.apply(proj, w_hh, zero, zero, None, None, None, None, None, None, LSTMMasks())
    assert_close(y.detach(), ref[0], atol=1e-5, rtol=1e-5)
    assert_close(c_T.detach()[0], ref[2], atol=1e-5, rtol=1e-5)  # (layers, B, H)

    def grads(out):
        weights = torch.linspace(-1, 1, out.numel()).view_as(out)
        return torch.autograd.grad((out * weights).sum(), [x, *layer.parameters()])

    g16 = grads(y)
    y32 = layer(x)[0]
    g32 = grads(y32)
    assert not torch.equal(y32, y)
    assert_close(y, y32, atol=2e-2, rtol=2e-2)
    for a, b in zip(g16, g32):
        assert a.dtype == torch.float32
        assert (a - b).norm() <= 2e-2 * b.norm()
    assert any(not torch.equal(a, b) for a, b in zip(g16, g32))
