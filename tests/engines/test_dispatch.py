"""Dispatch is explicit: auto picks the first eligible engine, forcing an ineligible one says why,
explain() lists the reasons, and the chosen engine actually runs."""
import pytest
import torch

import rnnkit
from rnnkit.engines import EngineError
from rnnkit.engines.native import NativeEngine
from rnnkit.engines.reference import ReferenceEngine
from rnnkit.layers import build_layer


def test_auto_runs_native_for_torch_lstm(monkeypatch):
    calls = []
    real = NativeEngine.run_stack
    monkeypatch.setattr(NativeEngine, "run_stack", lambda self, *a: calls.append(1) or real(self, *a))
    layer = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True)
    res = layer.run(torch.randn(5, 2, 3))  # (with lengths the CPU call goes to cpp: test_native.py)
    assert res.engine == "native" and calls == [1]


def test_forced_reference_runs_reference(monkeypatch):
    calls = []
    real = ReferenceEngine.run_direction
    monkeypatch.setattr(ReferenceEngine, "run_direction", lambda self, *a: calls.append(1) or real(self, *a))
    layer = rnnkit.GRU(3, 4, num_layers=2, engine="reference")
    assert layer.run(torch.randn(5, 2, 3)).engine == "reference"
    assert len(calls) == 2


def test_forcing_native_on_a_peephole_lstm_says_why():
    layer = build_layer("peephole_lstm", 3, 4, engine="native")
    with pytest.raises(EngineError, match="cannot run this lstm layer: torch has no peephole LSTM"):
        layer(torch.randn(5, 2, 3))


def test_forcing_native_with_all_states_says_why():
    layer = rnnkit.LSTM(3, 4, engine="native")
    with pytest.raises(EngineError, match="every step's full state"):
        layer.run(torch.randn(5, 2, 3), all_states=True)


def test_explain_lists_reasons_for_faster_engines():
    layer = build_layer("gru_cho", 3, 4)
    text = str(layer.explain(torch.randn(5, 2, 3), probe_grads=True))
    assert "engine 'reference' runs" in text
    assert "native: cannot run: torch's GRU applies the reset gate after the matmul" in text
    assert "bptt: cannot run: gradient probes" in text
    assert "passed over" not in text  # nothing that can run was passed over


def test_explain_reports_native_for_plain_lstm():
    e = rnnkit.LSTM(3, 4).explain(torch.randn(5, 2, 3))
    assert e.engine == "native"
    assert "native" not in [name for name, _ in e.rejected]
    assert all(name == "scan" for name, _ in e.rejected)  # only the min-RNN scan ranks above it


def test_zoneout_in_eval_still_leaves_native():
    layer = rnnkit.LSTM(3, 4, zoneout=0.1).eval()
    assert layer.explain(torch.randn(5, 2, 3)).engine != "native"


def test_dropconnect_in_eval_may_use_native():
    layer = rnnkit.LSTM(3, 4, dropconnect=0.3).eval()
    assert layer.explain(torch.randn(5, 2, 3)).engine == "native"


def test_a_subclass_with_its_own_equations_runs_on_reference_only():
    from rnnkit.cells import LSTMCell, LSTMConfig

    class DoubledLSTM(LSTMCell):
        def recur(self, xp_t, state, ctx):
            h, c = super().recur(xp_t, state, ctx)
            return (2 * h, c)

    layer = rnnkit.Recurrent(DoubledLSTM(LSTMConfig(3, 4)))
    e = layer.explain(torch.randn(5, 2, 3))
    assert e.engine == "reference"
    assert dict(e.rejected)["native"].startswith("DoubledLSTM overrides LSTMCell.recur")
    with pytest.raises(EngineError, match="overrides LSTMCell.recur"):
        rnnkit.Recurrent(DoubledLSTM(LSTMConfig(3, 4)), engine="native")(torch.randn(5, 2, 3))
    # the doubled maths really ran
    plain = rnnkit.Recurrent(LSTMCell(LSTMConfig(3, 4)), engine="reference")
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(1, 2, 3)
    torch.testing.assert_close(layer(x)[0], 2 * plain(x)[0])


def test_a_subclass_that_keeps_the_equations_stays_fast():
    from rnnkit.cells import LSTMCell, LSTMConfig

    class NamedLSTM(LSTMCell):
        nickname = "mine"

    e = rnnkit.Recurrent(NamedLSTM(LSTMConfig(3, 4, forget_bias=0.0))).explain(torch.randn(5, 2, 3))
    assert e.engine == "native"


def test_cpu_prefers_cpp_then_bptt_for_gru_and_rnn_and_native_for_lstm(monkeypatch):
    x = torch.randn(5, 2, 3)
    assert rnnkit.GRU(3, 4).explain(x).engine == "cpp"
    assert rnnkit.RNN(3, 4, nonlinearity="relu").explain(x).engine == "cpp"
    assert rnnkit.LSTM(3, 4).explain(x).engine == "native"
    # what cpp and bptt cannot serve goes to native, with the reasons listed
    e = rnnkit.GRU(3, 4).half().explain(x.half())
    assert e.engine == "native" and dict(e.rejected)["bptt"] and dict(e.rejected)["cpp"]
    # without the C++ kernels, bptt
    monkeypatch.setenv("RNNKIT_CPP", "0")
    assert rnnkit.GRU(3, 4).explain(x).engine == "bptt"
    assert rnnkit.RNN(3, 4).explain(x).engine == "bptt"
