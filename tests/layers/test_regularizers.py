"""The mask samplers of rnnkit.layers.regularizers: right values, right probability, right shapes."""
import pytest
import torch

from rnnkit.layers.regularizers import bernoulli_mask


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5, 0.9])
def test_bernoulli_mask_frequency_matches_p(p):
    torch.manual_seed(0)
    n = 400_000
    m = bernoulli_mask((100, 40, 100), p, "cpu", torch.float32)
    assert m.shape == (100, 40, 100) and m.dtype == torch.float32
    assert set(torch.unique(m).tolist()) == {0.0, 1.0}
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(m.mean().item() - p) < 5 * sigma


def test_bernoulli_mask_lanes_are_independent():
    # neighbouring elements come from the same 64-bit draw: their products must still average p^2
    torch.manual_seed(1)
    m = bernoulli_mask((200_000, 4), 0.3, "cpu", torch.float64)
    pairs = (m[:, 0] * m[:, 1]).mean().item(), (m[:, 2] * m[:, 3]).mean().item()
    for v in pairs:
        assert abs(v - 0.09) < 5 * (0.09 * 0.91 / 200_000) ** 0.5


def test_bernoulli_mask_odd_sizes_and_extremes():
    assert bernoulli_mask((3, 1, 5), 0.5, "cpu", torch.float32).shape == (3, 1, 5)  # 15: not a multiple of 4
    assert bool((bernoulli_mask((7, 3), 0.0, "cpu", torch.float32) == 0).all())
    assert bool((bernoulli_mask((7, 3), 1.0, "cpu", torch.float32) == 1).all())


def test_bernoulli_mask_follows_the_seed():
    torch.manual_seed(3)
    a = bernoulli_mask((10, 2, 8), 0.2, "cpu", torch.float32)
    torch.manual_seed(3)
    b = bernoulli_mask((10, 2, 8), 0.2, "cpu", torch.float32)
    c = bernoulli_mask((10, 2, 8), 0.2, "cpu", torch.float32)
    assert torch.equal(a, b) and not torch.equal(a, c)
