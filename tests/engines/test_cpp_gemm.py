"""The cpp engine's whole-sequence products (rnnkit/engines/cpp/gemm.py): oneDNN's linear where torch
has it, torch.mm otherwise; both give x @ w.T, and the LSTM really takes the oneDNN route in float32."""
import pytest
import torch
from torch.testing import assert_close

import rnnkit
from rnnkit.engines.cpp import gemm

onednn = pytest.mark.skipif(not gemm.onednn_linear_usable(), reason="torch has no usable oneDNN linear here")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 3, 5), (37, 16, 24), (200, 64, 8)])
def test_linear_is_x_times_w_transposed(dtype, shape):
    M, K, N = shape
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(M, K, generator=gen, dtype=dtype), torch.randn(N, K, generator=gen, dtype=dtype)
    got = gemm.linear(x, w)
    assert got.shape == (M, N) and got.dtype == dtype
    assert_close(got, (x.double() @ w.double().t()).to(dtype))


def test_float64_keeps_torch_mm():
    assert gemm.route(torch.float64) == "torch.mm"


def test_onednn_switched_off_by_the_user_means_torch_mm(monkeypatch):
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
    assert gemm.route(torch.float32) == "torch.mm"
    x, w = torch.randn(5, 3), torch.randn(4, 3)
    assert_close(gemm.linear(x, w), x @ w.t())


@onednn
def test_float32_takes_onednn_and_the_lstm_uses_it(monkeypatch):
    assert gemm.route(torch.float32) == "onednn"
    calls = []
    real = gemm.linear
    monkeypatch.setattr(gemm, "linear", lambda x, w: calls.append(tuple(x.shape)) or real(x, w))
    layer = rnnkit.LSTM(6, 5, engine="cpp")
    x = torch.randn(7, 3, 6, requires_grad=True)
    layer(x)[0].sum().backward()
    assert calls == [(21, 6), (21, 20)]  # x W_ih^T before the loop, dL/dx after it
    ref = rnnkit.LSTM(6, 5, engine="reference")
    ref.load_state_dict(layer.state_dict())
    x2 = x.detach().clone().requires_grad_()
    ref(x2)[0].sum().backward()
    assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-6)
