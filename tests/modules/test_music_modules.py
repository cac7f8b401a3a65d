"""Polyphonic output layers: exact NLL by hand, normalisation, generation from a primer, learning chords."""
import itertools
import math

import pytest
import torch

from rnnkit.modules.music import (NADEOutput, PolyModelConfig, PolyphonicRNN, SigmoidOutput, bernoulli_frame_nll,
                                  nade_decode, nade_dense_logits, nade_greedy_segments, nade_segment_logits,
                                  teacher_forcing)



pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def test_sigmoid_output_nll_by_hand():
    out = SigmoidOutput(hidden_size=2, n_pitches=3)
    with torch.no_grad():
        out.proj.weight.zero_()
        out.proj.bias.copy_(torch.tensor([0.0, 1.0, -2.0]))
    h = torch.randn(1, 1, 2)
    v = torch.tensor([[[1.0, 0.0, 1.0]]])
    logits, nll = out(h, v)
    by_hand = -(_log_sigmoid(0.0) + _log_sigmoid(-1.0) + _log_sigmoid(-2.0))   # log(1 - s(x)) = log s(-x)
    assert logits.shape == (1, 1, 3) and nll.shape == (1, 1)
    assert nll.item() == pytest.approx(by_hand, rel=1e-6)


def test_nade_fixed_logits_equal_independent_sigmoids():
    out = NADEOutput(hidden_size=2, n_pitches=3, nade_hidden=4)
    with torch.no_grad():
        out.W.zero_()
        out.V.zero_()
        out.to_b.weight.zero_()
        out.to_b.bias.copy_(torch.tensor([0.0, 1.0, -2.0]))
    v = torch.tensor([[1.0, 0.0, 1.0]])
    _, nll = out(torch.randn(1, 2), v)
    assert nll.item() == pytest.approx(-(_log_sigmoid(0.0) + _log_sigmoid(-1.0) + _log_sigmoid(-2.0)), rel=1e-6)


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 9), (1, 6)])
def test_nade_segment_logits_equal_the_dense_formula_values_and_gradients(shape):
    """The per-run NADE pass against the formula as written: empty, full and random frames, float64."""
    P, N = shape[-1], 4
    gen = torch.Generator().manual_seed(sum(shape))
    v = (torch.rand(shape, generator=gen) < 0.4).double()
    v.reshape(-1, P)[0] = 0.0                                            # an empty frame: one run
    if v.reshape(-1, P).shape[0] > 1:
        v.reshape(-1, P)[1] = 1.0                                        # every pitch on: P + 1 runs
    b = torch.randn(shape, dtype=torch.double, generator=gen, requires_grad=True)
    c = torch.randn(*shape[:-1], N, dtype=torch.double, generator=gen, requires_grad=True)
    W = torch.randn(P, N, dtype=torch.double, generator=gen, requires_grad=True)
    V = torch.randn(P, N, dtype=torch.double, generator=gen, requires_grad=True)
    dense, fast = nade_dense_logits(b, c, v, W, V), nade_segment_logits(b, c, v, W, V)
    torch.testing.assert_close(fast, dense)
    weights = torch.randn(shape, dtype=torch.double, generator=gen)
    for g_fast, g_dense in zip(torch.autograd.grad((fast * weights).sum(), [b, c, W, V]),
                               torch.autograd.grad((dense * weights).sum(), [b, c, W, V])):
        torch.testing.assert_close(g_fast, g_dense)


def test_nade_output_forward_takes_the_segment_pass(monkeypatch):
    import rnnkit.modules.music as music
    calls = []
    monkeypatch.setattr(music, "nade_segment_logits",
                        lambda *a: calls.append(1) or nade_dense_logits(*a))
    NADEOutput(3, 4, nade_hidden=2)(torch.randn(2, 3), torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0]]))
    assert calls == [1]


