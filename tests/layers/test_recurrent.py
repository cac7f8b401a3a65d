"""The generic layer: every cell, lengths, chunked == whole, per-step states, probes, bad input."""
import pytest
import torch

import rnnkit
from rnnkit.layers import build_layer
from rnnkit.layers.sequence import reverse_padded

CELL_NAMES = ["rnn", "jordan", "lstm", "peephole_lstm", "lnlstm", "gru", "gru_cho", "lngru", "indrnn",
              "mingru", "minlstm"]
I, H, T, B = 3, 4, 7, 3


def as_tuple(s):
    return s if isinstance(s, tuple) else (s,)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lengths_equal_running_each_sequence_alone(cell, bidirectional):
    torch.manual_seed(0)
    layer = build_layer(cell, I, H, num_layers=2, bidirectional=bidirectional, engine="reference").double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5])
    y, state = layer(x, lengths=lengths)
    for b in range(B):
        L = int(lengths[b])
        yb, sb = layer(x[:L, b:b + 1])
        torch.testing.assert_close(y[:L, b:b + 1], yb)
        assert torch.all(y[L:, b] == 0)
        for full, alone in zip(as_tuple(state), as_tuple(sb)):
            torch.testing.assert_close(full[:, b:b + 1], alone)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_chunks_with_carried_state_equal_whole_sequence(cell):
    torch.manual_seed(1)
    layer = build_layer(cell, I, H, num_layers=2, engine="auto").double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    y, s = layer(x)
    y1, s1 = layer(x[:3])
    y2, s2 = layer(x[3:], rnnkit.detach_state(s1))
    torch.testing.assert_close(torch.cat([y1, y2]), y)
    for a, b in zip(as_tuple(s2), as_tuple(s)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_step_by_step_equals_sequence(cell):
    torch.manual_seed(2)
    layer = build_layer(cell, I, H, engine="reference")
    c = layer.cells[0]
    x = torch.randn(T, B, I)
    y, _ = layer(x)
    state = c.initial_state(B)
    for t in range(T):
        out, state = c.step(x[t], state)
        torch.testing.assert_close(out, y[t])


def test_all_states_give_every_layers_h_and_c():
    torch.manual_seed(3)
    layer = rnnkit.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(B, T, I)
    res = layer.run(x, all_states=True)
    assert len(res.states) == 4 and set(res.states[0]) == {"h", "c"}
    assert res.states[3]["c"].shape == (B, T, H)
    h_n, c_n = res.state
    torch.testing.assert_close(res.states[2]["h"][:, -1], h_n[2])   # layer 1 forward ends at T-1
    torch.testing.assert_close(res.states[3]["c"][:, 0], c_n[3])    # layer 1 reverse ends at t=0
    torch.testing.assert_close(torch.cat([res.states[2]["h"], res.states[3]["h"]], -1), res.output)


def test_probe_gradients_are_dloss_dh_t():
    torch.manual_seed(4)
    layer = build_layer("gru", I, H, engine="reference")
    x = torch.randn(T, B, I)
    res = layer.run(x, probe_grads=True)
    loss = res.output[-1].pow(2).sum()
    loss.backward()
    g = res.probes[0].grad  # (T, B, H)
    # the last step's gradient is the direct derivative 2*h_T
    torch.testing.assert_close(g[-1], 2 * res.output[-1].detach())
    # earlier steps receive gradient only through the recurrence and it is non-zero
    assert g[0].abs().sum() > 0
    assert res.engine == "reference"


def test_record_gates_shapes_and_ranges():
    layer = build_layer("lstm", I, H, bidirectional=True)
    res = layer.run(torch.randn(T, B, I), record_gates=True)
    assert set(res.gates[1]) == {"i", "f", "g", "o"}
    f = res.gates[1]["f"]
    assert f.shape == (T, B, H) and f.min() >= 0 and f.max() <= 1


def test_reverse_padded_is_an_involution_within_lengths():
    x = torch.arange(12.0).reshape(4, 3, 1)
    lengths = torch.tensor([4, 2, 1])
    r = reverse_padded(x, lengths)
    assert r[:, 1, 0].tolist() == [4.0, 1.0, 7.0, 10.0]
    torch.testing.assert_close(reverse_padded(r, lengths), x)


def test_zoneout_eval_uses_expectation_and_dropconnect_only_trains():
    torch.manual_seed(5)
    layer = build_layer("lstm", I, H, zoneout=0.3, dropconnect=0.5, engine="reference")
    x = torch.randn(T, B, I)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0])
    plain = build_layer("lstm", I, H, engine="reference")
    plain.load_state_dict(layer.state_dict())
    plain.eval()
    assert not torch.allclose(layer(x)[0], plain(x)[0])  # zoneout mixes in eval too
    layer.train()
    assert not torch.allclose(layer(x)[0], layer(x)[0])


