"""One time step without gradients on the CPU (generation, beam search) under engine="auto": the cells
torch.nn lacks run the reference engine's cell step instead of a whole-sequence engine (cpp, bptt).
A spy proves the reference engine ran; its outputs, carried token by token, equal the compiled
engine's; every other call (gradients kept, more than one step, a named engine) keeps its engine."""
import pytest
import torch
from torch.testing import assert_close

from rnnkit.engines.reference import ReferenceEngine
from rnnkit.engines import policy
from rnnkit.engines.registry import REGISTRY
from rnnkit.layers import build_layer

#: (build_layer cell, options, the engine these calls took before, and take with gradients)
VARIANTS = [("lnlstm", {}, "cpp"), ("peephole_lstm", {}, "cpp"), ("lstm", {"zoneout": 0.1}, "cpp"),
            ("gru_cho", {}, "cpp"), ("lngru", {}, "cpp"), ("elman", {"activation": "sigmoid"}, "cpp"),
            ("jordan", {}, "cpp"), ("indrnn", {}, "bptt")]


@pytest.fixture
def reference_calls(monkeypatch):
    calls = []
    real = ReferenceEngine.run_direction
    monkeypatch.setattr(ReferenceEngine, "run_direction", lambda self, *a: calls.append(1) or real(self, *a))
    return calls


def _pair(cell, options, engine):
    torch.manual_seed(0)
    auto = build_layer(cell, 5, 6, num_layers=2, **options).eval()
    forced = build_layer(cell, 5, 6, num_layers=2, engine=engine, **options).eval()
    forced.load_state_dict(auto.state_dict())
    return auto, forced


@pytest.mark.parametrize("cell,options,compiled", VARIANTS)
def test_token_by_token_without_gradients_runs_the_reference_step(cell, options, compiled, reference_calls):
    auto, forced = _pair(cell, options, compiled)
    x = torch.randn(4, 3, 5)
    state_a = state_f = None
    with torch.no_grad():
        for t in range(x.shape[0]):
            assert auto.run(x[t:t + 1]).engine == "reference"
            out_a, state_a = auto(x[t:t + 1], state_a)
            out_f, state_f = forced(x[t:t + 1], state_f)
            assert_close(out_a, out_f, rtol=1e-5, atol=1e-6)
            assert_close(state_a, state_f, rtol=1e-5, atol=1e-6)
    assert len(reference_calls) == 4 * 2 * 2  # one per layer, token and call (run() and the forward)


@pytest.mark.parametrize("cell,options,compiled", VARIANTS)
def test_other_calls_keep_their_engine(cell, options, compiled, reference_calls):
    auto, _ = _pair(cell, options, compiled)
    one = torch.randn(1, 3, 5)
    assert auto.run(one).engine == compiled  # gradients kept (training through single steps)
    with torch.no_grad():
        assert auto.run(torch.randn(2, 3, 5)).engine == compiled  # a sequence
        named = build_layer(cell, 5, 6, num_layers=2, engine=compiled, **options)
        assert named.run(one).engine == compiled  # a named engine runs as asked
        auto(torch.randn(2, 3, 5))
    assert reference_calls == []


def test_explain_says_why_the_compiled_engines_step_aside():
    layer = build_layer("lnlstm", 4, 4)
    with torch.no_grad():
        text = str(layer.explain(torch.randn(1, 2, 4)))
    assert "engine 'reference' runs" in text
    assert ("cpp: can run; passed over: reference chosen over cpp: one step without gradients on the CPU"
            in text)
    assert "[policy row 'one-step-reference']" in text
    assert "bptt: can run; passed over: reference chosen over bptt" in text


def test_torch_nn_cells_keep_their_single_step_routes():
    with torch.no_grad():
        assert build_layer("lstm", 4, 4).run(torch.randn(1, 2, 4)).engine == "native"
        gru = build_layer("gru", 4, 4)
        assert gru.run(torch.randn(1, 2, 4)).engine == "cpp"  # its single-step kernel
        req_layer = build_layer("gru", 4, 4, zoneout=0.1)  # no kernel for zoneout: the reference step
        assert req_layer.run(torch.randn(1, 2, 4)).engine == "reference"


def test_the_preference_is_for_auto_only():
    layer = build_layer("jordan", 4, 4)
    req = layer.request("cpu", torch.float32, steps=1, batch=2)
    row = next(r for r in policy.POLICY if r.name == "one-step-reference")
    assert row.condition(req) is not None
    assert REGISTRY.choose(req, "auto")[0].name == "reference"
    assert REGISTRY.choose(req, "bptt")[0].name == "bptt"  # forced: the preference does not refuse it
    assert REGISTRY.choose(req, "cpp")[0].name == "cpp"
    req.needs_grad = True
    assert row.condition(req) is None
    assert REGISTRY.choose(req, "auto")[0].name == "cpp"
