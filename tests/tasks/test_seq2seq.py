"""Sequence-to-sequence machinery: attention, teacher forcing vs step decoding, greedy and beam
search, data reading and tokenisation."""
import math

import pytest
import torch
from torch.nn import functional as F

from rnnkit.config import cell_names
from rnnkit.data.readers import DataError
from rnnkit.modules.attention import build_attention
from rnnkit.tasks.translate.config import ConfigError, DecodeConfig, PairDataConfig, Seq2SeqModelConfig
from rnnkit.tasks.translate.data import (EncodedPair, Pair, collate, parse_tsv, read_parallel, read_tsv,
                                       split_pairs)
from rnnkit.tasks.translate.model import Seq2SeqModel, teacher_forcing_ratio
from rnnkit.modules.search import SpecialIds, beam_search, greedy_search, max_lengths
from rnnkit.tasks.translate.vocab import build_vocab, load_vocab

PAD, BOS, EOS = 0, 1, 2                    # the vocabulary convention's ids
SPECIAL = SpecialIds(PAD, BOS, EOS)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


ATTENTIONS = [("bahdanau", True), ("bahdanau", False), ("dot", True), ("dot", False),
              ("general", True), ("general", False), ("none", False)]


def tiny_model(attention="general", input_feed=False, cell="gru", seed=0, **kw):
    torch.manual_seed(seed)
    cfg = Seq2SeqModelConfig(cell=cell, embedding=8, hidden=6, encoder_layers=2, decoder_layers=2,
                             attention=attention, input_feed=input_feed, dropout=0.0, label_smoothing=0.0, **kw)
    return Seq2SeqModel(cfg, 13, 11).eval()


def padded_batch():
    return collate([EncodedPair([3, 4, 5, 6, 7], [6, 7]), EncodedPair([5, 6], [7, 8, 9, 4]),
                    EncodedPair([9], [7, 3, 5])], SPECIAL)


# ------------------------------------------------------------------ attention

@pytest.mark.parametrize("kind", ["bahdanau", "dot", "general"])
@pytest.mark.parametrize("steps", [None, 4])
def test_attention_weights_sum_to_one_and_skip_padding(kind, steps):
    torch.manual_seed(0)
    att = build_attention(kind, 6, 10 if kind != "dot" else 6, 5)
    memory = torch.randn(3, 7, 10 if kind != "dot" else 6)
    lengths = torch.tensor([7, 3, 1])
    mask = torch.arange(7)[None] < lengths[:, None]
    query = torch.randn(3, 6) if steps is None else torch.randn(3, steps, 6)
    # padding content must not matter: garbage there changes nothing
    memory2 = memory.clone()
    memory2[~mask] = 1e3
    ctx, w = att(query, att.precompute(memory), memory, mask)
    ctx2, w2 = att(query, att.precompute(memory2), memory2, mask)
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
    pad = ~mask if steps is None else (~mask)[:, None, :].expand_as(w)
    assert torch.all(w[pad] == 0)
    torch.testing.assert_close(w, w2)
    torch.testing.assert_close(ctx, ctx2)


@pytest.mark.parametrize("attention,input_feed", [a for a in ATTENTIONS if a[0] != "none"])
def test_model_attention_over_steps_sums_to_one_and_never_on_padding(attention, input_feed):
    model = tiny_model(attention, input_feed)
    batch = padded_batch()
    out = model(batch)
    w = out.attention                                                   # (B, T, S)
    assert w.shape == (3, batch.tgt_in.shape[1], 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:2]))
    for i, n in enumerate(batch.src_lengths.tolist()):
        assert torch.all(w[i, :, n:] == 0)


# ------------------------------------------------------------------ teacher forcing == step decoding

