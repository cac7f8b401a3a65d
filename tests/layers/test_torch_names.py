"""rnnkit.LSTM/GRU/RNN name their parameters as torch.nn does: named_parameters() names and order,
identity with attribute access, state_dict keys, loading torch.nn's state_dict, .to() and assignment."""
import itertools

import pytest
import torch

import rnnkit

CONFIGS = list(itertools.product(["lstm", "lstm_proj", "gru", "rnn"], [1, 2], [False, True], [True, False]))


def _pair(kind, layers, bidi, bias):
    kw = dict(num_layers=layers, bidirectional=bidi, bias=bias)
    if kind == "lstm_proj":
        return rnnkit.LSTM(3, 4, proj_size=2, **kw), torch.nn.LSTM(3, 4, proj_size=2, **kw)
    ours, theirs = {"lstm": (rnnkit.LSTM, torch.nn.LSTM), "gru": (rnnkit.GRU, torch.nn.GRU),
                    "rnn": (rnnkit.RNN, torch.nn.RNN)}[kind]
    return ours(3, 4, **kw), theirs(3, 4, **kw)


@pytest.mark.parametrize("kind,layers,bidi,bias", CONFIGS)
def test_names_order_and_identity_match_torch_nn(kind, layers, bidi, bias):
    ours, theirs = _pair(kind, layers, bidi, bias)
    names = [n for n, _ in ours.named_parameters()]
    assert names == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    params = dict(ours.named_parameters())
    assert all(params[n] is getattr(ours, n) for n in names)
    assert [id(p) for p in ours.parameters()] == [id(p) for p in params.values()]
    assert len(list(ours.parameters())) == len(names)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0])
    outer = torch.nn.Sequential(ours)
    assert [n for n, _ in outer.named_parameters()] == [f"0.{n}" for n in names]


def test_conversion_assignment_and_assign_loading_keep_one_tensor_per_name():
    lstm = rnnkit.LSTM(3, 4, num_layers=2)
    lstm.double()
    assert lstm.weight_hh_l1.dtype == torch.float64 and lstm.weight_hh_l1 is lstm.cells[1].weight_hh
    new = torch.nn.Parameter(torch.zeros_like(lstm.weight_hh_l0))
    lstm.weight_hh_l0 = new
    assert lstm.cells[0].weight_hh is new and dict(lstm.named_parameters())["weight_hh_l0"] is new
    theirs = torch.nn.LSTM(3, 4, num_layers=2).double()
    lstm.load_state_dict(theirs.state_dict(), assign=True)
    assert lstm.weight_ih_l0 is lstm.cells[0].weight_ih
    torch.testing.assert_close(lstm.weight_ih_l0, theirs.weight_ih_l0)


def test_init_and_weight_decay_by_name_reach_the_cells():
    lstm = rnnkit.LSTM(3, 4)
    for name, p in lstm.named_parameters():
        if name.startswith("weight_hh"):
            torch.nn.init.orthogonal_(p)
        elif name.startswith("bias"):
            torch.nn.init.zeros_(p)
    w = lstm.cells[0].weight_hh
    torch.testing.assert_close(w.T @ w, torch.eye(4), atol=1e-5, rtol=0)  # (4H, H): orthonormal columns
    assert not lstm.cells[0].bias_ih.any()
    decay = [p for n, p in lstm.named_parameters() if "weight" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": [p for n, p in lstm.named_parameters() if "bias" in n], "weight_decay": 0}])
    lstm(torch.randn(2, 1, 3))[0].sum().backward()
    opt.step()
