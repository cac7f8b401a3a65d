"""`rnnkit train lm --model markov`: the Kneser-Ney n-gram baseline through the LM task's CLI."""
import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch.testing import assert_close

from rnnkit.tasks.lm.config import LMModelConfig, LMRunConfig
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.tasks.lm.data import load_corpus
from rnnkit.data.vocab import Vocabulary
from rnnkit.tasks.baselines.markov import KneserNey
from rnnkit.tasks.lm.model import load_run
from rnnkit.tasks.lm.markov import MarkovLM

TEXT = ("the quick brown fox jumps over the lazy dog. " * 30 + "\n") * 4 + "a cat sat on the mat.\n" * 20
HELD_OUT = "the lazy cat jumps over the quick dog on a mat.\n"


@pytest.fixture
def files(tmp_path):
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text(TEXT)
    test.write_text(HELD_OUT)
    return train, test


def _train(train, run, *more):
    return main(["train", "lm", "--model", "markov", "--order", "3", "--data", str(train), "--out", str(run),
                 *more])


def test_train_evaluate_generate_end_to_end(files, tmp_path, capsys):
    train, test = files
    run = tmp_path / "run"
    assert _train(train, run) == 0
    assert "validation: loss" in capsys.readouterr().out
    for name in ("checkpoints/last.safetensors", "config.yaml", "tokenizer.json", "result.json"):
        assert (run / name).exists(), name
    saved = load_file(run / "checkpoints" / "last.safetensors")  # plain tensors, nothing to unpickle
    assert set(saved) == {f"level{k}.{t}" for k in range(3) for t in ("keys", "counts")}
    assert saved["level2.keys"].shape[1] == 3

    # the saved counts are those of a fit on the same training split and tokenizer as the RNN path
    cfg = C.from_dict(LMRunConfig, C.load_yaml(run / "config.yaml"))
    assert cfg.model.model == "markov" and cfg.model.order == 3
    corpus = load_corpus(cfg.data)
    tok = Vocabulary.build(cfg.data.tokenizer, corpus.train, cfg.data.vocab_size, cfg.data.min_freq)
    fresh = KneserNey(3, tok.vocab_size).fit(tok.encode(d) for d in corpus.train)
    lm = load_run(run)
    assert lm.tokenizer.to_dict() == tok.to_dict()
    assert [dict(level) for level in lm.model.kn.counts] == [dict(level) for level in fresh.counts]

    # evaluate's numbers are the model's own log-probabilities
    assert main(["evaluate", str(run), "--data", str(test), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    ids = tok.encode(HELD_OUT)
    nll = -sum(math.log(fresh.prob(ids[max(0, i - 2):i], w)) for i, w in enumerate(ids))
    assert m["tokens"] == len(ids) and m["chars"] == len(HELD_OUT)
    assert m["loss"] == pytest.approx(nll / len(ids), rel=1e-12)
    assert m["ppl"] == pytest.approx(math.exp(nll / len(ids)), rel=1e-12)
    assert m["bpc"] == pytest.approx(nll / len(HELD_OUT) / math.log(2), rel=1e-12)
    assert main(["evaluate", str(run), "--data", str(test)]) == 0
    assert "perplexity" in capsys.readouterr().out

    assert main(["generate", str(run), "--prompt", "the ", "--length", "40", "--seed", "3"]) == 0
    text = capsys.readouterr().out.rstrip("\n")
    assert text.startswith("the ") and len(text) == 44 and set(text) <= set(TEXT)
    assert main(["generate", str(run), "--prompt", "the ", "--length", "40", "--seed", "3"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == text  # seeded sampling repeats
    assert main(["generate", str(run), "--prompt", "the quick brown", "--length", "10", "--greedy"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == "the quick brown fox jumps"


def test_log_probs_equal_the_counts_and_carry_the_context():
    kn = KneserNey(3, 6).fit([[1, 2, 3, 1, 2, 4, 1, 2, 3], [5, 1, 2]])
    model = MarkovLM(kn)
    for ctx in [(), (1,), (1, 2), (0, 1, 2), (5, 5), (3, 0)]:
        lp = model.log_probs(ctx)
        assert_close(lp.exp(), torch.tensor(kn.distribution(ctx), dtype=torch.float64))
        assert lp.exp().sum().item() == pytest.approx(1.0)
    seq = torch.tensor([[1, 2, 3, 1]]).T                              # (T, B=1)
    whole, _ = model.logits(seq)
    a, state = model.logits(seq[:2])
    b, _ = model.logits(seq[2:], state)
    assert_close(torch.cat([a, b]), whole)                           # chunked == whole sequence
    step_state, steps = None, []
    for t in range(4):
        logits, step_state = model.step(seq[t], step_state)
        steps.append(logits)
    assert_close(torch.stack(steps), whole)                          # step by step == whole sequence
    assert model.token_log_probs([1, 2, 3]) == pytest.approx(
        [math.log(kn.prob([], 1)), math.log(kn.prob([1], 2)), math.log(kn.prob([1, 2], 3))])


@pytest.mark.parametrize("order", ["0", "-2", "11"])
def test_bad_order_is_a_clear_error(files, tmp_path, capsys, order):
    assert _train(files[0], tmp_path / "run", "--order", order) == 2
    err = capsys.readouterr().err
    assert f"order must be an integer from 1 to 10 (n-gram order of model=markov), got {order}" in err
    assert not (tmp_path / "run").exists()
    with pytest.raises(C.ConfigError, match="order must be an integer"):
        LMModelConfig(model="markov", order=0)
    with pytest.raises(C.ConfigError, match="discount must be in"):
        LMModelConfig(model="markov", discount=1.0)


def test_markov_runs_refuse_resume_and_diagnose(files, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(files[0], run) == 0
    assert main(["train", "lm", "--out", str(run), "--resume"]) == 2
    assert "fitted in one pass, there is nothing to resume" in capsys.readouterr().err
    assert main(["diagnose", str(run)]) == 2
    assert "diagnose measures recurrent layers" in capsys.readouterr().err


def test_rnn_only_flags_are_an_error_for_markov(files, tmp_path, capsys):
    train, _ = files
    run = tmp_path / "run"
    assert _train(train, run, "--hidden", "32", "--cell", "gru", "--epochs", "3") == 2
    err = capsys.readouterr().err
    for flag in ("--hidden (model.hidden=32)", "--cell (model.cell='gru')", "--epochs (train.epochs=3)"):
        assert flag in err
    assert "--order" not in err.split("do not apply")[0]   # the Markov model's own flags are not named
    assert not (run / "checkpoints").exists()
    # a flag given at its default value is still a flag that does not apply
    default_hidden = str(LMModelConfig().hidden)
    assert _train(train, run, "--hidden", default_hidden) == 2
    assert f"--hidden (model.hidden={default_hidden})" in capsys.readouterr().err
    # and so is an RNN-only key of a --config file, at any value
    yaml_file = tmp_path / "m.yaml"
    yaml_file.write_text(f"model:\n  hidden: {default_hidden}\n")
    assert _train(train, run, "--config", str(yaml_file)) == 2
    assert f"--hidden (model.hidden={default_hidden})" in capsys.readouterr().err
    assert not (run / "checkpoints").exists()
    # its own flags, the data options and display flags are fine; defaults are never reported
    assert _train(train, run, "--discount", "0.5", "--progress", "none") == 0
