"""ONNX parity per cell: every cell rnnkit registers (and the LSTM with a projection), as a bidirectional
layer with lengths, exported once in one graph (one export is seconds; one per cell would
be a minute), then run by onnxruntime on another batch and sequence length than traced."""
from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime", reason="ONNX export needs pip install 'rnnkit[export]'")
pytest.importorskip("onnxscript", reason="ONNX export needs pip install 'rnnkit[export]'")

from rnnkit.export.routes import export_graph, run_exported  # noqa: E402
from rnnkit.layers import CELLS, build_layer  # noqa: E402
from rnnkit.tasks.graphs import ExportGraph  # noqa: E402

VARIANTS = {name: (name, {}) for name in CELLS if name != "rnn"}  # rnn: another name of elman
VARIANTS["lstm_projection"] = ("lstm", {"proj_size": 3})


class EveryCell(nn.Module):
    """x (T, B, 4), lengths (B,) -> per variant: output (T, B, D*O) and each final state component."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleDict({key: build_layer(name, 4, 5, 1, bidirectional=True, **opts)
                                     for key, (name, opts) in VARIANTS.items()}).eval()

    def forward(self, x, lengths):
        outs = []
        for layer in self.layers.values():
            y, state = layer(x, lengths=lengths)
            outs += [y, *(state if isinstance(state, tuple) else (state,))]
        return tuple(outs)


def output_names(model: EveryCell) -> list[str]:
    names = []
    for key, layer in model.layers.items():
        names += [f"{key}.output"] + [f"{key}.final_{n}" for n in layer.first_cell.state_names]
    return names


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(1)
    model = EveryCell()
    gen = torch.Generator().manual_seed(1)
    traced = (torch.randn(5, 2, 4, generator=gen), torch.tensor([5, 3]))
    check = (torch.randn(9, 3, 4, generator=gen), torch.tensor([9, 1, 6]))  # another T and B than traced
    names = output_names(model)
    graph = ExportGraph("cells", model, traced, check, ("x", "lengths"), tuple(names),
                        {"x": {0: "time", 1: "batch"}, "lengths": {0: "batch"}})
    path = tmp_path_factory.mktemp("onnx") / "cells.onnx"
    export_graph(graph, "onnx", path)
    got = dict(zip(names, run_exported("onnx", path, check)))
    with torch.no_grad():
        want = dict(zip(names, model(*check)))  # the engines auto picks, not the export engine
    return path, got, want


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_onnxruntime_matches_pytorch_for_every_cell(exported, variant):
    _, got, want = exported
    keys = [k for k in want if k.split(".")[0] == variant]
    assert len(keys) >= 2  # the output and at least one state component
    for key in keys:
        assert got[key].shape == want[key].shape, key
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5, msg=key)


def test_the_graph_has_symbolic_batch_and_time(exported):
    onnx = pytest.importorskip("onnx")
    path = exported[0]
    graph = onnx.load(str(path)).graph
    x = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in x[:2]] == ["time", "batch"] and x[2].dim_value == 4
    assert any(node.op_type == "Scan" for node in graph.node), "the time loop is one Scan node, not unrolled"


def test_inputs_the_graph_does_not_take_are_clear_errors(exported):
    from rnnkit.export import ExportError

    path = exported[0]
    with pytest.raises(ExportError, match=r"onnxruntime refuses inputs of shapes \[\(5, 2, 3\), \(2,\)\]"):
        run_exported("onnx", path, (torch.randn(5, 2, 3), torch.tensor([5, 3])))   # 3 features, not 4
    with pytest.raises(ExportError, match="onnxruntime refuses inputs"):
        run_exported("onnx", path, (torch.randn(5, 2, 4, dtype=torch.float64), torch.tensor([5, 3])))
