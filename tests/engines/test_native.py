"""The native engine with DropConnect: the layer's mask is applied to W_hh and the masked weight goes to
torch's fused kernel (AWD-LSTM's WeightDrop). Under the same seed the masks are the ones the direction
engines draw, so native equals the reference loop exactly; gradients reach W_hh through the mask."""
import pytest
import torch

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
    x = torch.randn(5, 2, 3, dtype=F64)
    _, _, _, grads = _run(layer, "native", x)
    torch.manual_seed(3)  # the seed _run set: the layer's mask is the first draw after it
    mask = bernoulli_keep(layer.cells[0].weight_hh.shape, 0.5, "cpu", F64)
    assert (mask == 0).any() and (mask != 0).any()
    assert torch.all(grads["cells.0.weight_hh"][mask == 0] == 0)
    assert torch.any(grads["cells.0.weight_hh"][mask != 0] != 0)


def test_auto_sends_a_dropconnect_lstm_to_native_on_cpu_and_eval_needs_no_mask():
    layer = build_layer("lstm", 3, 4, dropconnect=0.3).train()
    x = torch.randn(5, 2, 3)
    assert layer.explain(x).engine == "native"
    layer.eval()
    with torch.no_grad():
        out_eval = layer(x)[0]
        layer.regularization.dropconnect = 0.0
        torch.testing.assert_close(layer(x)[0], out_eval)
