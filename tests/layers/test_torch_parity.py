"""rnnkit.RNN/LSTM/GRU against torch.nn with the same state_dict: outputs, final states, gradients."""
import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit

LAYERS = {
    "lstm": (rnnkit.LSTM, torch.nn.LSTM),
    "gru": (rnnkit.GRU, torch.nn.GRU),
    "rnn_tanh": (rnnkit.RNN, torch.nn.RNN),
    "rnn_relu": (rnnkit.RNN, torch.nn.RNN),
}
I, H, T, B = 3, 5, 6, 4


def make_pair(kind, num_layers, bidirectional, batch_first, proj, dtype, engine, from_torch=True):
    ours_cls, torch_cls = LAYERS[kind]
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    if kind == "lstm":
        kw["proj_size"] = proj
    if kind.startswith("rnn"):
        kw["nonlinearity"] = kind.split("_")[1]
    ref = torch_cls(I, H, **kw).to(dtype)
    ours = ours_cls(I, H, engine=engine, **kw).to(dtype)
    if from_torch:
        ours.load_state_dict(ref.state_dict())
    else:
        ref.load_state_dict(ours.state_dict())
    return ours, ref


def as_tuple(s):
    return s if isinstance(s, tuple) else (s,)


def grads(module, x):
    return [x.grad] + [p.grad for _, p in sorted(module.state_dict(keep_vars=True).items())]


CASES = list(itertools.product(["lstm", "gru", "rnn_tanh", "rnn_relu"], [1, 2], [False, True]))


@pytest.mark.parametrize("engine", ["auto", "reference"])
@pytest.mark.parametrize("kind,num_layers,bidirectional", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_padded_parity_with_gradients(kind, num_layers, bidirectional, dtype, engine):
    torch.manual_seed(0)
    batch_first = num_layers == 2
    proj = 2 if kind == "lstm" and bidirectional else 0
    ours, ref = make_pair(kind, num_layers, bidirectional, batch_first, proj, dtype, engine,
                          from_torch=bidirectional)
    shape = (B, T, I) if batch_first else (T, B, I)
    x1 = torch.randn(shape, dtype=dtype, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    y1, s1 = ours(x1)
    y2, s2 = ref(x2)
    torch.testing.assert_close(y1, y2)
    for a, b in zip(as_tuple(s1), as_tuple(s2)):
        torch.testing.assert_close(a, b)
    w = torch.randn_like(y1)
    ((y1 * w).sum() + sum(s.sum() for s in as_tuple(s1))).backward()
    ((y2 * w).sum() + sum(s.sum() for s in as_tuple(s2))).backward()
    for g1, g2 in zip(grads(ours, x1), grads(ref, x2)):
        torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("engine", ["auto", "native", "reference"])  # auto: cpp for these CPU calls
@pytest.mark.parametrize("kind,num_layers,bidirectional", CASES)
def test_packed_and_lengths_parity(kind, num_layers, bidirectional, engine):
    torch.manual_seed(1)
    ours, ref = make_pair(kind, num_layers, bidirectional, False, 0, torch.float64, engine)
    x = torch.randn(T, B, I, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4, 1])
    hx_shape = (num_layers * (2 if bidirectional else 1), B, H)
    hx = torch.randn(hx_shape, dtype=torch.float64)
    hx = (hx, torch.randn(hx_shape, dtype=torch.float64)) if kind == "lstm" else hx
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    y_ref_p, s_ref = ref(packed, hx)
    y_ref, _ = pad_packed_sequence(y_ref_p)
    # packed in, packed out
    y_p, s_p = ours(packed, hx)
    assert isinstance(y_p, torch.nn.utils.rnn.PackedSequence)
    torch.testing.assert_close(y_p.data, y_ref_p.data)
    torch.testing.assert_close(y_p.batch_sizes, y_ref_p.batch_sizes)
    # padded batch with lengths=
    y_l, s_l = ours(x, hx, lengths=lengths)
    torch.testing.assert_close(y_l[: y_ref.shape[0]], y_ref)
    assert torch.all(y_l[lengths.max():] == 0)
    for a, b, c in zip(as_tuple(s_p), as_tuple(s_l), as_tuple(s_ref)):
        torch.testing.assert_close(a, c)
        torch.testing.assert_close(b, c)


def test_lengths_gradients_match_packed_torch():
    torch.manual_seed(2)
    ours, ref = make_pair("lstm", 2, True, False, 0, torch.float64, "reference")
    x = torch.randn(T, B, I, dtype=torch.float64)
    lengths = torch.tensor([3, 6, 1, 5])
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, (h1, c1) = ours(x1, lengths=lengths)
    y2p, (h2, c2) = ref(pack_padded_sequence(x2, lengths, enforce_sorted=False))
    y2, _ = pad_packed_sequence(y2p, total_length=T)
    (y1.sum() + h1.sum() + c1.sum()).backward()
    (y2.sum() + h2.sum() + c2.sum()).backward()
    for g1, g2 in zip(grads(ours, x1), grads(ref, x2)):
        torch.testing.assert_close(g1, g2)


def test_state_dict_keys_and_attributes_match_torch():
    ours = rnnkit.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2)
    ref = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert ours._flat_weights_names == ref._flat_weights_names
    assert ours.weight_hh_l1_reverse.shape == ref.weight_hh_l1_reverse.shape
    with pytest.raises(AttributeError):
        ours.weight_hh_l2


def test_torch_loads_rnnkit_weights_strictly():
    ours = rnnkit.GRU(I, H, num_layers=2)
    ref = torch.nn.GRU(I, H, num_layers=2)
    ref.load_state_dict(ours.state_dict(), strict=True)
    ours2 = rnnkit.GRU(I, H, num_layers=2)
    ours2.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(T, B, I)
    torch.testing.assert_close(ours2(x)[0], ours(x)[0])


def test_unbatched_input_matches_torch():
    ours, ref = make_pair("lstm", 1, True, False, 0, torch.float32, "auto")
    x = torch.randn(T, I)
    y1, (h1, c1) = ours(x)
    y2, (h2, c2) = ref(x)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(h1, h2)
    assert h1.shape == (2, H)


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    ours = rnnkit.LSTM(I, H, num_layers=2, dropout=0.5)
    x = torch.randn(T, B, I)
    ours.eval()
    a, b = ours(x)[0], ours(x)[0]
    torch.testing.assert_close(a, b)
    ours.train()
    assert not torch.allclose(ours(x)[0], ours(x)[0])