def step_by_step_loss(model, batch):
    """The loss by hand: encode, then one decode_step per target position with the gold token."""
    state = model.encode(batch.src, batch.src_lengths)
    losses = []
    for t in range(batch.tgt_in.shape[1]):
        logits, _, state = model.decode_step(batch.tgt_in[:, t], state)
        losses.append(F.cross_entropy(logits, batch.tgt_out[:, t], ignore_index=PAD, reduction="sum"))
    return torch.stack(losses).sum() / (batch.tgt_out != PAD).sum()


@pytest.mark.parametrize("attention,input_feed", ATTENTIONS)
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_teacher_forced_loss_equals_step_by_step_decoding(attention, input_feed, cell):
    model = tiny_model(attention, input_feed, cell)
    batch = padded_batch()
    out = model(batch)
    manual = step_by_step_loss(model, batch)
    torch.testing.assert_close(out.loss, manual, rtol=1e-5, atol=1e-6)
    assert out.n == int((batch.tgt_out != PAD).sum())
    # gradients agree too (the whole-sequence path runs the decoder layer through its engine)
    g1 = torch.autograd.grad(out.loss, list(model.parameters()), allow_unused=True)
    g2 = torch.autograd.grad(manual, list(model.parameters()), allow_unused=True)
    for a, b in zip(g1, g2):
        if a is not None or b is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cell", cell_names())
def test_every_cell_decodes_step_by_step_like_the_whole_sequence(cell):
    model = tiny_model("general", False, cell)
    batch = padded_batch()
    torch.testing.assert_close(model(batch).loss, model(batch, step_by_step=True).loss, rtol=1e-5, atol=1e-6)
    hyps = beam_search(model, batch.src, batch.src_lengths, max_lengths(batch.src_lengths, 1.0, 2), beam=2,
                       special=SPECIAL)
    assert all(len(h[0].tokens) <= 2 + int(n) for h, n in zip(hyps, batch.src_lengths))


def test_whole_sequence_path_is_taken_when_eligible(monkeypatch):
    calls = []
    model = tiny_model("general", False)
    original = model._decode_whole
    monkeypatch.setattr(model, "_decode_whole", lambda *a: calls.append("whole") or original(*a))
    monkeypatch.setattr(model, "_decode_loop", lambda *a: pytest.fail("step loop ran on an eligible model"))
    model(padded_batch())
    assert calls == ["whole"]
    assert tiny_model("general", False).whole_sequence_ok(1.0)
    assert not tiny_model("general", True).whole_sequence_ok(1.0)
    assert not tiny_model("bahdanau", False).whole_sequence_ok(1.0)
    assert not tiny_model("dot", False).whole_sequence_ok(0.5)


def test_label_smoothing_applies_in_training_only():
    torch.manual_seed(0)
    cfg = Seq2SeqModelConfig(cell="gru", embedding=8, hidden=6, dropout=0.0, label_smoothing=0.2)
    model = Seq2SeqModel(cfg, 13, 11)
    batch = padded_batch()
    smoothed = model.train()(batch).loss
    plain = model.eval()(batch).loss
    logits = model(batch).logits
    expect = F.cross_entropy(logits.reshape(-1, 11), batch.tgt_out.reshape(-1), ignore_index=PAD,
                             label_smoothing=0.2)
    torch.testing.assert_close(smoothed, expect)
    assert not torch.allclose(smoothed, plain)


def test_tied_embeddings_share_one_tensor():
    model = tiny_model(tie_embeddings=True)
    assert model.generator.weight is model.tgt_embedding.weight
    untied = tiny_model(tie_embeddings=False)
    assert untied.generator.weight is not untied.tgt_embedding.weight


def test_scheduled_sampling_ratio_decays_to_the_final_value():
    for schedule in ("linear", "exponential", "inverse_sigmoid"):
        cfg = Seq2SeqModelConfig(teacher_forcing=0.25, sampling_schedule=schedule, sampling_steps=1000)
        ratios = [teacher_forcing_ratio(cfg, u) for u in (0, 100, 500, 1000, 5000)]
        assert ratios[0] == pytest.approx(1.0, abs=0.01)
        assert all(a >= b for a, b in zip(ratios, ratios[1:])), (schedule, ratios)
        assert ratios[-1] == pytest.approx(0.25, abs=0.02)
    assert teacher_forcing_ratio(Seq2SeqModelConfig(teacher_forcing=0.7), 10**6) == 0.7