def test_learned_initial_state_per_layer_and_direction():
    layer = build_layer("gru", I, H, num_layers=2, bidirectional=True, learn_initial_state=True)
    y, h = layer(torch.randn(T, B, I))
    (y.sum() + h.sum()).backward()
    assert all(c.initial_states[0].grad is not None for c in layer.cells)


def test_deeper_layers_and_reverse_have_their_own_weights():
    layer = build_layer("lstm", I, H, num_layers=2, bidirectional=True)
    assert layer.cells[2].input_size == 2 * H
    assert layer.cells[0].weight_ih.data_ptr() != layer.cells[1].weight_ih.data_ptr()
    assert not torch.equal(layer.cells[0].weight_ih, layer.cells[1].weight_ih)


# -- bad input -------------------------------------------------------------------------
@pytest.fixture
def lstm():
    return rnnkit.LSTM(I, H, num_layers=2)


def test_wrong_rank(lstm):
    with pytest.raises(ValueError, match=r"input must be 3-D .* got shape \(2, 3, 4, 5\)"):
        lstm(torch.randn(2, 3, 4, 5))


def test_wrong_feature_size(lstm):
    with pytest.raises(ValueError, match="input_size=3, got 5"):
        lstm(torch.randn(T, B, 5))


def test_wrong_state_shape(lstm):
    h = torch.zeros(2, B, H)
    with pytest.raises(ValueError, match=r"hx c_0 must have shape \(2, 3, 4\) .* got \(1, 3, 4\)"):
        lstm(torch.randn(T, B, I), (h, torch.zeros(1, B, H)))


def test_state_batch_mismatch(lstm):
    with pytest.raises(ValueError, match=r"hx h_0 must have shape \(2, 3, 4\)"):
        lstm(torch.randn(T, B, I), (torch.zeros(2, 5, H), torch.zeros(2, 5, H)))


def test_state_wrong_count(lstm):
    with pytest.raises(ValueError, match=r"hx must be \(h_0, c_0\)"):
        lstm(torch.randn(T, B, I), torch.zeros(2, B, H))


@pytest.mark.parametrize("lengths,match", [
    ([0, 3, 2], "lengths must be >= 1, got a length of 0"),
    ([8, 3, 2], r"lengths must be <= the number of time steps \(7\), got a length of 8"),
    ([3, 2], r"lengths must have shape \(3,\)"),
    ([1.5, 2.0, 3.0], "lengths must hold integers"),
])
def test_bad_lengths(lstm, lengths, match):
    with pytest.raises(ValueError, match=match):
        lstm(torch.randn(T, B, I), lengths=torch.tensor(lengths))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_layers must be an integer >= 1, got 0"):
        rnnkit.GRU(I, H, num_layers=0)
    with pytest.raises(ValueError, match="dropout must be a probability"):
        rnnkit.GRU(I, H, dropout=1.5)
    with pytest.raises(ValueError, match="engine must be 'auto' or one of"):
        rnnkit.GRU(I, H, engine="warp")
    with pytest.raises(ValueError, match="cell must be one of"):
        build_layer("transformer", I, H)
    with pytest.raises(ValueError, match="bad option for cell 'gru'"):
        build_layer("gru", I, H, peephole=True)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_autocast_runs_every_engine_and_accepts_its_own_state(cell):
    """Under autocast rnnkit's own engines compute in the parameters' dtype (autocast off inside), except the
    cpp LSTM's whole-sequence products, which follow CPU autocast (bf16; its time loop stays float32);
    a state that comes back in bf16 is accepted on the next call, as torch.nn does."""
    torch.manual_seed(6)
    layer = build_layer(cell, I, H)
    x = torch.randn(T, B, I)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        res = layer.run(x)
        y2, _ = layer(x, res.state)
    y2.float().sum().backward()  # the backward outside autocast, as PyTorch recommends
    assert all(p.grad is not None for p in layer.parameters() if p.requires_grad)
    ref = build_layer(cell, I, H, engine="reference")
    ref.load_state_dict(layer.state_dict())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = ref.run(x)
        yr, _ = ref(x, r.state)
    # native follows torch's autocast (bf16 inside); cpp's LSTM rounds its products' inputs to bf16
    tol = 3e-2 if res.engine == "native" or (res.engine == "cpp" and layer.first_cell.family == "lstm") else 1e-5
    torch.testing.assert_close(y2.float(), yr.float(), atol=tol, rtol=tol)
