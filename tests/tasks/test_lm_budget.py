"""`rnnkit train lm --max-time S`: the epoch limit follows the budget unless the user gives --epochs, and the
validation part of a single file is its last 10%."""
import json

import pytest

from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.tasks.lm.config import LMDataConfig, LMRunConfig, epochs_follow_budget
from rnnkit.tasks.lm.data import load_corpus
from tiny_files import LM_TEXT

TINY = ["--device", "cpu", "--hidden", "16", "--layers", "1", "--batch-size", "4", "--bptt", "16", "--lr", "0.02",
        "--progress", "plain", "--log-every", "50", "--warmup-steps", "2", "--tensorboard", "off", "--threads", "1"]


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text(LM_TEXT)
    return p


def test_epochs_follow_the_budget_unless_given():
    cfg = C.from_dict(LMRunConfig, {"train": {"max_time": 900.0, "epochs": 30}})  # e.g. a preset's 30
    assert epochs_follow_budget(cfg).train.epochs == 0
    assert epochs_follow_budget(cfg, {("train", "epochs")}).train.epochs == 30  # the user's own count stays
    no_budget = C.from_dict(LMRunConfig, {})
    assert epochs_follow_budget(no_budget).train.epochs == no_budget.train.epochs


def test_train_with_a_time_budget_runs_until_it_is_spent(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["--data", str(corpus), "--max-chars", "500"] + TINY  # about 7 updates per epoch
    # a CPU-time budget: as many updates on a busy machine as on a quiet one (about 140 of 7 ms each)
    assert main(["train", "lm", "--out", str(run), "--max-time", "1", "--clock", "cpu", "--eval-every", "100000"]
                + argv) == 0
    assert "stopped: max_time" in capsys.readouterr().out
    assert C.load_yaml(run / "config.yaml")["train"]["epochs"] == 0
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "epoch"]
    assert len(epochs) > 10  # the default limit (10 epochs of about 7 updates) no longer stops it
    run2 = tmp_path / "run2"
    assert main(["train", "lm", "--out", str(run2), "--max-time", "60", "--epochs", "2"] + argv) == 0
    assert "stopped: epochs done" in capsys.readouterr().out


def test_the_validation_part_is_the_last_tenth_of_a_file(corpus):
    text = corpus.read_text()
    c = load_corpus(LMDataConfig(data=str(corpus), val_fraction=0.1))
    cut = round(len(text) * 0.9)
    assert c.train == [text[:cut]] and c.val == [text[cut:]]


def test_training_streams_carry_no_state_past_max_carry_and_mix_its_ages(tmp_path):
    """A single long text cut into a few streams used to carry each state through the stream's whole share:
    a state's age then followed the position in the epoch (every update of an epoch's later part saw only
    old states, validation only young ones). The training layout resets every max_carry tokens, staggered."""
    from rnnkit.data.vocab import Vocabulary
    from rnnkit.tasks.lm.data import lm_streams
    from rnnkit.train.tbptt import state_ages
    p = tmp_path / "long.txt"
    p.write_text(LM_TEXT * 8)  # 86k characters: 4 training streams of about 19k
    cfg = LMDataConfig(data=str(p))
    assert cfg.max_carry == 16384  # the default
    c = load_corpus(cfg)
    train, val = lm_streams(c, Vocabulary.build("char", c.train, 100, 1), 4, 128, cfg.max_carry)
    ages = state_ages(train.starts)  # in chunks of 128 tokens
    assert ages.max() == 16384 // 128 - 1
    assert len(train) > 4 * 32 and (ages[32:].float().std(dim=1) > 5).all()  # each update: young and old
    assert val.starts[1:].sum() == 0  # validation: each stream scored from its start, state carried through


def test_a_run_saved_before_max_carry_resumes_on_the_layout_it_was_trained_on(tmp_path, capsys):
    """Its saved config has no max_carry: resuming fills in 0 (the state carried through each stream, as it was
    trained), not today's default, whose layout would not match the run's batches."""
    from rnnkit.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    run, text = tmp_path / "run", tmp_path / "twice.txt"
    text.write_text(LM_TEXT * 8)  # 4 training streams of about 19k characters: longer than max_carry's 16384
    argv = ["--data", str(text), "--max-carry", "0"] + TINY + ["--bptt", "128"]
    assert main(["train", "lm", "--out", str(run), "--epochs", "1"] + argv) == 0
    steps = json.loads((run / "result.json").read_text())["steps"]
    for path in (run / "checkpoints").glob("*.safetensors"):  # as rnnkit saved it before the setting existed
        ck = load_checkpoint(path)
        del ck.meta["config"]["data"]["max_carry"]
        save_checkpoint(path, Checkpoint(ck.tensors, ck.meta))
    capsys.readouterr()
    assert main(["train", "lm", "--out", str(run), "--resume", "--epochs", "2"]) == 0
    assert json.loads((run / "result.json").read_text())["steps"] > steps


def test_an_lstm_trains_in_bf16_by_default_only_on_a_cpu_with_bf16_and_in_the_policys_shapes():
    from rnnkit.tasks.lm.config import TRAIN_DEFAULTS, cpu_bf16_default
    cfg = C.from_dict(LMRunConfig, TRAIN_DEFAULTS)
    assert cfg.train.precision == "fp32"
    assert cpu_bf16_default(cfg, on_cpu=True, bf16=True).train.precision == "bf16"
    assert cpu_bf16_default(cfg, on_cpu=True, bf16=False).train.precision == "fp32"  # emulated bf16 is slower
    assert cpu_bf16_default(cfg, on_cpu=False, bf16=True).train.precision == "fp32"
    assert cpu_bf16_default(cfg, {("train", "precision")}, on_cpu=True, bf16=True).train.precision == "fp32"
    for other in ({"model": {"cell": "gru"}}, {"model": {"model": "markov"}}, {"train": {"batch_size": 4}},
                  {"train": {"bptt": 8}}, {"model": {"hidden": 1024}}):
        changed = C.from_dict(LMRunConfig, C.merge(TRAIN_DEFAULTS, other))
        assert cpu_bf16_default(changed, on_cpu=True, bf16=True).train.precision == "fp32", other


def test_the_command_line_trains_in_bf16_where_the_cpu_has_it(corpus, tmp_path, monkeypatch):
    from rnnkit.tasks.lm import task as lm_task
    monkeypatch.setattr(lm_task, "cpu_has_native_bf16", lambda: True)
    argv = ["train", "lm", "--data", str(corpus), "--max-chars", "400", "--max-steps", "1", "--eval-every", "1",
            "--max-eval-batches", "1"] + TINY + ["--batch-size", "8"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    assert C.load_yaml(tmp_path / "a" / "config.yaml")["train"]["precision"] == "bf16"
    assert main(argv + ["--out", str(tmp_path / "b"), "--precision", "fp32"]) == 0
    assert C.load_yaml(tmp_path / "b" / "config.yaml")["train"]["precision"] == "fp32"
    monkeypatch.setattr(lm_task, "cpu_has_native_bf16", lambda: False)
    assert main(argv + ["--out", str(tmp_path / "c")]) == 0
    assert C.load_yaml(tmp_path / "c" / "config.yaml")["train"]["precision"] == "fp32"
    monkeypatch.setattr(lm_task, "cpu_has_native_bf16", lambda: True)   # resumed where bf16 is: stays float32
    assert main(["train", "lm", "--out", str(tmp_path / "c"), "--resume", "--max-steps", "2"]) == 0
    assert C.load_yaml(tmp_path / "c" / "config.yaml")["train"]["precision"] == "fp32"
