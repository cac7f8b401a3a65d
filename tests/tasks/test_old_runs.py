"""Runs saved before the task registry and the task packages still load and score exactly as they did.

The fixtures are tiny runs of every task written by the earlier code, with its outputs (see the README
beside them); evaluate / predict / generate / translate must print the same now.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rnnkit.cli import main
from rnnkit.tasks import TASKS, task_of_run

FIXTURES = Path(__file__).parent.parent / "fixtures" / "runs_before_registry"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def runs(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "runs")  # evaluate writes predictions beside a run
    return tmp_path / "runs"


def _same(got, want, where="") -> None:
    """Everything the old code printed is still there, equal (numbers to 1e-6: another machine's BLAS may differ
    in the last bits); keys added since (e.g. the input echoed beside a prediction) are allowed."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(want) <= set(got), where
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9), where
    else:
        assert got == want, where


def _json_out(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


# the tasks rnnkit had before the registry; tasks added since (asr, music, ...) have no run of the earlier code
TASKS_BEFORE_REGISTRY = {"lm", "classify", "tag", "forecast", "translate"}


def test_every_task_has_an_old_run():
    assert {p.name for p in FIXTURES.iterdir() if (p / "checkpoints").is_dir()} == TASKS_BEFORE_REGISTRY
    assert TASKS_BEFORE_REGISTRY <= set(TASKS)


@pytest.mark.parametrize("task,argv,key", [
    ("lm", ["evaluate", "{run}", "--data", "{data}/text.txt", "--json"], "lm_eval"),
    ("classify", ["evaluate", "{run}", "--data", "{data}/digits.jsonl", "--json"], "classify_eval"),
    ("classify", ["predict", "{run}", "--file", "{data}/digits.jsonl", "--json"], "classify_pred"),
    ("tag", ["evaluate", "{run}", "--data", "{data}/ner.conll", "--json"], "tag_eval"),
    ("tag", ["predict", "{run}", "Maria visited Lima .", "--json"], "tag_pred"),
    ("forecast", ["evaluate", "{run}", "--data", "{data}/co2.csv", "--json"], "forecast_eval"),
    ("forecast", ["predict", "{run}", "--data", "{data}/co2.csv", "--json"], "forecast_pred"),
    ("translate", ["evaluate", "{run}", "--data", "{data}/pairs.tsv", "--json", "--hyp-out", "{data}/h.txt"],
     "translate_eval"),
    ("translate", ["translate", "{run}", "Hello.", "--json"], "translate_tr"),
])
def test_old_run_prints_what_it_printed(runs, capsys, task, argv, key):
    assert task_of_run(runs / task) is TASKS[task]
    argv = [a.format(run=runs / task, data=runs / "data") for a in argv]
    assert main(argv) == 0
    _same(_json_out(capsys), EXPECTED[key], key)


def test_old_language_model_generates_the_same_text(runs, capsys):
    assert main(["generate", str(runs / "lm"), "--prompt", "def ", "--length", "10", "--seed", "3"]) == 0
    assert capsys.readouterr().out == EXPECTED["lm_gen"]
