"""What cannot be exported is an error that says what and why: a cell whose step branches on data (named,
with its layer), a layer left in training mode, a graph traced at sizes torch.export would specialise."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit.cells.gru import GRUCell
from rnnkit.layers import Recurrent, build_layer
from rnnkit.tasks.graphs import ExportGraph

pytest.importorskip("onnxscript", reason="ONNX export needs pip install 'rnnkit[export]'")

from rnnkit.export import ExportError  # noqa: E402
from rnnkit.export.command import export_one  # noqa: E402


class BranchingGRU(GRUCell):
    """A user's GRU whose step takes a Python branch on the values of its state: no graph can hold that."""

    def recur(self, xp_t, state, ctx):
        new = super().recur(xp_t, state, ctx)
        if float(new[0].sum()) > 0:
            return (new[0] * 0.5,)
        return new


class Wrap(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return (self.layer(x)[0],)


def graph_of(layer, name="g"):
    return ExportGraph(name, Wrap(layer), (torch.randn(4, 2, 3),), (torch.randn(6, 3, 3),), ("x",), ("y",),
                       {"x": {0: "time", 1: "batch"}})


def test_a_cell_that_cannot_be_traced_is_named(tmp_path, one_thread):
    layer = Recurrent(BranchingGRU(GRUCell.config_class(input_size=3, hidden_size=4))).eval()
    with pytest.raises(ExportError, match=r"graph g cannot be exported to onnx: the BranchingGRU cell \(gru\) of "
                                          r"layer layer cannot be traced"):
        export_one(graph_of(layer), "onnx", tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_a_layer_in_training_mode_with_dropout_is_refused_by_name(tmp_path):
    layer = build_layer("lstm", 3, 4, 2, dropout=0.2, recurrent_dropout=0.1)  # training mode (a new module)
    with pytest.raises(ExportError, match="graph g: layer layer .*LSTMCell, lstm cell.*evaluation-mode layers only"):
        export_one(graph_of(layer), "onnx", tmp_path)


def test_graph_examples_must_not_be_specialised():
    layer = build_layer("gru", 3, 4).eval()
    with pytest.raises(ValueError, match=r"input x axis 1 \(batch\) must be traced with a size of at least 2, got 1"):
        ExportGraph("g", Wrap(layer), (torch.randn(4, 1, 3),), (torch.randn(6, 3, 3),), ("x",), ("y",),
                    {"x": {0: "time", 1: "batch"}})
    with pytest.raises(ValueError, match=r"axis 0 \(time\) must be traced with a size of at least 6 that is a "
                                         r"multiple of 3, got 4"):
        ExportGraph("g", Wrap(layer), (torch.randn(4, 2, 3),), (torch.randn(6, 3, 3),), ("x",), ("y",),
                    {"x": {0: "time", 1: "batch"}}, multiples={"time": 3})
    with pytest.raises(ValueError, match="2 input names but 1 check_inputs"):
        ExportGraph("g", Wrap(layer), (torch.randn(4, 2, 3), torch.zeros(2)), (torch.randn(6, 3, 3),), ("x", "n"),
                    ("y",))
    with pytest.raises(ValueError, match=r"dynamic axes for unknown inputs \['z'\]"):
        ExportGraph("g", Wrap(layer), (torch.randn(4, 2, 3),), (torch.randn(6, 3, 3),), ("x",), ("y",), {"z": {0: "t"}})


def test_crf_decode_tags_is_viterbi_as_tensors():
    """The tagger's exported decoding: the same paths as CRF.decode, one-token rows included."""
    from rnnkit.modules.crf import CRF

    torch.manual_seed(0)
    crf = CRF(5)
    with torch.no_grad():
        for p in (crf.trans, crf.start, crf.end):
            p.normal_()
    crf.constrain(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "bio")
    for lengths in ([1, 1], [6, 3, 1], [9, 9, 2, 5]):
        T = max(lengths)
        em = torch.randn(len(lengths), T, 5)
        mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
        tags = crf.decode_tags(em, mask)
        assert tags.shape == (len(lengths), T)
        assert [tags[b, :n].tolist() for b, n in enumerate(lengths)] == crf.decode(em, mask)
