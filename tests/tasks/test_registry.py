"""The task registry: in sync with the task packages, every task trains / evaluates / predicts through it
on its embedded default (tiny shapes, a few updates), and the hooks the tools build on answer."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import rnnkit.tasks
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.data.embedded_tasks import classify_set, series_set, tag_set
from rnnkit.tasks import TASKS, Task, get_task, task_of_run
from tiny_tasks import COMPOSITE, QUICK_TRAIN, TINY, skip_without_data, tiny_settings

TASKS_DIR = Path(rnnkit.tasks.__file__).parent


def test_registry_matches_the_task_packages():
    packages = sorted(p.parent.name for p in TASKS_DIR.glob("*/task.py"))
    # a task named with a hyphen (speech-translate) lives in the package with an underscore
    assert packages == sorted(n.replace("-", "_") for n in TASKS), "every package with a task.py is registered"
    for name, task in TASKS.items():
        assert isinstance(task, Task) and task.name == name
        assert type(task).__module__ == f"rnnkit.tasks.{name.replace('-', '_')}.task"
    assert get_task("lm") is TASKS["lm"]
    with pytest.raises(C.ConfigError, match="unknown task 'speech'; tasks: lm, classify"):
        get_task("speech")


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_defines_the_contract(name):
    task = TASKS[name]
    for method in ("train", "load", "evaluate", "predict", "example_inputs"):
        assert getattr(type(task), method) is not getattr(Task, method), f"{name} must define {method}"
    assert task.help and task.evaluate_help and task.predict_help and task.presets()
    C.from_dict(task.run_config, C.merge(dict(task.train_defaults), {}))  # the defaults are a valid config
    if name in COMPOSITE:  # a bundle of other tasks' runs: tuned stage by stage, and says so
        with pytest.raises(C.ConfigError, match="tune its stages"):
            task.search_space()
    else:
        space = task.search_space()
        fields = {f"{s}.{f.name}" for s, fs in C.section_fields(task.run_config).items() for f in fs}
        assert space and set(space) <= fields, f"{name}: search space names unknown settings {set(space) - fields}"
        for spec in space.values():
            assert spec["type"] in ("int", "float", "categorical")
    assert type(task).serve_routes is not Task.serve_routes, f"{name} must declare what `rnnkit serve` serves"
    assert task.upgrade_config({"model": {}}).keys() >= {"model"}


def test_a_task_that_does_not_generate_says_so(tmp_path):
    task = TASKS["classify"]
    assert not task.can_generate and TASKS["lm"].can_generate
    with pytest.raises(C.ConfigError, match="classify runs do not generate"):
        task.generate(tmp_path, {})


# ------------------------------------------------------------ end to end, through the registry

def _classify_file(path: Path) -> Path:
    inputs, labels, _, _ = classify_set("digits")
    rows = [{"text": x.tolist(), "label": y} for x, y in zip(inputs[:40], labels[:40])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _tag_file(path: Path) -> Path:
    _, test = tag_set("ner")
    path.write_text("".join("\n".join(f"{w} {t}" for w, t in zip(words, tags)) + "\n\n"
                            for words, tags in test[:20]))
    return path


def _forecast_file(path: Path) -> Path:
    s = series_set("co2")
    values = s.columns[s.target][-120:]
    path.write_text("time,co2\n" + "".join(f"{t},{v}\n" for t, v in zip(s.times[-120:], values)))
    return path


# task -> (labelled file to evaluate on, predict inputs, predict options); settings from tests/tiny_tasks.py
CASES = {
    "lm": (lambda d, run: _lm_file(d), ["def "], {}),
    "classify": (lambda d, run: _classify_file(d / "eval.jsonl"), [], {"file": "eval"}),
    "tag": (lambda d, run: _tag_file(d / "eval.conll"), ["Maria visited Lima ."], {}),
    "forecast": (lambda d, run: _forecast_file(d / "series.csv"), [], {"data": "eval"}),
    "translate": (lambda d, run: run / "data" / "test.tsv", ["Hello."], {}),
    "asr": (lambda d, run: run / "data" / "test.jsonl", [], {"file": "eval"}),
    "music": (lambda d, run: _midi_file(d / "piece.mid"), [], {"file": "eval"}),
    "caption": (lambda d, run: run / "data" / "test.csv", [], {"file": "eval"}),
    "tag-images": (lambda d, run: run / "data" / "test.csv", [], {"file": "eval"}),
    "speech-translate": (lambda d, run: run / "data" / "test.jsonl", [], {"file": "eval"}),
    "tts": (lambda d, run: run / "data" / "test.jsonl", ["Hello."], {}),
}


def _midi_file(path: Path) -> Path:
    from rnnkit.data.midi import write_midi
    write_midi([(60, 0, 2), (64, 0, 2), (62, 2, 4), (67, 4, 8)], path)
    return path


def _lm_file(d: Path) -> Path:
    path = d / "text.txt"
    path.write_text("def f(x):\n    return x + 1\n" * 20)
    return path


def test_every_registered_task_has_an_end_to_end_case():
    assert set(CASES) | set(COMPOSITE) == set(TASKS) and not set(CASES) & set(COMPOSITE)
    assert set(TINY) == set(CASES), "tests/tiny_tasks.py has a row for every task trained here"


@pytest.mark.parametrize("name", list(CASES))
def test_train_evaluate_predict_every_task(name, tmp_path, capsys, monkeypatch):
    torch.set_num_threads(1)
    skip_without_data(name)  # speech is synthesised with eSpeak NG, music is music21's chorales
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))  # generated sets are cached there
    task = TASKS[name]
    eval_file, inputs, options = CASES[name]
    cfg = C.from_dict(task.run_config, C.merge(dict(task.train_defaults), tiny_settings(name, {"train": QUICK_TRAIN})))
    run = tmp_path / "run"
    result = task.train(cfg, run)
    task.report(result, run)
    assert task_of_run(run) is task  # the checkpoint records the registered name

    data = eval_file(tmp_path, run)
    metrics = task.evaluate(run, str(data), {})
    assert metrics and json.dumps(metrics, default=float)
    task.print_evaluation(metrics, str(data))

    options = {k: str(data) for k in options}
    predictions = task.predict(run, inputs, options)
    assert predictions and all(isinstance(p, dict) for p in predictions)
    task.print_predictions(predictions, options)

    loaded = task.load(run)
    example = task.example_inputs(loaded)
    loaded.model.eval()
    with torch.no_grad():
        loaded.model(*example)  # what export traces runs
    capsys.readouterr()

    assert main(["evaluate", str(run), "--data", str(data), "--json"]) == 0  # the CLI finds the same task
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    flags = [a for k in options for a in (f"--{k}", str(data))]
    assert main(["predict", str(run), *inputs, *flags, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == len(predictions)


def test_resume_and_fresh_run_share_one_run_directory_rule(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for name in TASKS:
        assert main(["train", name, "--out", str(run)]) == 2
        assert "already holds a run; pass --resume" in capsys.readouterr().err
        assert main(["train", name, "--resume"]) == 2
        assert "--resume needs --out RUN_DIR" in capsys.readouterr().err


def test_a_registered_cell_is_accepted_by_config_and_cli():
    from rnnkit.cells.elman import ElmanCell
    from rnnkit.cli import build_parser
    from rnnkit.cli.flags import config_from_args
    from rnnkit.layers.build import CELLS, register_cell
    from rnnkit.tasks.lm.model import LanguageModel
    with pytest.raises(SystemExit):  # unknown before it is registered
        build_parser().parse_args(["train", "lm", "--cell", "test_cell"])
    register_cell("test_cell", ElmanCell)
    try:
        for name, task in TASKS.items():
            if "cell" not in {f.name for f in C.section_fields(task.run_config).get("model", [])}:
                continue  # a task of other tasks' runs (voice-translate) has no network of its own
            args = build_parser().parse_args(["train", name, "--cell", "test_cell"])
            assert config_from_args(task, args, dict(task.train_defaults)).model.cell == "test_cell"
        cfg = C.from_dict(TASKS["lm"].run_config, {"model": {"cell": "test_cell", "hidden": 8, "layers": 1}})
        assert isinstance(LanguageModel(5, cfg.model).rnn.cells[0], ElmanCell)
    finally:
        del CELLS["test_cell"]
    assert "test_cell" not in C.cell_names()
