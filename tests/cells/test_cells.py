"""Cell maths: golden values with constant weights, config validation, step == one-step layer."""
import pytest
import torch

from rnnkit.cells import (ElmanCell, ElmanConfig, GRUCell, IndRNNCell, JordanCell, JordanConfig,
                          LSTMCell, LSTMConfig)


def fill(cell, value):
    with torch.no_grad():
        for p in cell.parameters():
            p.fill_(value)


def test_elman_golden_tanh():
    cell = ElmanCell(ElmanConfig(2, 2))
    fill(cell, 0.5)  # W_ih = W_hh = 0.5, b_ih = b_hh = 0.5
    x = torch.tensor([[1.0, 2.0]])
    out, (h,) = cell.step(x, (torch.tensor([[0.2, -0.4]]),))
    # pre = 0.5*(1+2) + 0.5*(0.2-0.4) + 0.5 + 0.5 = 2.4
    torch.testing.assert_close(h, torch.full((1, 2), torch.tanh(torch.tensor(2.4)).item()))
    torch.testing.assert_close(out, h)


def test_elman_golden_relu_and_output_layer():
    cell = ElmanCell(ElmanConfig(1, 2, activation="relu", output_size=1, out_activation="sigmoid"))
    fill(cell, -1.0)
    out, (h,) = cell.step(torch.tensor([[-3.0]]), (torch.zeros(1, 2),))
    # pre = -1*-3 + 0 - 1 - 1 = 1 -> relu 1; y = sigmoid(-1*1 + -1*1 - 1) = sigmoid(-3)
    torch.testing.assert_close(h, torch.ones(1, 2))
    torch.testing.assert_close(out, torch.sigmoid(torch.tensor([[-3.0]])))


def test_elman_identity_and_callable_activation():
    cell = ElmanCell(ElmanConfig(1, 1, activation=lambda v: 2 * v, bias=False))
    fill(cell, 1.0)
    _, (h,) = cell.step(torch.tensor([[1.0]]), (torch.tensor([[3.0]]),))
    torch.testing.assert_close(h, torch.tensor([[8.0]]))


def test_jordan_golden_feeds_back_output():
    cell = JordanCell(JordanConfig(1, 2, output_size=1, activation="tanh", out_activation="identity"))
    fill(cell, 0.5)
    x = torch.tensor([[1.0]])
    y0 = torch.tensor([[2.0]])
    out, (y,) = cell.step(x, (y0,))
    h = torch.tanh(torch.tensor(0.5 * 1 + 0.5 + 0.5 * 2))  # W_ih x + b_ih + W_hy y_prev
    expected = 0.5 * h * 2 + 0.5                            # W_yh h + b_y, two hidden units
    torch.testing.assert_close(y, expected.reshape(1, 1))
    torch.testing.assert_close(out, y)
    # a second step uses y, not h, as context
    _, (y2,) = cell.step(x, (y,))
    h2 = torch.tanh(0.5 + 0.5 + 0.5 * y)
    torch.testing.assert_close(y2, 0.5 * h2 * 2 + 0.5)


def test_lstm_forget_bias_and_torch_init():
    cell = LSTMCell(LSTMConfig(3, 4, forget_bias=1.0))
    assert cell.bias_ih[4:8].min() >= 1.0 - 0.5 - 1e-6
    compat = LSTMCell(LSTMConfig(3, 4, forget_bias=0.0))
    assert compat.bias_ih.abs().max() <= 0.5


def test_lstm_peephole_golden():
    cell = LSTMCell(LSTMConfig(1, 1, peephole=True, forget_bias=0.0))
    fill(cell, 0.0)
    with torch.no_grad():
        cell.weight_ci.fill_(1.0)
        cell.weight_cf.fill_(-1.0)
        cell.weight_co.fill_(2.0)
        cell.weight_ih[2].fill_(1.0)  # g gate sees x
    h0, c0 = torch.zeros(1, 1), torch.tensor([[0.5]])
    _, (h, c) = cell.step(torch.tensor([[1.0]]), (h0, c0))
    i, f, g = torch.sigmoid(torch.tensor(0.5)), torch.sigmoid(torch.tensor(-0.5)), torch.tanh(torch.tensor(1.0))
    c_exp = f * 0.5 + i * g
    o = torch.sigmoid(2 * c_exp)
    torch.testing.assert_close(c, c_exp.reshape(1, 1))
    torch.testing.assert_close(h, (o * torch.tanh(c_exp)).reshape(1, 1))


def test_gru_variants_differ_and_reset_after_matches_torch_cell():
    torch.manual_seed(0)
    after = GRUCell.from_options(3, 4, reset_after=True)
    before = GRUCell.from_options(3, 4, reset_after=False)
    before.load_state_dict(after.state_dict())
    ref = torch.nn.GRUCell(3, 4)
    ref.load_state_dict(after.state_dict())
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    torch.testing.assert_close(after.step(x, (h,))[0], ref(x, h))
    assert not torch.allclose(before.step(x, (h,))[0], ref(x, h))


def test_indrnn_recurrent_weight_is_clamped():
    cell = IndRNNCell.from_options(1, 2, activation="identity", recurrent_max=1.0, bias=False)
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.weight_hh.copy_(torch.tensor([5.0, -0.5]))
    _, (h,) = cell.step(torch.zeros(1, 1), (torch.ones(1, 2),))
    torch.testing.assert_close(h, torch.tensor([[1.0, -0.5]]))


def test_learned_initial_state_is_a_parameter():
    cell = GRUCell.from_options(2, 3, learn_initial_state=True)
    s = cell.initial_state(4)
    assert s[0].shape == (4, 3)
    s[0].sum().backward()
    assert cell.initial_states[0].grad is not None


@pytest.mark.parametrize("bad", [
    dict(input_size=0, hidden_size=3), dict(input_size=2, hidden_size=-1),
    dict(input_size=2, hidden_size=3, proj_size=3), dict(input_size=2, hidden_size=3, proj_size=-1),
])
def test_lstm_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        LSTMConfig(**bad)


def test_unknown_activation_names_the_argument():
    with pytest.raises(ValueError, match="activation must be one of"):
        ElmanConfig(2, 3, activation="swish")
