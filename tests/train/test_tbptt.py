import pytest
import torch
from torch.testing import assert_close

from rnnkit.config import TrainConfig
from rnnkit.train import IGNORE_INDEX, StreamData, Trainer, batchify, detach_state, reset_state, windows
from rnnkit.train.steps import TBPTTStep
from rnnkit.train.tbptt import state_ages


def test_batchify_layout_matches_the_picture():
    a, b, c = torch.arange(100, 111), torch.arange(200, 206), torch.arange(300, 308)  # 11, 6, 8 tokens
    s = batchify([a, b, c], batch_size=2, k1=4)
    # A: 10 transitions -> 12 steps (3 chunks) in stream 0; B: 5 -> 8 steps in stream 1;
    # C: 7 -> 8 steps, dealt to the shorter stream 1
    assert s.inputs.shape == (16, 2) and len(s) == 4
    assert s.inputs[:10, 0].tolist() == a[:-1].tolist()
    assert s.targets[:10, 0].tolist() == a[1:].tolist()
    assert (s.targets[10:, 0] == IGNORE_INDEX).all()
    assert s.inputs[:5, 1].tolist() == b[:-1].tolist()
    assert (s.targets[5:8, 1] == IGNORE_INDEX).all()
    assert s.inputs[8:15, 1].tolist() == c[:-1].tolist()  # C starts on a chunk boundary
    assert (s.targets[12:, 0] == IGNORE_INDEX).all()  # tail padding of stream 0
    assert s.starts.tolist() == [[True, True], [False, False], [False, True], [True, False]]


def test_batchify_deals_longest_first_and_keeps_corpus_order_per_stream():
    # four short documents, then one as long as all of them: dealt in corpus order, the short ones
    # would fill both streams evenly and the long one would then hang off one of them, doubling the
    # epoch; longest first, it takes a stream of its own and the short ones share the other
    short = [torch.arange(10 * i, 10 * i + 5) for i in range(4)]  # 4 transitions each
    long = torch.arange(1000, 1017)  # 16 transitions
    s = batchify(short + [long], batch_size=2, k1=4)
    assert len(s) == 4  # 16 steps per stream, no chunk of padding only
    assert s.n_tokens == 32 and s.targets.numel() == 32  # no padding at all
    assert s.inputs[:, 0].tolist() == long[:-1].tolist()
    assert s.inputs[:, 1].tolist() == [t for d in short for t in d[:-1].tolist()]  # corpus order
    assert s.starts[:, 0].tolist() == [True, False, False, False] and s.starts[:, 1].tolist() == [True] * 4


def test_batchify_pads_little_of_a_corpus_of_uneven_documents():
    g = torch.Generator().manual_seed(0)
    docs = [torch.arange(int(n)) for n in torch.randint(20, 2000, (300,), generator=g)]
    docs += [torch.arange(20000), torch.arange(15000)]  # two long documents last
    s = batchify(docs, batch_size=16, k1=32)
    assert 1 - s.n_tokens / s.targets.numel() < 0.05  # 44% with the documents dealt in corpus order


def test_windows_cover_the_streams_in_order_and_resume_mid_way(toy_streams):
    s = toy_streams()
    chunks = list(windows(s))
    assert torch.equal(torch.cat([c.inputs for c in chunks]), s.inputs)
    assert [c.index for c in windows(s, start=3)] == list(range(3, len(s)))


def test_reset_state_zeroes_only_flagged_columns():
    h = torch.ones(2, 3, 4)
    c = torch.full((2, 3, 4), 2.0)
    h2, c2 = reset_state((h, c), torch.tensor([False, True, False]))
    assert h2[:, 1].abs().sum() == 0 and c2[:, 1].abs().sum() == 0
    assert torch.equal(h2[:, [0, 2]], h[:, [0, 2]])
    assert detach_state((h.requires_grad_(),))[0].requires_grad is False