def test_nade_two_pitches_by_hand():
    out = NADEOutput(hidden_size=1, n_pitches=2, nade_hidden=1)
    with torch.no_grad():
        out.to_b.weight.zero_()
        out.to_c.weight.zero_()
        out.to_b.bias.copy_(torch.tensor([0.5, -0.5]))
        out.to_c.bias.fill_(0.3)
        out.W.copy_(torch.tensor([[2.0], [7.0]]))
        out.V.copy_(torch.tensor([[1.5], [-3.0]]))
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    l1 = 0.5 + 1.5 * sig(0.3)                # p(v1): hidden from c only
    l2 = -0.5 - 3.0 * sig(0.3 + 2.0 * 1)     # p(v2 | v1 = 1): W[:, 1] v1 added
    logits, nll = out(torch.zeros(1, 1), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(logits, torch.tensor([[l1, l2]]))
    assert nll.item() == pytest.approx(-(_log_sigmoid(l1) + _log_sigmoid(-l2)), rel=1e-6)


@pytest.mark.parametrize("kind", ["sigmoid", "nade"])
def test_outputs_are_normalised_distributions(kind):
    torch.manual_seed(0)
    out = SigmoidOutput(3, 4) if kind == "sigmoid" else NADEOutput(3, 4, nade_hidden=5)
    with torch.no_grad():
        for p in out.parameters():
            p.normal_(0, 1.0)
    h = torch.randn(3)
    frames = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))      # (16, 4) every frame
    _, nll = out(h.expand(16, 3), frames)
    assert torch.exp(-nll.double()).sum().item() == pytest.approx(1.0, abs=1e-5)


def test_nade_greedy_logits_are_its_teacher_forced_logits_on_the_greedy_frame():
    torch.manual_seed(1)
    out = NADEOutput(3, 6, nade_hidden=5)
    with torch.no_grad():
        for p in out.parameters():
            p.normal_(0, 1.0)
    h = torch.randn(4, 3)
    greedy, nll = out(h)
    assert nll is None
    v = (greedy > 0).float()
    forced, _ = out(h, v)
    torch.testing.assert_close(greedy, forced)
    torch.testing.assert_close(out.sample(h, temperature=0.0), v)


@pytest.mark.parametrize("lead,P,N,bias", [((7,), 6, 5, 0.0), ((3, 4), 9, 4, 1.5), ((5,), 12, 3, -3.0),
                                            ((2,), 1, 2, 0.0), ((0,), 4, 2, 0.0)])
def test_nade_greedy_segments_equal_the_pitch_by_pitch_decoding(lead, P, N, bias):
    """Per-note greedy decoding against the loop over pitches, float64: every logit and every decision, with
    frames that decode empty (bias -3), full (+1.5) and in between."""
    g = torch.Generator().manual_seed(P * 10 + N)
    b = torch.randn(*lead, P, generator=g, dtype=torch.float64) + bias
    c = torch.randn(*lead, N, generator=g, dtype=torch.float64)
    W, V = (torch.randn(P, N, generator=g, dtype=torch.float64) * 2 for _ in range(2))
    slow_logits, slow_v = nade_decode(b, c, W, V)
    fast_logits, fast_v = nade_greedy_segments(b, c, W, V)
    torch.testing.assert_close(fast_v, slow_v)
    torch.testing.assert_close(fast_logits, slow_logits)
    assert fast_v.shape == (*lead, P)


def test_nade_greedy_segments_decode_empty_full_and_mixed_frames():
    """Hand-made W, V, c (N = 1, h = sigmoid(a)): the decoded frames are known, including all-off and all-on."""
    W = torch.tensor([[20.0], [20.0], [20.0]])                           # a note switches h to ~1
    V = torch.tensor([[1.0], [1.0], [1.0]])
    c = torch.tensor([[-10.0], [-10.0], [-10.0]])                        # h ~ 0 before any note
    b = torch.tensor([[-0.5, -0.5, -0.5],                                # nothing ever on
                      [0.5, -0.5, -0.5],                                 # the first, then h ~ 1 lifts the rest
                      [-0.5, -0.5, 0.5]])                                # only the last
    logits, v = nade_greedy_segments(b, c, W, V)
    assert v.tolist() == [[0, 0, 0], [1, 1, 1], [0, 0, 1]]
    torch.testing.assert_close(logits, nade_decode(b, c, W, V)[0])


def test_nade_output_greedy_takes_the_per_note_pass(monkeypatch):
    from rnnkit.modules import music
    calls = []
    monkeypatch.setattr(music, "nade_greedy_segments", lambda *a: calls.append(1) or nade_decode(*a))
    monkeypatch.setattr(music, "nade_decode", lambda *a: pytest.fail("the loop over pitches ran eagerly"))
    out = NADEOutput(3, 4, nade_hidden=2)
    out(torch.randn(2, 3))
    out.sample(torch.randn(2, 3), temperature=0.0)
    assert calls == [1, 1]


