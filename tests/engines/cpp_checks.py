"""Checks shared by the cpp engine's family tests (test_cpp_lstm/gru/elman.py)."""
import contextlib

import torch
from torch.testing import assert_close

import rnnkit


def random_valid(T: int, B: int, gen: torch.Generator) -> torch.Tensor:
    """(T, B, 1) bool: step t lies inside sequence b, for random lengths 1..T with the first one full."""
    lens = torch.randint(1, T + 1, (B,), generator=gen)
    lens[0] = T
    return (torch.arange(T)[:, None] < lens[None])[:, :, None]


def spy_on_apply(monkeypatch, function) -> list:
    """Record every call of ``function.apply`` (its first argument's shape): proves the C++ loop ran."""
    calls = []
    real = function.apply

    def spy(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(function, "apply", spy)
    return calls


def assert_layer_matches_reference(make_cell, reg: dict) -> None:
    """A 2-layer bidirectional rnnkit.Recurrent with lengths and the regulariser ``reg``, in float64:
    the cpp engine's output, final state and every gradient equal the reference engine's (same
    weights and masks)."""
    torch.manual_seed(0)
    x = torch.randn(6, 3, 5, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 2, 4])
    results = {}
    for engine in ("cpp", "reference"):
        torch.manual_seed(1)
        layer = rnnkit.Recurrent(make_cell(), num_layers=2, bidirectional=True, engine=engine, **reg).double()
        torch.manual_seed(2)  # the same masks for both engines
        res = layer.run(x, lengths=lengths)
        assert res.engine == engine
        loss = res.output.pow(2).sum() + sum(s.sum() for s in res.state[0])
        grads = torch.autograd.grad(loss, [x] + list(layer.parameters()))
        results[engine] = [res.output, res.state[0], *grads]
    for got, want in zip(results["cpp"], results["reference"]):
        assert_close(got, want)


@contextlib.contextmanager
def two_threads():
    """Run the body with two intra-op threads (the row passes split across them), then restore."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def assert_drop_in_inference_matches_torch(torch_cls, rnnkit_cls) -> None:
    """rnnkit's drop-in layer on the cpp engine, with torch's weights, under no_grad: torch's outputs."""
    torch.manual_seed(0)
    ref = torch_cls(5, 7, num_layers=2)
    ours = rnnkit_cls(5, 7, num_layers=2, engine="cpp")
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, 3, 5)
    with torch.no_grad():
        (y, h), (y_ref, h_ref) = ours(x), ref(x)
    assert not y.requires_grad
    assert_close(y, y_ref, atol=1e-5, rtol=1e-4)
    assert_close(h, h_ref, atol=1e-5, rtol=1e-4)