def test_sampling_feeds_predictions_instead_of_gold_tokens():
    model = tiny_model("general", False)
    model.cfg.teacher_forcing = 0.0                                      # always the model's own tokens
    model.train()
    batch = padded_batch()
    torch.manual_seed(1)
    sampled = model(batch).loss
    model.cfg.teacher_forcing = 1.0
    forced = model(batch).loss
    assert int(model.updates) == 2                                       # counted per training batch
    assert not torch.allclose(sampled, forced)


def test_bridge_initialises_decoder_from_encoder_state():
    batch = padded_batch()
    dense, zero = tiny_model(bridge="dense"), tiny_model(bridge="zero")
    s_dense = dense.encode(batch.src, batch.src_lengths)
    s_zero = zero.encode(batch.src, batch.src_lengths)
    assert all(torch.all(c == 0) for layer in s_zero.rnn for c in layer)
    assert not torch.allclose(s_dense.rnn[0][0], torch.zeros_like(s_dense.rnn[0][0]))
    # the bridge reads each sequence's state at its true end: padding does not change it
    alone = dense.encode(batch.src[2:, :1], batch.src_lengths[2:])
    torch.testing.assert_close(alone.rnn[0][0], s_dense.rnn[0][0][2:], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ search

@pytest.mark.parametrize("attention,input_feed", ATTENTIONS)
def test_beam_size_one_equals_greedy(attention, input_feed):
    model = tiny_model(attention, input_feed, seed=3)
    batch = padded_batch()
    limits = max_lengths(batch.src_lengths, 2.0, 3)
    greedy = greedy_search(model, batch.src, batch.src_lengths, limits, special=SPECIAL)
    beam = beam_search(model, batch.src, batch.src_lengths, limits, beam=1, alpha=0.0, special=SPECIAL)
    for g, b in zip(greedy, beam):
        assert g[0].tokens == b[0].tokens
        assert g[0].log_prob == pytest.approx(b[0].log_prob, abs=1e-4)
        if attention == "none":
            assert g[0].attention is None and b[0].attention is None
        else:
            torch.testing.assert_close(g[0].attention, b[0].attention)


def test_search_output_is_independent_of_batch_padding():
    model = tiny_model("bahdanau", True, seed=4)
    batch = padded_batch()
    limits = max_lengths(batch.src_lengths, 2.0, 3)
    together = beam_search(model, batch.src, batch.src_lengths, limits, beam=3, nbest=2, special=SPECIAL)
    for i in range(3):
        n = int(batch.src_lengths[i])
        alone = beam_search(model, batch.src[i:i + 1, :n], batch.src_lengths[i:i + 1], limits[i:i + 1],
                            beam=3, nbest=2, special=SPECIAL)
        assert [h.tokens for h in alone[0]] == [h.tokens for h in together[i]]
        for a, b in zip(alone[0], together[i]):
            assert a.score == pytest.approx(b.score, abs=1e-4)
            assert a.attention.shape == (len(a.tokens) + 1, n)
            torch.testing.assert_close(a.attention, b.attention, rtol=1e-4, atol=1e-6)


class ToyState:
    def __init__(self, last):
        self.last = last

    def select(self, index):
        return ToyState(self.last.index_select(0, index))


class ToyModel:
    """A hand-built next-token table: after <s>, A (0.6) beats B (0.4), but A's continuations are
    spread (A 0.3, B 0.3, </s> 0.4) while B is followed by </s> with certainty.
    Greedy: A </s> (0.6 * 0.4 = 0.24); the best sequence is B </s> (0.4)."""
    A, B, V = 3, 4, 5

    def __init__(self, special: SpecialIds = SPECIAL):
        PAD, BOS, EOS = special.pad, special.bos, special.eos
        self.bos = BOS
        table = torch.full((self.V, self.V), 1e-9)
        table[BOS, self.A], table[BOS, self.B] = 0.6, 0.4
        table[self.A, self.A], table[self.A, self.B], table[self.A, EOS] = 0.3, 0.3, 0.4
        table[self.B, EOS] = 1.0
        table[EOS, EOS] = table[PAD, EOS] = 1.0
        self.logits = table.log()

    def encode(self, src, lengths):
        return ToyState(torch.full((src.shape[0],), self.bos, dtype=torch.long))

    def decode_step(self, y, state):
        return self.logits[y], None, ToyState(y)


def test_search_reads_the_special_ids_it_is_given():
    """Ids unlike the convention's (</s> = 0, <pad> = 1, <s> = 2): a search with constants would not stop."""
    special = SpecialIds(pad=1, bos=2, eos=0)
    toy = ToyModel(special)
    src, lengths = torch.ones(1, 3, dtype=torch.long), torch.tensor([3])
    [[g]] = greedy_search(toy, src, lengths, [6], special=special)
    [[b]] = beam_search(toy, src, lengths, [6], beam=2, special=special)
    assert g.tokens == [ToyModel.A] and g.log_prob == pytest.approx(math.log(0.24), abs=1e-6)
    assert b.tokens == [ToyModel.B] and b.log_prob == pytest.approx(math.log(0.4), abs=1e-6)
    with pytest.raises(ValueError, match="distinct"):
        SpecialIds(pad=0, bos=0, eos=2)


def test_beam_search_finds_the_higher_scoring_sequence():
    toy = ToyModel()
    src, lengths = torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 3])
    limits = [6, 6]
    greedy = greedy_search(toy, src, lengths, limits, special=SPECIAL)
    beam = beam_search(toy, src, lengths, limits, beam=2, nbest=2, special=SPECIAL)
    assert greedy[0][0].tokens == [ToyModel.A]
    assert greedy[0][0].log_prob == pytest.approx(math.log(0.24), abs=1e-6)
    best = beam[0][0]
    assert best.tokens == [ToyModel.B]
    assert best.log_prob == pytest.approx(math.log(0.4), abs=1e-6)
    assert beam[0][1].tokens == [ToyModel.A] and beam[0][1].log_prob == pytest.approx(math.log(0.24), abs=1e-6)
    assert beam[1][0].tokens == [ToyModel.B]                               # batched: every sentence


