import argparse
import functools
import json
import re
import subprocess
import sys

import pytest
import yaml

from rnnkit.tasks.lm.config import LMModelConfig, LMRunConfig
from rnnkit import config as C
from rnnkit.cli import all_commands, build_parser, main
from rnnkit.cli.flags import config_from_args
from rnnkit.tasks import TASKS
from rnnkit.tasks.lm import commands as lm_commands, demo_check
from tiny_files import LM_TEXT

LM = TASKS["lm"]
PRESETS = [(name, preset) for name, task in TASKS.items() for preset in task.presets()]

TINY = ["--device", "cpu", "--hidden", "16", "--layers", "1", "--batch-size", "4", "--bptt", "16", "--epochs", "2",
        "--lr", "0.02", "--progress", "plain", "--log-every", "5", "--warmup-steps", "2", "--tensorboard", "off"]


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text(LM_TEXT)
    return p


def test_help_for_every_command(capsys):
    argvs = [[], ["train"]] + [["train", t] for t in TASKS] + [[c] for c in all_commands()]
    for argv in argvs:
        with pytest.raises(SystemExit) as exit_:
            main(argv + ["--help"])
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: rnnkit"), argv
    assert set(all_commands()) >= {"generate", "evaluate", "predict", "compare", "diagnose", "demo", "translate"}


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "rnnkit", "--help"], capture_output=True, text=True, check=True)
    assert "generate" in out.stdout and "demo" in out.stdout


@pytest.mark.parametrize("task,name", PRESETS)
def test_every_shipped_preset_parses(task, name):
    args = build_parser().parse_args(["train", task, "--preset", name])
    cfg = config_from_args(TASKS[task], args, base=dict(TASKS[task].train_defaults))
    assert isinstance(cfg, TASKS[task].run_config)


def test_presets_are_shipped():
    assert {"demo", "char-small", "char-large", "word", "subword"} <= set(LM.presets())
    assert all(task.presets() for task in TASKS.values()), "every task ships at least one preset"


def test_a_preset_of_another_task_is_a_one_line_error(capsys):
    assert main(["train", "forecast", "--preset", "char-small"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown preset 'char-small' for task forecast" in err
    assert all(name in err for name in TASKS["forecast"].presets())


def test_yaml_config_round_trip(tmp_path):
    cfg = LMRunConfig(model=LMModelConfig(cell="gru", hidden=33, tie_weights=False, embedding=7),
                        train=C.TrainConfig(lr=0.123, nesterov=True, optimizer="sgd", bptt=10, bptt_k2=30))
    C.save_yaml(cfg, tmp_path / "c.yaml")
    assert C.from_dict(LMRunConfig, C.load_yaml(tmp_path / "c.yaml")) == cfg


def test_flag_precedence_defaults_preset_file_flags(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"model": {"hidden": 48, "layers": 3}}))
    args = build_parser().parse_args(["train", "lm", "--preset", "demo", "--config", str(tmp_path / "c.yaml"),
                                      "--layers", "4", "--no-tie-weights"])
    cfg = config_from_args(LM, args)
    assert (cfg.model.hidden, cfg.model.layers, cfg.model.tie_weights) == (48, 4, False)
    assert cfg.train.max_time == 60  # from the demo preset
    assert cfg.train.weight_decay == 0.0 and C.TrainConfig().weight_decay == 0.01


