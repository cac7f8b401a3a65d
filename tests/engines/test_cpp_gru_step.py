"""The cpp engine's single-step GRU kernel (csrc/step.cpp): one step without gradients, what generation
and beam search do. Its maths against torch's GRU cell; the dispatch that sends such calls to it (and
keeps every other one-step call where it was), proved by a spy on the kernel; token-by-token
generation equal to torch.nn.GRU over the whole sequence."""
import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.engines.cpp import build
from rnnkit.engines.cpp import gru as cpp_gru


@pytest.fixture
def ops():
    try:
        return build.kernels()
    except build.CppBuildError as exc:  # pragma: no cover - CI has a compiler
        pytest.skip(str(exc))


@pytest.fixture
def step_calls(monkeypatch, ops):
    """Each call of the single-step kernel, recorded (its input's shape)."""
    calls = []

    class Spy:
        def __getattr__(self, name):
            return getattr(ops, name)

        def gru_step(self, x, *rest):
            calls.append(tuple(x.shape))
            return ops.gru_step(x, *rest)

    monkeypatch.setattr(cpp_gru, "kernels", lambda: Spy())
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("B,I,H,bias", [(1, 7, 5, True), (3, 4, 9, True), (2, 130, 129, False), (1, 256, 256, True)])
def test_gru_step_equals_torchs_gru_cell(ops, dtype, B, I, H, bias):
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(I, H, bias=bias).to(dtype)
    x, h = torch.randn(B, I, dtype=dtype), torch.randn(B, H, dtype=dtype)
    with torch.no_grad():
        want = cell(x, h)
        got = ops.gru_step(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    assert_close(got, want, **tol)


def test_gru_step_rejects_mismatched_shapes(ops):
    w = torch.randn(9, 4)
    with pytest.raises(RuntimeError, match="w_ih \\(3H, I\\)"):
        ops.gru_step(torch.randn(1, 5), torch.randn(1, 3), w, torch.randn(9, 3), None, None)


def test_one_step_without_gradients_takes_the_single_step_kernel(step_calls):
    torch.manual_seed(0)
    layer = rnnkit.GRU(6, 8, num_layers=2)
    x = torch.randn(1, 3, 6)
    with torch.no_grad():
        assert layer.explain(x).engine == "cpp"
        out, h = layer(x)
    assert step_calls == [(3, 6), (3, 8)]  # one kernel call per layer
    ref = torch.nn.GRU(6, 8, num_layers=2)
    ref.load_state_dict(layer.state_dict())
    with torch.no_grad():
        want_out, want_h = ref(x)
    assert_close(out, want_out, rtol=1e-5, atol=1e-6)
    assert_close(h, want_h, rtol=1e-5, atol=1e-6)


def test_one_step_with_gradients_stays_on_torchs_cell_functions(step_calls):
    layer = rnnkit.GRU(6, 8)
    x = torch.randn(1, 2, 6)
    explanation = layer.explain(x)
    assert explanation.engine == "native"
    out, _ = layer(x)
    out.sum().backward()
    assert step_calls == [] and layer.weight_hh_l0.grad is not None


def test_native_says_why_it_left_the_step(ops):
    layer = rnnkit.GRU(6, 8)
    with torch.no_grad():
        text = str(layer.explain(torch.randn(1, 2, 6)))
    assert "single-step kernel" in text


@pytest.mark.parametrize("kw", [dict(engine="native"), dict(bidirectional=False, bias=False)])
def test_forced_engine_and_other_configurations(step_calls, kw):
    """A forced engine is obeyed; a bias-free GRU takes the kernel too (biases are optional)."""
    layer = rnnkit.GRU(6, 8, **kw)
    with torch.no_grad():
        layer(torch.randn(1, 2, 6))
    assert (step_calls == []) == (kw.get("engine") == "native")


def test_longer_calls_and_regularised_training_keep_their_engines(step_calls):
    """More than one step keeps the time-loop engines; a training-mode step with DropConnect (its mask
    is drawn per call) stays on native, whose route applies it."""
    layer = rnnkit.GRU(6, 8)
    dropped = rnnkit.Recurrent(rnnkit.cells.GRUCell.from_options(6, 8), dropconnect=0.3).train()
    with torch.no_grad():
        layer(torch.randn(4, 2, 6))
        assert dropped.explain(torch.randn(1, 2, 6)).engine == "native"
        dropped(torch.randn(1, 2, 6))
    assert step_calls == []


def test_token_by_token_generation_equals_the_whole_sequence(step_calls):
    """Generation carries the state one token at a time through the kernel; torch.nn.GRU over the whole
    sequence at once gives the same outputs and final state."""
    torch.manual_seed(1)
    layer = rnnkit.GRU(5, 7, num_layers=2, batch_first=True)
    ref = torch.nn.GRU(5, 7, num_layers=2, batch_first=True)
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(2, 9, 5)
    outs, h = [], None
    with torch.no_grad():
        for t in range(9):
            y, h = layer(x[:, t:t + 1], h)
            outs.append(y)
        want_out, want_h = ref(x)
    assert len(step_calls) == 18
    assert_close(torch.cat(outs, 1), want_out, rtol=1e-5, atol=1e-6)
    assert_close(h, want_h, rtol=1e-5, atol=1e-6)