def test_length_penalty_and_max_length():
    toy = ToyModel()
    src, lengths = torch.ones(1, 3, dtype=torch.long), torch.tensor([3])
    # with a length limit of one step only </s> may be emitted
    [[h]] = beam_search(toy, src, lengths, [1], beam=2, special=SPECIAL)
    assert h.tokens == []
    [[g]] = greedy_search(toy, src, lengths, [1], special=SPECIAL)
    assert g.tokens == []
    hyps = beam_search(toy, src, lengths, [8], beam=3, nbest=3, alpha=1.0, special=SPECIAL)[0]
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    for h in hyps:
        assert h.score == pytest.approx(h.log_prob / ((5 + len(h.tokens) + 1) / 6), abs=1e-9)
    with pytest.raises(ValueError, match="nbest"):
        beam_search(toy, src, lengths, [8], beam=2, nbest=3, special=SPECIAL)


# ------------------------------------------------------------------ data

def test_bad_tsv_lines_are_reported_with_line_numbers(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Hello.\tBonjour.\nno tab here\n\nThanks.\t\n\tMerci.\nYes.\tOui.\textra\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_tsv(path)
    msg = str(err.value)
    assert str(path) in msg and "3 bad line(s)" in msg
    assert "line 2: expected source<TAB>target" in msg
    assert "line 4: empty target" in msg and "line 5: empty source" in msg
    assert "line 1" not in msg and "line 6" not in msg


def test_bad_lines_can_be_skipped_with_a_warning(tmp_path, capsys):
    pairs = parse_tsv("a\tb\nbad\nc\td\tattribution\n", "x.tsv", on_bad="skip")
    assert [(p.source, p.target, p.line) for p in pairs] == [("a", "b", 1), ("c", "d", 3)]
    assert "line 2" in capsys.readouterr().err
    assert parse_tsv("a\tb\n", reverse=True)[0] == Pair("b", "a", 1)


def test_two_aligned_files(tmp_path):
    (tmp_path / "en.txt").write_text("Hello.\nThanks.\n\nYes.\n", encoding="utf-8")
    (tmp_path / "fr.txt").write_text("Bonjour.\nMerci.\n\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 4: empty target"):
        read_parallel(tmp_path / "en.txt", tmp_path / "fr.txt")
    (tmp_path / "fr2.txt").write_text("Bonjour.\n", encoding="utf-8")
    with pytest.raises(DataError, match="same number of lines"):
        read_parallel(tmp_path / "en.txt", tmp_path / "fr2.txt")


def test_split_is_seeded_and_keeps_a_source_in_one_split():
    pairs = [Pair(f"s{i % 40}", f"t{i}") for i in range(100)]           # 40 sources, several targets each
    a = split_pairs(pairs, 0.2, 0.2, seed=1)
    assert a == split_pairs(pairs, 0.2, 0.2, seed=1)
    assert a != split_pairs(pairs, 0.2, 0.2, seed=2)
    sources = [{p.source for p in part} for part in a]
    assert not (sources[0] & sources[1]) and not (sources[0] & sources[2]) and not (sources[1] & sources[2])
    assert sum(len(p) for p in a) == 100 and len(sources[1]) == 8 and len(sources[2]) == 8


@pytest.mark.parametrize("kind", ["char", "word", "bpe", "unigram"])
def test_tokenizers_round_trip_and_save(kind):
    texts = ["Je suis fatigué.", "Il fait beau, n'est-ce pas ?", "C'est l'été !"] * 4
    vocab = build_vocab(kind, texts, vocab_size=80)
    again = load_vocab(vocab.to_dict())
    for t in texts[:3]:
        ids = vocab.encode(t)
        assert min(ids) >= 3                                               # specials stay reserved
        assert vocab.decode(ids + [EOS, 7]) == t                           # stops at </s>
        assert again.encode(t) == ids


def test_word_vocabulary_comes_from_the_training_text_only():
    vocab = build_vocab("word", ["the cat sat"])
    assert vocab.decode(vocab.encode("the dog sat")) == "the <unk> sat"


def test_configs_validate():
    with pytest.raises(ConfigError, match="input_feed"):
        Seq2SeqModelConfig(attention="none", input_feed=True)
    with pytest.raises(ConfigError, match="attention"):
        Seq2SeqModelConfig(attention="luong")
    with pytest.raises(ConfigError, match="nbest"):
        DecodeConfig(beam=2, nbest=3)
    with pytest.raises(ConfigError, match="source and target"):
        PairDataConfig(source="a.txt")
    with pytest.raises(ConfigError, match="val_fraction"):
        PairDataConfig(val_fraction=0.5, test_fraction=0.45)


# ------------------------------------------------------------------ GPU

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("attention,input_feed", [("bahdanau", True), ("general", False)])
def test_cuda_loss_and_beam_search_match_cpu(attention, input_feed):
    model = tiny_model(attention, input_feed, cell="lstm", seed=5)
    batch = padded_batch()
    limits = max_lengths(batch.src_lengths, 2.0, 3)
    cpu_loss = model(batch).loss
    cpu_hyps = beam_search(model, batch.src, batch.src_lengths, limits, beam=3, nbest=2, special=SPECIAL)
    model.cuda()
    gpu_batch = batch.to("cuda")
    assert gpu_batch.src.is_cuda and not gpu_batch.src_lengths.is_cuda
    torch.testing.assert_close(model(gpu_batch).loss.cpu(), cpu_loss, rtol=1e-4, atol=1e-5)
    gpu_hyps = beam_search(model, gpu_batch.src, gpu_batch.src_lengths, limits, beam=3, nbest=2,
                           special=SPECIAL)
    for c, g in zip(cpu_hyps, gpu_hyps):
        assert [h.tokens for h in c] == [h.tokens for h in g]
        torch.testing.assert_close(g[0].attention, c[0].attention, rtol=1e-3, atol=1e-5)
    greedy = greedy_search(model, gpu_batch.src, gpu_batch.src_lengths, limits, special=SPECIAL)
    assert len(greedy) == 3


def test_replace_unk_copies_the_most_attended_source_word():
    from rnnkit.tasks.translate.config import TranslateRunConfig
    from rnnkit.modules.search import Hypothesis
    from rnnkit.tasks.translate.translator import Translator
    src = build_vocab("word", ["Hello Tom ."])
    tgt = build_vocab("word", ["Bonjour ."])
    src_ids = src.encode("Hello Tom .")
    out = tgt.encode("Bonjour Paul .")                                     # Paul is unknown: ▁<unk>
    assert out[1] in tgt.unknown_ids()
    attention = torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.0, 0.1, 0.9], [0.0, 0.0, 1.0]])
    tr = Translator(tiny_model(), src, tgt, TranslateRunConfig())
    h = Hypothesis(out, -1.0, -1.0, attention)
    assert tr._translation(src_ids, h).text == "Bonjour <unk> ."
    assert tr._translation(src_ids, h, replace_unk=True).text == "Bonjour Tom ."