def test_nade_greedy_logits_export_as_a_loop_over_pitches():
    """torch.export cannot keep the per-note loop (its length depends on the data); exporting takes the loop
    over pitches, and the graph gives the eager logits for another batch size."""
    torch.manual_seed(0)
    out = NADEOutput(3, 4, nade_hidden=3).eval()
    with torch.no_grad():
        for p in out.parameters():
            p.normal_(0, 1.0)

    class Greedy(torch.nn.Module):
        def forward(self, h):
            return out(h)[0]

    program = torch.export.export(Greedy(), (torch.randn(4, 3),), dynamic_shapes=({0: torch.export.Dim("b")},))
    h = torch.randn(9, 3)
    torch.testing.assert_close(program.module()(h), out(h)[0])


@pytest.mark.parametrize("kind", ["sigmoid", "nade"])
def test_generation_starts_with_the_primer(kind):
    torch.manual_seed(0)
    model = PolyphonicRNN(PolyModelConfig(n_pitches=6, hidden=8, output=kind, nade_hidden=4)).eval()
    primer = (torch.rand(2, 3, 6) < 0.5).float()
    out = model.generate(primer, 5, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert out.shape == (2, 8, 6)
    torch.testing.assert_close(out[:, :3], primer)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    again = model.generate(primer, 5, temperature=1.0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, again)
    assert model.generate(torch.zeros(0, 6), 4).shape == (4, 6)   # no primer: from the initial state


@pytest.mark.parametrize("kind", ["sigmoid", "nade"])
def test_forward_loss_matches_frame_nll_and_masks_padding(kind):
    torch.manual_seed(0)
    model = PolyphonicRNN(PolyModelConfig(n_pitches=5, hidden=8, output=kind, nade_hidden=4))
    frames = (torch.rand(2, 4, 5) < 0.4).float()
    inputs, targets = teacher_forcing(frames)
    assert torch.equal(inputs[:, 0], torch.zeros(2, 5)) and torch.equal(inputs[:, 1:], frames[:, :-1])
    res = model(inputs, targets, lengths=torch.tensor([4, 2]))
    assert res.frame_nll[1, 2:].abs().sum() == 0
    assert res.loss.item() == pytest.approx(res.frame_nll.sum().item() / 6, rel=1e-6)
    short = model(inputs[1:, :2], targets[1:, :2])   # padding changes nothing before the length
    torch.testing.assert_close(short.frame_nll[0], res.frame_nll[1, :2])
    if kind == "sigmoid":
        torch.testing.assert_close(res.frame_nll[0], bernoulli_frame_nll(res.logits[0], targets[0]))
    with pytest.raises(ValueError, match=r"inputs must be \(B, T, 5\)"):
        model(torch.zeros(2, 4, 6))


@pytest.mark.parametrize("kind", ["sigmoid", "nade"])
def test_learns_a_repeated_chord_progression(kind):
    torch.manual_seed(0)
    P = 12
    chords = [[0, 4, 7], [5, 9, 0], [7, 11, 2], [0, 4, 7]]          # C F G C, in pitch classes
    frames = torch.zeros(1, 16, P)
    for t in range(16):
        frames[0, t, chords[(t // 2) % 4]] = 1.0                     # each chord for two frames
    model = PolyphonicRNN(PolyModelConfig(n_pitches=P, hidden=32, output=kind, nade_hidden=16))
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    inputs, targets = teacher_forcing(frames)
    first = model(inputs, targets).loss.item()
    for _ in range(120):
        loss = model(inputs, targets).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = model(inputs, targets).loss.item()
    assert first > 6.0 and last < 1.0, (first, last)
    # once learned, greedy generation continues the progression
    model.eval()
    out = model.generate(frames[0, :4], 4, temperature=0.0)
    torch.testing.assert_close(out[4:], frames[0, 4:8])


@pytest.mark.parametrize("kind", ["sigmoid", "nade"])
def test_greedy_generation_step_by_step_equals_the_whole_sequence_pass(kind):
    torch.manual_seed(2)
    model = PolyphonicRNN(PolyModelConfig(n_pitches=6, hidden=8, output=kind, nade_hidden=4)).eval()
    with torch.no_grad():
        model.out.parameters().__next__().add_(0.5)   # some pitches on, some off
    primer = (torch.rand(2, 3, 6) < 0.5).float()
    out = model.generate(primer, 6, temperature=0.0)
    inputs, _ = teacher_forcing(out)
    with torch.no_grad():
        whole = model(inputs).logits                    # no targets: greedy logits per frame
    torch.testing.assert_close((whole[:, 3:] > 0).float(), out[:, 3:])
