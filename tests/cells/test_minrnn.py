"""minGRU / minLSTM cells (Feng et al. 2024): the step equations, golden values, log-space forms."""
import pytest
import torch
from torch.testing import assert_close

from rnnkit.cells.base import StepContext
from rnnkit.cells.minrnn import MinGRUCell, MinLSTMCell, MinRNNConfig, g_positive, log_g_positive

CELLS = [MinGRUCell, MinLSTMCell]


def test_g_positive_golden():
    x = torch.tensor([-2.0, 0.0, 1.5])
    assert_close(g_positive(x), torch.tensor([torch.sigmoid(torch.tensor(-2.0)).item(), 0.5, 2.0]))
    assert_close(log_g_positive(x), torch.log(g_positive(x)))


@pytest.mark.parametrize("cls", CELLS)
def test_golden_step_constant_weights(cls):
    cell = cls(MinRNNConfig(2, 3))
    with torch.no_grad():
        cell.weight_ih.fill_(0.5)
        cell.bias_ih.fill_(0.0)
    x = torch.ones(1, 2)  # every pre-activation = 1.0
    h0 = torch.full((1, 3), 2.0)
    out, (h,) = cell.step(x, (h0,))
    s = torch.sigmoid(torch.tensor(1.0))
    if cls is MinGRUCell:  # a = 1 - s, b = s * g(1) = s * 1.5
        expected = (1 - s) * 2.0 + s * 1.5
    else:  # f = i: f' = i' = 1/2
        expected = 0.5 * 2.0 + 0.5 * 1.5
    assert_close(h, torch.full((1, 3), float(expected)))
    assert_close(out, h)


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("positive", [True, False])
def test_log_coefficients_match_linear(cls, positive):
    cell = cls(MinRNNConfig(4, 5, positive_candidate=positive)).double()
    xp = cell.project_input(torch.randn(7, 3, 4, dtype=torch.float64)) * 3
    a, b = cell.scan_coefficients(xp)
    assert bool(((a > 0) & (a < 1)).all())
    if not positive:
        with pytest.raises(ValueError, match="positive_candidate"):
            cell.scan_log_coefficients(xp)
        return
    la, lb = cell.scan_log_coefficients(xp)
    assert_close(la.exp(), a)
    assert_close(lb.exp(), b)


def test_minlstm_gates_normalised():
    cell = MinLSTMCell(MinRNNConfig(3, 4)).double()
    xp = cell.project_input(torch.randn(5, 3, dtype=torch.float64))
    kf, ki, kh = xp.chunk(3, dim=-1)
    f, i = torch.sigmoid(kf), torch.sigmoid(ki)
    a, b = cell.scan_coefficients(xp)
    assert_close(a, f / (f + i))
    assert_close(b, i / (f + i) * g_positive(kh))


@pytest.mark.parametrize("cls", CELLS)
def test_recurrent_dropout_mask_is_refused(cls):
    cell = cls(MinRNNConfig(2, 3))
    with pytest.raises(ValueError, match="recurrent dropout"):
        cell.recur(torch.zeros(1, cell.n_gates * 3), (torch.zeros(1, 3),), StepContext(h_mask=torch.ones(1, 3)))


def test_no_dropconnect():
    assert MinGRUCell.recurrent_weight_name is None
    with pytest.raises(ValueError):
        MinGRUCell(MinRNNConfig(2, 3)).step_context(dropconnect_mask=torch.ones(1))
