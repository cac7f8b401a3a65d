"""Core layers on CUDA: native (cuDNN) and reference agree with torch.nn and with the CPU.
Skipped without CUDA; run on the lent GPU machine."""
import pytest
import torch

import rnnkit
from rnnkit.layers import build_layer

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.fixture(autouse=True)
def true_fp32():
    """cuDNN's RNNs use TF32 by default; compare in real float32."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("engine", ["auto", "reference"])
def test_cuda_parity_with_torch(kind, engine):
    torch.manual_seed(0)
    ref = getattr(torch.nn, kind)(3, 8, num_layers=2, bidirectional=True).cuda()
    ours = getattr(rnnkit, kind)(3, 8, num_layers=2, bidirectional=True, engine=engine).cuda()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(9, 4, 3, device="cuda")
    lengths = torch.tensor([9, 4, 7, 1])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    y_ref, _ = torch.nn.utils.rnn.pad_packed_sequence(ref(packed)[0], total_length=9)
    res = ours.run(x, lengths=lengths)
    torch.testing.assert_close(res.output, y_ref, atol=2e-5, rtol=1e-4, msg=lambda m: f"{res.engine}: {m}")


@pytest.mark.parametrize("cell", ["peephole_lstm", "lnlstm", "gru_cho", "jordan", "indrnn"])
def test_cuda_matches_cpu_for_custom_cells(cell):
    torch.manual_seed(1)
    layer = build_layer(cell, 3, 8, num_layers=2, bidirectional=True)
    x = torch.randn(6, 2, 3)
    y_cpu, _ = layer(x, lengths=torch.tensor([6, 3]))
    y_gpu, _ = layer.cuda()(x.cuda(), lengths=torch.tensor([6, 3]))
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, atol=2e-5, rtol=1e-4)


def test_cuda_bf16_native_lstm_runs_and_tracks_fp32():
    torch.manual_seed(2)
    layer = rnnkit.LSTM(16, 32).cuda()
    x = torch.randn(20, 4, 16, device="cuda")
    y32, _ = layer(x)
    y16, _ = layer.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert y16.dtype == torch.bfloat16
    torch.testing.assert_close(y16.float(), y32, atol=3e-2, rtol=3e-2)
