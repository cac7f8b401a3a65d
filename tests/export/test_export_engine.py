"""The export engine (the reference step loop as torch's scan): the same results as the reference engine
for every cell, never chosen by auto, pinned and restored by the exporter."""
from __future__ import annotations

import pytest
import torch

from rnnkit.engines import REGISTRY
from rnnkit.engines.base import EngineError
from rnnkit.export.pin import pinned_engine, recurrent_layers
from rnnkit.layers import CELLS, build_layer

#: every registered cell, and the LSTM variants with options (projection)
VARIANTS = [(name, {}) for name in CELLS] + [("lstm", {"proj_size": 3}), ("peephole_lstm", {"proj_size": 3})]


def _ids(v):
    return v[0] + ("+" + ",".join(f"{k}={x}" for k, x in v[1].items()) if v[1] else "")


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_export_engine_matches_the_reference_engine(variant, one_thread):
    name, options = variant
    torch.manual_seed(0)
    layer = build_layer(name, 4, 6, 2, bidirectional=True, **options).eval()
    x = torch.randn(7, 3, 4)                                              # (T, B, I)
    lengths = torch.tensor([7, 4, 1])
    with torch.no_grad():
        layer.engine = "reference"
        want = layer.run(x, lengths=lengths)
        layer.engine = "export"
        got = layer.run(x, lengths=lengths)
    assert got.engine == "export" and want.engine == "reference"
    torch.testing.assert_close(got.output, want.output)
    for g, w in zip(got.state if isinstance(got.state, tuple) else (got.state,),
                    want.state if isinstance(want.state, tuple) else (want.state,)):
        torch.testing.assert_close(g, w)


def test_auto_never_picks_the_export_engine():
    layer = build_layer("gru", 4, 6)
    for device in ("cpu", "cuda"):
        req = layer.request(torch.device(device), torch.float32, steps=5, batch=2)
        assert "export" not in REGISTRY.order(req)
    assert "export" in REGISTRY.names()


def test_the_export_engine_refuses_training_with_regularisation():
    layer = build_layer("lstm", 4, 6, 2, dropout=0.3, recurrent_dropout=0.2, engine="export")
    layer.train()
    with pytest.raises(EngineError, match="evaluation-mode layers only.*model.eval"):
        layer(torch.randn(3, 2, 4))
    layer.eval()
    out, _ = layer(torch.randn(3, 2, 4))
    assert out.shape == (3, 2, 6)


def test_pinned_engine_sets_every_layer_and_restores_it():
    model = torch.nn.ModuleDict({"a": build_layer("gru", 4, 6, engine="reference"), "b": build_layer("lstm", 6, 6)})
    with pinned_engine(model) as layers:
        assert [n for n, _ in layers] == ["a", "b"]
        assert all(layer.engine == "export" for _, layer in recurrent_layers(model))
    assert model["a"].engine == "reference" and model["b"].engine == "auto"
    with pytest.raises(RuntimeError, match="boom"):
        with pinned_engine(model):
            raise RuntimeError("boom")
    assert model["a"].engine == "reference" and model["b"].engine == "auto"


def test_one_fixed_step_runs_without_a_loop(monkeypatch):
    """A one-step call (a generation step graph) is the step itself: scan is not called, results equal."""
    import rnnkit.engines.export as export_engine

    layer = build_layer("lstm", 4, 6, 2).eval()
    x, state = torch.randn(1, 3, 4), (torch.randn(2, 3, 6), torch.randn(2, 3, 6))
    with torch.no_grad():
        want = layer.run(x, state)
        layer.engine = "export"
        monkeypatch.setattr(export_engine, "_scan", lambda: pytest.fail("a one-step call must not loop"))
        got = layer.run(x, state)
    assert got.engine == "export"
    torch.testing.assert_close(got.output, want.output)
    torch.testing.assert_close(got.state, want.state)