def _sgd_cfg(**kw):
    base = dict(epochs=1, batch_size=4, bptt=8, optimizer="sgd", lr=0.5, momentum=0.0, weight_decay=0.0, device="cpu",
                schedule="constant", warmup_steps=0, clip_norm=0.0, patience=0, progress="none")
    return TrainConfig(**{**base, **kw})


def test_tbptt_k1_equals_k2_matches_manual_chunking(tiny_lm, toy_streams):
    streams = toy_streams()
    model_a, model_b = tiny_lm(seed=1), tiny_lm(seed=1)
    Trainer(model_a, _sgd_cfg()).fit(StreamData(streams))
    opt = torch.optim.SGD(model_b.parameters(), lr=0.5)
    state = None
    for chunk in windows(streams):
        out = model_b(chunk, reset_state(state, chunk.reset))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        state = detach_state(out.state)
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        assert_close(pa, pb)


def test_tbptt_k2_backpropagates_through_the_previous_chunk(tiny_lm, toy_streams):
    streams = toy_streams(n_docs=4, length=40)
    c0, c1 = streams.chunk(0), streams.chunk(1)
    model = tiny_lm(seed=2)
    step = TBPTTStep(k1=8, k2=16)
    step.forward(model, c0).loss.backward()
    step.after_update()
    model.zero_grad()
    step.forward(model, c1).loss.backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    out0 = model(c0, None)  # manual: chunk 1's loss through both chunks, from a fresh state
    model(c1, reset_state(out0.state, c1.reset)).loss.backward()
    for g, p in zip(got, model.parameters()):
        assert_close(g, p.grad)
    # with k2 == k1 the first chunk would receive no gradient from chunk 1's loss: they differ
    model.zero_grad()
    model(c1, detach_state(out0.state)).loss.backward()
    assert not torch.allclose(model.embed.weight.grad, got[0])


def test_loss_falls_on_a_learnable_stream(tiny_lm, toy_streams):
    streams = toy_streams(n_docs=8, length=160)
    model = tiny_lm(seed=0, hidden=32)
    trainer = Trainer(model, _sgd_cfg(optimizer="adam", lr=0.02, epochs=3))
    before = trainer.evaluate(StreamData(streams))["loss"]
    trainer.fit(StreamData(streams))
    after = trainer.evaluate(StreamData(streams))["loss"]
    assert before > 1.8  # about ln(8) at init
    assert after < 0.3, (before, after)


def test_batchify_resets_every_stream_every_r_chunks_staggered():
    doc = torch.arange(4 * 8 * 12 + 1)  # one document: 4 streams of 24 chunks of 4 steps (k1 = 4, B = 4)
    plain = batchify([doc], batch_size=1, k1=4)
    assert plain.starts[1:].sum() == 0  # without it: one reset per stream, at its start
    s = batchify([doc[i * 96:(i + 1) * 96 + 1] for i in range(4)], batch_size=4, k1=4, reset_every=4)
    assert s.starts[:9].T.int().tolist() == [[1, 0, 0, 0, 1, 0, 0, 0, 1],  # the module picture
                                             [1, 0, 0, 1, 0, 0, 0, 1, 0],
                                             [1, 0, 1, 0, 0, 0, 1, 0, 0],
                                             [1, 1, 0, 0, 0, 1, 0, 0, 0]]
    ages = state_ages(s.starts)
    assert ages.max() == 3  # never carried through more than 4 chunks
    assert all(sorted(row.tolist()) == [0, 1, 2, 3] for row in ages[4:])  # every update: every age once
    unstaggered = batchify([doc[i * 96:(i + 1) * 96 + 1] for i in range(4)], batch_size=4, k1=4)
    assert torch.equal(s.inputs, unstaggered.inputs) and torch.equal(s.targets, unstaggered.targets)


def test_batchify_refuses_a_negative_reset_interval():
    with pytest.raises(ValueError, match="reset_every must be >= 0"):
        batchify([torch.arange(20)], batch_size=1, k1=4, reset_every=-1)
