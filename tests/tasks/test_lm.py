import math

import pytest
import torch
from torch.testing import assert_close

from rnnkit.config import ConfigError
from rnnkit.tasks.lm.config import LMModelConfig
from rnnkit.data import build_tokenizer
from rnnkit.tasks.lm.model import LanguageModel, LMMeter, generate, sample_next
from rnnkit.train import Chunk, ModelOutput


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "jordan"])
def test_whole_sequence_equals_chunked_equals_step_by_step(cell):
    torch.manual_seed(0)
    model = LanguageModel(11, LMModelConfig(cell=cell, hidden=12, layers=2, dropout=0.0)).eval()
    x = torch.randint(0, 11, (10, 3))
    full, _ = model.logits(x)
    a, state = model.logits(x[:4])
    b, _ = model.logits(x[4:], state)
    assert_close(torch.cat([a, b]), full)
    state, steps = None, []
    for t in range(10):
        logits, state = model.step(x[t], state)
        steps.append(logits)
    assert_close(torch.stack(steps), full)


def test_weight_tying_shares_the_parameter_and_checks_sizes():
    model = LanguageModel(20, LMModelConfig(hidden=8, layers=1))
    assert model.decoder.weight is model.embed.weight
    with pytest.raises(ConfigError, match="tie_weights needs embedding == hidden"):
        LMModelConfig(hidden=8, embedding=4)
    untied = LanguageModel(20, LMModelConfig(hidden=8, embedding=4, tie_weights=False))
    assert untied.decoder.weight.shape == (20, 8)


def test_loss_ignores_padding_and_meter_reports_ppl_and_bpc():
    model = LanguageModel(5, LMModelConfig(hidden=8, layers=1, dropout=0.0))
    x = torch.randint(0, 5, (4, 2))
    y = x.clone()
    y[2:, 1] = -100
    out = model(Chunk(x, y, torch.zeros(2, dtype=torch.bool)))
    assert out.n == 6
    logp = out.logits.log_softmax(-1)
    manual = -torch.stack([logp[t, b, y[t, b]] for t in range(4) for b in range(2) if y[t, b] >= 0]).mean()
    assert_close(out.loss, manual)
    meter = LMMeter(chars_per_token=2.0)
    meter.update(ModelOutput(None, torch.tensor(1.0), n=3), None)
    meter.update(ModelOutput(None, torch.tensor(2.0), n=1), None)
    m = meter.compute()
    assert m["loss"] == pytest.approx(1.25) and m["ppl"] == pytest.approx(math.exp(1.25))
    assert m["bpc"] == pytest.approx(1.25 / 2.0 / math.log(2))


def test_sampling_rules():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    assert sample_next(logits, temperature=0).item() == 1
    g = torch.Generator().manual_seed(0)
    draws = {sample_next(logits, 1.0, top_k=2, generator=g).item() for _ in range(200)}
    assert draws == {1, 3}
    probs = logits.softmax(-1)[0]  # 0.032, 0.644, 0.087, 0.237: top_p 0.7 keeps tokens 1 and 3
    draws = {sample_next(logits, 1.0, top_p=0.7, generator=g).item() for _ in range(200)}
    assert draws == {1, 3} and probs[1] < 0.7
    draws = {sample_next(logits, 1.0, top_p=0.5, generator=g).item() for _ in range(50)}
    assert draws == {1}


def test_generate_streams_pieces_and_never_reruns_the_prompt():
    tok = build_tokenizer("char", ["hello world"])
    torch.manual_seed(0)
    model = LanguageModel(tok.vocab_size, LMModelConfig(hidden=8, layers=1, dropout=0.0))
    lengths = []
    original = model.logits

    def spy(inputs, state=None):
        lengths.append(inputs.shape[0])
        return original(inputs, state)
    model.logits = spy
    pieces = list(generate(model, tok, "hello", 7, temperature=1.0, seed=1))
    assert len(pieces) == 7 and all(len(p) == 1 for p in pieces)
    assert lengths == [5] + [1] * 6  # the prompt once, then one token per step
    again = list(generate(model, tok, "hello", 7, temperature=1.0, seed=1))
    assert again == pieces


def test_generation_matches_the_full_forward_distribution():
    tok = build_tokenizer("char", ["abcdef"])
    torch.manual_seed(0)
    model = LanguageModel(tok.vocab_size, LMModelConfig(hidden=8, layers=2, dropout=0.0)).eval()
    text = "".join(generate(model, tok, "ab", 6, temperature=0))
    ids = torch.tensor(tok.encode("ab" + text)).view(-1, 1)
    full, _ = model.logits(ids[:-1])
    full[..., tok.unk_id] = float("-inf")  # generation never writes <unk>
    assert full.argmax(-1).view(-1)[1:].tolist() == ids.view(-1)[2:].tolist()  # greedy = argmax of full pass
    with pytest.raises(ConfigError, match="temperature"):
        list(generate(model, tok, "ab", 3, temperature=-1))
