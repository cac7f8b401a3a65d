import pytest
import torch

from rnnkit.modules.acoustic import AcousticConfig, AcousticModel, ctc_required_frames, stack_frames
from rnnkit.modules.ctc import greedy_decode

STRINGS = [[1, 2], [3, 1, 2], [2, 2, 3], [3]]


def render(labels, gen, frames_per_label=4, width=8):
    """Features for a label string: each label a noisy prototype for a few frames, a silent gap between."""
    rows = [torch.zeros(2, width)]
    for k in labels:
        proto = torch.zeros(frames_per_label, width)
        proto[:, 2 * k:2 * k + 2] = 1.0
        rows += [proto, torch.zeros(2, width)]
    x = torch.cat(rows)
    return x + 0.1 * torch.randn(x.shape, generator=gen)


def batch(strings, gen):
    xs = [render(s, gen) for s in strings]
    lengths = torch.tensor([len(x) for x in xs])
    feats = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
    target_lengths = torch.tensor([len(s) for s in strings])
    targets = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in strings], batch_first=True)
    return feats, lengths, targets, target_lengths


def test_learns_a_tiny_synthetic_set():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = AcousticModel(AcousticConfig(input_size=8, vocab_size=4, hidden_size=16, num_layers=1, stack_frames=2))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(50):
        feats, lengths, targets, target_lengths = batch(STRINGS, gen)
        out = model(feats, lengths, targets, target_lengths)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    assert losses[-1] < 0.2 * losses[0], losses[::10]
    model.eval()
    feats, lengths, _, _ = batch(STRINGS, gen)
    with torch.no_grad():
        out = model(feats, lengths)
    assert greedy_decode(out.logits, out.lengths) == STRINGS


def test_output_lengths_follow_stacking_and_pyramid():
    model = AcousticModel(AcousticConfig(input_size=5, vocab_size=3, hidden_size=8, num_layers=1, stack_frames=3,
                                         pyramid_layers=2, cell="gru"))
    feats, lengths = torch.randn(2, 25, 5), torch.tensor([25, 7])
    out = model(feats, lengths)
    assert model.config.subsampling == 12
    assert out.lengths.tolist() == [3, 1] and out.logits.shape == (2, 3, 3)
    assert model.output_lengths(lengths).tolist() == [3, 1]
    # padding does not change a shorter utterance's outputs
    alone = model(feats[1:, :7], lengths[1:])
    torch.testing.assert_close(alone.logits[0, :1], out.logits[1, :1], atol=1e-5, rtol=1e-4)


def test_stack_frames_pads_the_tail():
    x = torch.arange(10.0).reshape(1, 5, 2)
    y, n = stack_frames(x, torch.tensor([5]), 2)
    assert y.shape == (1, 3, 4) and n.tolist() == [3]
    assert y[0, 2].tolist() == [8.0, 9.0, 0.0, 0.0]


def test_ctc_length_check_names_the_utterance_up_front():
    assert ctc_required_frames(torch.tensor([[1, 1, 2, 0]]), torch.tensor([3])).tolist() == [4]   # 3 labels + 1 repeat
    model = AcousticModel(AcousticConfig(input_size=4, vocab_size=3, hidden_size=8, num_layers=1, stack_frames=4))
    feats, lengths = torch.randn(2, 16, 4), torch.tensor([16, 12])      # 4 and 3 output frames
    targets, target_lengths = torch.tensor([[1, 2, 1], [1, 1, 2]]), torch.tensor([3, 3])
    with pytest.raises(ValueError, match=r"1 utterance\(s\) too short.*spk2-utt7 \(3 frames after 4x subsampling, "
                                         r"needs 4\)"):
        model(feats, lengths, targets, target_lengths, names=["spk1-utt1", "spk2-utt7"])
    with pytest.raises(ValueError, match=r"#1 \(3 frames"):
        model(feats, lengths, targets, target_lengths)


def test_zero_infinity_zeroes_and_counts_the_short_utterances():
    model = AcousticModel(AcousticConfig(input_size=4, vocab_size=3, hidden_size=8, num_layers=1, stack_frames=4,
                                         zero_infinity=True))
    feats, lengths = torch.randn(2, 16, 4), torch.tensor([16, 12])
    out = model(feats, lengths, torch.tensor([[1, 2, 1], [1, 1, 2]]), torch.tensor([3, 3]))
    assert out.zeroed == 1 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("bad,match", [(dict(vocab_size=1), "vocab_size"), (dict(cell="transformer"), "cell"),
                                       (dict(blank=5), "blank"), (dict(pyramid_layers=-1), "pyramid"),
                                       (dict(dropout=1.0), "dropout"), (dict(stack_frames=0), "stack_frames")])
def test_acoustic_config_validation(bad, match):
    kw = dict(input_size=4, vocab_size=3)
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        AcousticConfig(**kw)