def test_tsv_inside_zip_and_gz(tmp_path):
    import gzip
    import zipfile
    text = "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org\nHi.\tSalut !\n"
    with zipfile.ZipFile(tmp_path / "fra-eng.zip", "w") as zf:
        zf.writestr("_about.txt", "about the corpus")
        zf.writestr("fra.txt", text)
    pairs = read_tsv(tmp_path / "fra-eng.zip")
    assert [(p.source, p.target) for p in pairs] == [("Go.", "Va !"), ("Hi.", "Salut !")]
    (tmp_path / "p.tsv.gz").write_bytes(gzip.compress((text + "broken\n").encode()))
    with pytest.raises(DataError, match=r"p.tsv.gz: 1 bad line\(s\) of 3: line 3"):
        read_tsv(tmp_path / "p.tsv.gz")


@pytest.mark.parametrize("bidirectional,enc_layers,dec_layers", [(False, 1, 3), (True, 3, 1)])
def test_encoder_and_decoder_depths_may_differ(bidirectional, enc_layers, dec_layers):
    torch.manual_seed(0)
    cfg = Seq2SeqModelConfig(cell="lstm", embedding=8, hidden=6, encoder_layers=enc_layers,
                             decoder_layers=dec_layers, bidirectional=bidirectional, dropout=0.0)
    model = Seq2SeqModel(cfg, 13, 11).eval()
    batch = padded_batch()
    state = model.encode(batch.src, batch.src_lengths)
    assert len(state.rnn) == dec_layers and state.memory.shape == (3, 5, 6 * (2 if bidirectional else 1))
    torch.testing.assert_close(model(batch).loss, step_by_step_loss(model, batch), rtol=1e-5, atol=1e-6)


def test_gradient_flow_diagnostics_over_source_positions(tmp_path):
    from rnnkit.train.diagnostics import run_diagnostics
    batch = padded_batch()
    for attention, feed in (("general", False), ("bahdanau", True)):
        model = tiny_model(attention, feed, cell="lstm")
        report = run_diagnostics(model, batch, tmp_path / attention)
        assert (tmp_path / attention / "gradient_flow.png").is_file()
        flows = report["grad_norm_last"]
        assert len(flows) == 4                                              # 2 layers x 2 directions
        first = next(iter(flows.values())) if isinstance(flows, dict) else flows[0]
        assert len(first) == batch.src.shape[1] and all(math.isfinite(v) for v in first)