@pytest.mark.parametrize("argv,message", [
    (["--data", "/no/such/file.txt"], "no such file or directory"),
    (["--dropout", "1.5"], "dropout must be in [0, 1)"),
    (["--bptt", "8", "--bptt-k2", "12"], "bptt_k2=12 must be 0 or a multiple of bptt=8"),
    (["--hidden", "0"], "hidden must be positive"),
    (["--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
])
def test_bad_values_give_clear_errors(argv, message, capsys, tmp_path):
    assert main(["train", "lm", "--out", str(tmp_path / "r")] + argv) == 2
    assert message in capsys.readouterr().err


def test_bad_config_file_keys(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("model: {hiden: 3}\n")
    assert main(["train", "lm", "--config", str(tmp_path / "c.yaml")]) == 2
    assert "unknown key(s) hiden in model" in capsys.readouterr().err


def test_invalid_choice_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "lm", "--cell", "transformer"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_non_utf8_and_binary_training_files(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello \xff world")
    assert main(["train", "lm", "--data", str(bad), "--out", str(tmp_path / "r")] + TINY) == 2
    assert "bad.txt: not valid UTF-8 at byte offset 6" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["train", "lm", "--data", str(empty), "--out", str(tmp_path / "r")] + TINY) == 2
    assert "empty.txt: file is empty" in capsys.readouterr().err


def test_train_generate_evaluate_diagnose_end_to_end(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "lm", "--data", str(corpus), "--out", str(run)] + TINY) == 0
    out = capsys.readouterr()
    assert "best validation: loss" in out.out and "epoch 2/2" in out.err
    for name in ("checkpoints/best.safetensors", "checkpoints/last.safetensors", "metrics.jsonl",
                 "plots/curves.png", "config.yaml", "tokenizer.json"):
        assert (run / name).exists(), name
    saved = C.from_dict(LMRunConfig, C.load_yaml(run / "config.yaml"))
    assert saved.model.hidden == 16 and saved.data.data == str(corpus)

    assert main(["generate", str(run), "--prompt", "the ", "--length", "30", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("the ") and len(text.rstrip("\n")) == 34

    assert main(["evaluate", str(run), "--data", str(corpus), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["bpc"] == pytest.approx(m["loss"] / 0.6931471805599453) and m["unknown_tokens"] == 0
    assert m["loss"] < 2.5  # learned something: ln(vocab) ~ 3.3 at init

    assert main(["diagnose", str(run), "--steps", "20"]) == 0
    assert "layer 0: ||dL_T/dh_t||" in capsys.readouterr().out
    assert (run / "diagnostics" / "gradient_flow.png").exists()


def test_train_refuses_to_overwrite_and_resume_continues(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    first = TINY + ["--epochs", "1", "--schedule", "constant"]
    assert main(["train", "lm", "--data", str(corpus), "--out", str(run)] + first) == 0
    assert main(["train", "lm", "--data", str(corpus), "--out", str(run)] + TINY) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert main(["train", "lm", "--out", str(run), "--resume", "--lr", "0.5"]) == 2
    assert "cannot resume with changed lr: 0.02 -> 0.5" in capsys.readouterr().err
    (run / "checkpoints" / "best.safetensors").unlink()  # resume needs only the last one
    assert main(["train", "lm", "--out", str(run), "--resume", "--epochs", "2"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "eval"] == [1, 2]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2]


def test_generate_and_evaluate_errors(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "nothing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["generate", str(tmp_path), "--top-p", "0"]) == 2
    assert "top_p must be in (0, 1]" in capsys.readouterr().err
    bad = tmp_path / "checkpoints" / "best.safetensors"
    bad.parent.mkdir()
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    assert main(["evaluate", str(tmp_path), "--data", str(bad)]) == 2
    assert "best.safetensors" in capsys.readouterr().err


def test_demo_runs_briefly(tmp_path, capsys, monkeypatch):
    real = LM.load_preset

    def small(name):  # the shipped demo, shrunk so the test takes seconds
        return C.merge(real(name), {"model": {"hidden": 32}, "data": {"max_chars": 30000},
                                    "train": {"epochs": 1000, "eval_every": 20, "max_eval_batches": 2,
                                              "progress": "plain"}})  # (epochs: stopped by the time budget)
    monkeypatch.setattr(LM, "load_preset", small)
    # the shipped bar (50 updates) is for a minute of training; three seconds on a loaded machine make fewer
    monkeypatch.setattr(lm_commands, "learning_verdict", functools.partial(demo_check.learning_verdict, min_updates=15))
    assert main(["demo", "--seconds", "3", "--out", str(tmp_path / "demo"), "--length", "40"]) == 0
    out = capsys.readouterr().out
    assert "--- generated" in out and str(tmp_path / "demo") in out
    assert (tmp_path / "demo" / "plots" / "curves.png").exists()
    assert (tmp_path / "demo" / "diagnostics" / "gradient_flow.png").exists()


@pytest.mark.parametrize("tokenizer", ["word", "subword"])
def test_word_and_subword_models_from_a_directory(tmp_path, capsys, tokenizer):
    data = tmp_path / "texts"
    data.mkdir()
    (data / "a.txt").write_text(LM_TEXT)
    (data / "b.txt").write_text(LM_TEXT.upper())
    run = tmp_path / "run"
    assert main(["train", "lm", "--data", str(data), "--out", str(run), "--tokenizer", tokenizer,
                 "--vocab-size", "300"] + TINY + ["--epochs", "1", "--bptt", "8"]) == 0
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "the", "--length", "5", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("the")
    assert main(["evaluate", str(run), "--data", str(data / "a.txt"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["chars"] == len(LM_TEXT) and m["tokens"] < len(LM_TEXT) / 2  # fewer tokens than characters
    assert m["bpc"] < m["loss"] / 0.6931471805599453  # per character, not per token


def test_bad_engine_name_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "lm", "--engine", "bogus", "--out", str(tmp_path / "r"), "--max-chars", "5000"] + TINY) == 2
    assert "model: engine must be 'auto' or one of" in capsys.readouterr().err


def _subparser(parser, *names):
    for name in names:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


@pytest.mark.parametrize("task,epochs", [("classify", 15), ("tag", 20), ("forecast", 60), ("lm", 10)])
def test_train_help_shows_the_defaults_actually_used(task, epochs, capsys):
    parser = build_parser()
    args = parser.parse_args(["train", task])
    cfg = config_from_args(TASKS[task], args, base=dict(TASKS[task].train_defaults))
    assert cfg.train.epochs == epochs
    shown = 0
    for action in _subparser(parser, "train", task)._actions:
        if "." not in action.dest:
            continue
        section, name = action.dest.split(".", 1)
        match = re.search(r"\(default: (.*)\)$", action.help)
        assert match and match.group(1) == repr(getattr(getattr(cfg, section), name)), action.dest
        shown += 1
    assert shown == sum(len(f) for f in C.section_fields(type(cfg)).values())
    with pytest.raises(SystemExit):
        main(["train", task, "--help"])
    assert re.search(rf"--epochs N\s+passes over the training data \(0 = as many as max_time\s+or max_steps allow\)"
                     rf"\s+\(default: {epochs}\)", capsys.readouterr().out)
