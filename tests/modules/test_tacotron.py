"""The Tacotron 2 family acoustic model: shapes, the stop token, the guided-attention loss, and attention that
becomes diagonal when a tiny model is trained on a tiny set."""
from __future__ import annotations

import pytest
import torch

from rnnkit.modules.tacotron import Tacotron, TacotronConfig, guided_attention_loss, stop_targets

TINY = dict(n_mels=8, embedding=16, encoder_convs=1, encoder_hidden=16, attention_size=16, location_filters=4,
            location_kernel=5, prenet=16, attention_hidden=32, decoder_hidden=32, reduction=2, postnet_channels=8,
            postnet_layers=2, dropout=0.0, prenet_dropout=0.0)


def test_shapes_and_gradients(one_thread):
    torch.manual_seed(0)
    m = Tacotron(TacotronConfig(vocab_size=10, **TINY))
    text, lengths = torch.randint(1, 10, (3, 6)), torch.tensor([6, 4, 2])
    out = m(text, lengths, torch.randn(3, 8, 8))
    assert out.mel_before.shape == out.mel_after.shape == (3, 8, 8)
    assert out.stop_logits.shape == (3, 4) and out.alignments.shape == (3, 4, 6)
    torch.testing.assert_close(out.alignments.sum(-1), torch.ones(3, 4))
    assert float(out.alignments.detach()[1, :, 4:].abs().max()) == 0.0  # padding gets no attention
    out.mel_after.sum().backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if not n.startswith("stop"))
    with pytest.raises(ValueError, match="multiple of reduction=2"):
        m(text, lengths, torch.randn(3, 7, 8))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_any_rnnkit_cell_runs_the_recurrent_parts(cell, one_thread):
    m = Tacotron(TacotronConfig(vocab_size=6, cell=cell, **TINY))
    assert type(m.decoder_cell).__name__.lower().startswith(cell[:3])
    m(torch.randint(1, 6, (2, 3)), torch.tensor([3, 2]), torch.zeros(2, 4, 8))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="reduction must be a positive integer"):
        TacotronConfig(vocab_size=5, reduction=0)
    with pytest.raises(ValueError, match="cell must be one of"):
        TacotronConfig(vocab_size=5, cell="nope")
    with pytest.raises(ValueError, match="kernel sizes must be odd"):
        TacotronConfig(vocab_size=5, kernel_size=4)


def test_stop_token_ends_generation(one_thread):
    torch.manual_seed(0)
    m = Tacotron(TacotronConfig(vocab_size=6, **TINY)).eval()
    text = torch.tensor([1, 2, 3])
    with torch.no_grad():
        m.stop.weight.zero_()
        m.stop.bias.fill_(10.0)           # stop probability ~1 at once
    quick = m.infer(text, max_steps=20)
    assert quick.stopped and quick.mel.shape == (2, 8) and quick.alignment.shape == (1, 3)
    with torch.no_grad():
        m.stop.bias.fill_(-10.0)          # never stops: runs to the limit and says so
    long = m.infer(text, max_steps=7)
    assert not long.stopped and long.mel.shape == (14, 8)


def test_scheduled_sampling_feeds_the_model_its_own_frames(one_thread):
    torch.manual_seed(0)
    m = Tacotron(TacotronConfig(vocab_size=6, **{**TINY, "scheduled_sampling": 1.0}))
    text, lengths = torch.randint(1, 6, (2, 4)), torch.tensor([4, 3])
    a, b = torch.randn(2, 8, 8), torch.randn(2, 8, 8)
    # always its own frames: the recording's frames never reach the decoder (the first step reads the go frame)
    torch.testing.assert_close(m(text, lengths, a).mel_before, m(text, lengths, b).mel_before)
    m.eval()  # evaluation is teacher forced whatever the rate: the recording's frames matter again
    assert not torch.allclose(m(text, lengths, a).mel_before, m(text, lengths, b).mel_before)
    with pytest.raises(ValueError, match="scheduled_sampling must be in"):
        TacotronConfig(vocab_size=5, scheduled_sampling=1.5)


def test_stop_targets_mark_the_last_step_on():
    t = stop_targets(torch.tensor([6, 5, 1]), steps=3, reduction=2)
    assert t.tolist() == [[0, 0, 1], [0, 0, 1], [1, 1, 1]]


def test_guided_attention_loss_prefers_the_diagonal():
    N = S = 8
    diagonal = torch.eye(N)[None]
    anti = torch.eye(N).flip(1)[None]
    lengths = torch.tensor([N])
    near = float(guided_attention_loss(diagonal, lengths, torch.tensor([S])))
    far = float(guided_attention_loss(anti, lengths, torch.tensor([S])))
    assert near < 1e-3 and far > 0.05     # a mean over all N x S pairs: far = 0.094


def _toy_set(n: int = 8, per_symbol: int = 4):
    """Sequences of symbols 1..5, each read as ``per_symbol`` frames of its own pattern: the right
    alignment is the diagonal."""
    gen = torch.Generator().manual_seed(0)
    patterns = torch.randn(6, 8, generator=gen)
    texts, mels = [], []
    for i in range(n):
        ids = torch.randint(1, 6, (4 + i % 3,), generator=gen)
        texts.append(ids)
        mels.append(patterns[ids].repeat_interleave(per_symbol, 0))
    text = torch.nn.utils.rnn.pad_sequence(texts, batch_first=True)
    mel = torch.nn.utils.rnn.pad_sequence(mels, batch_first=True)
    return text, torch.tensor([len(t) for t in texts]), mel, torch.tensor([len(m) for m in mels])


def _diagonal_share(alignments, text_lengths, step_lengths, band=0.2):
    B, S, N = alignments.shape
    t = torch.arange(S)[None, :, None] / step_lengths[:, None, None]
    n = torch.arange(N)[None, None, :] / text_lengths[:, None, None]
    steps = torch.arange(S)[None, :, None] < step_lengths[:, None, None]
    return float((alignments * (((n - t).abs() <= band) & steps)).sum() / (alignments * steps).sum())


def test_attention_becomes_diagonal_on_a_tiny_set(one_thread):
    torch.manual_seed(0)
    m = Tacotron(TacotronConfig(vocab_size=6, **TINY))
    text, text_lengths, mel, mel_lengths = _toy_set(4)
    step_lengths = mel_lengths // 2
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    before = _diagonal_share(m(text, text_lengths, mel).alignments.detach(), text_lengths, step_lengths)
    for _ in range(32):  # share of attention near the diagonal: 0.37 -> 0.96 (measured)
        out = m(text, text_lengths, mel)
        mask = (torch.arange(mel.shape[1])[None] < mel_lengths[:, None])[..., None]
        loss = ((out.mel_after - mel).abs() * mask).mean() + ((out.mel_before - mel).abs() * mask).mean() \
            + 10.0 * guided_attention_loss(out.alignments, text_lengths, step_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _diagonal_share(m(text, text_lengths, mel).alignments.detach(), text_lengths, step_lengths)
    assert before < 0.6 and after > 0.9, (before, after)
