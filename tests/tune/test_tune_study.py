"""Studies end to end on tiny budgets: a 3-trial study per task through the CLI, best.yaml reproduces its
trial, pruning stops a trial behind the others, failed trials are recorded and the study goes on, two worker
processes share one storage, and a continued study counts what was done (interrupted trials redone)."""
from __future__ import annotations

import json

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.tasks import TASKS
from rnnkit.tune import objective as objective_module
from rnnkit.tune.config import StudyConfig
from rnnkit.tune.objective import TrialReporter
from rnnkit.tune.results import write_plots
from rnnkit.tune.run import tune
from tiny_tasks import COMPOSITE, TINY, tiny_settings

pytestmark = pytest.mark.usefixtures("one_thread")
optuna.logging.set_verbosity(optuna.logging.WARNING)

QUICK = {"max_steps": 2, "eval_every": 1, "batch_size": 8, "progress": "none", "tensorboard": "off",
         "warmup_steps": 0, "patience": 0, "threads": 1}
#: what tuning changes in the shared tiny runs (tests/tiny_tasks.py): no refit of the baselines, greedy captions
TUNE = {"forecast": {"data": {"refit": False}}, "caption": {"decode": {"beam": 1}}}
SPACE = "train.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n" \
        "model.cell: {type: categorical, choices: [lstm, gru]}\n"


def _settings(name: str) -> dict:
    return tiny_settings(name, TUNE.get(name, {}), {"train": QUICK})


def _files(tmp_path, name: str):
    config, space = tmp_path / "settings.yaml", tmp_path / "space.yaml"
    config.write_text(yaml.safe_dump(_settings(name)))
    space.write_text(SPACE)
    return config, space


def test_every_task_has_a_tiny_case():
    assert set(TINY) | set(COMPOSITE) == set(TASKS)


@pytest.mark.parametrize("name", list(TINY))
def test_a_tiny_study_per_task_writes_best_yaml(name, tmp_path, monkeypatch, capsys):
    if name in ("asr", "tts", "speech-translate"):
        pytest.importorskip("espeakng_loader", reason="the embedded speech set needs pip install 'rnnkit[speech]'")
    if name == "music":
        pytest.importorskip("music21", reason="the embedded chorales need pip install 'rnnkit[music]'")
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    config, space = _files(tmp_path, name)
    out = tmp_path / "study"
    assert main(["tune", name, "--trials", "3", "--out", str(out), "--space", str(space), "--config", str(config),
                 "--pruner", "none"]) == 0
    rows = json.loads((out / "trials.json").read_text())
    assert [r["state"] for r in rows] == ["complete"] * 3
    assert all((out / "trials" / f"{r['trial']:04d}" / "checkpoints" / "best.safetensors").is_file() for r in rows)
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["model"]["cell"] in ("lstm", "gru") and all(best["model"][k] == v for k, v in TINY[name]["model"].items())
    assert (out / "plots" / "history.png").stat().st_size > 1000
    assert "best: trial" in capsys.readouterr().out


def test_a_bundle_task_says_to_tune_its_stages(tmp_path, capsys):
    assert main(["tune", "voice-translate", "--trials", "1", "--out", str(tmp_path / "study")]) != 0
    assert "tune its stages one at a time: `rnnkit tune asr`" in capsys.readouterr().err
    assert not (tmp_path / "study" / "trials").exists()


def test_best_yaml_trains_the_best_trial_again(tmp_path, capsys):
    config, space = _files(tmp_path, "classify")
    out = tmp_path / "study"
    assert main(["tune", "classify", "--trials", "2", "--out", str(out), "--space", str(space),
                 "--config", str(config), "--max-steps", "3"]) == 0
    rows = {r["trial"]: r for r in json.loads((out / "trials.json").read_text())}
    best = max(rows.values(), key=lambda r: r["value"])
    again = tmp_path / "again"
    assert main(["train", "classify", "--config", str(out / "best.yaml"), "--out", str(again)]) == 0
    evals = [json.loads(line) for line in (again / "metrics.jsonl").read_text().splitlines()]
    assert max(e["val_accuracy"] for e in evals if e["kind"] == "eval") == pytest.approx(best["value"])


class _Trainer:
    """What TrialReporter reads of a Trainer."""

    def __init__(self, step, best):
        self.step, self.best = step, best
        self.cfg = C.TrainConfig(monitor="val_loss")


def test_the_reporter_prunes_a_trial_that_reports_a_bad_value():
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    study.add_trial(create_trial(params={}, distributions={}, value=0.5, intermediate_values={1: 0.5, 2: 0.4}))
    good = TrialReporter(study.ask())
    good.on_eval(_Trainer(1, 0.3), {"val_loss": 0.3})  # better than the median: goes on
    assert good.best == 0.3 and good.evaluations == 1
    bad = TrialReporter(study.ask())
    with pytest.raises(optuna.TrialPruned, match="pruned at update 1"):
        bad.on_eval(_Trainer(1, 9.0), {"val_loss": 9.0})


def test_pruning_stops_a_real_run_at_its_first_evaluation(tmp_path):
    """Two earlier trials reached a perfect validation accuracy at every update; a real run cannot, so the
    median pruner stops it after its first evaluation, and its run directory keeps what it wrote."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    seeded = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    for _ in range(2):
        seeded.add_trial(create_trial(params={"model.cell": "lstm"},
                                      distributions={"model.cell": CategoricalDistribution(["lstm"])},
                                      value=1.0, intermediate_values={s: 1.0 for s in range(1, 7)}))
    (tmp_path / "space.yaml").write_text("model.cell: {type: categorical, choices: [lstm]}\n")
    settings = C.merge(_settings("classify"), {"train": {"max_steps": 6}})
    cfg = StudyConfig("classify", str(tmp_path / "out"), trials=3, storage=storage, study="s", pruner="median",
                      defaults_first=False)
    outcome = tune(TASKS["classify"], settings, cfg, str(tmp_path / "space.yaml"), log=lambda *a: None)
    last = outcome.study.trials[-1]
    assert last.state == TrialState.PRUNED and list(last.intermediate_values) == [1]
    run = tmp_path / "out" / "trials" / "0002"
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert [e["step"] for e in evals] == [1]


def test_failed_trials_are_recorded_and_the_study_goes_on(tmp_path):
    """A bad combination of settings (each valid alone) and a diverging run fail; the third trial completes."""
    settings = C.merge(_settings("lm"), {"model": {"tie_weights": False, "embedding": 0}, "train": {
        "optimizer": "sgd", "clip_norm": 0.0, "nan_policy": "raise", "max_steps": 3}})
    (tmp_path / "space.yaml").write_text("model.tie_weights: {type: categorical, choices: [true, false]}\n"
                                         "model.embedding: {type: categorical, choices: [0, 8]}\n"
                                         "train.lr: {type: categorical, choices: [1.0e-3, 1.0e+30]}\n")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="lm")
    study.enqueue_trial({"model.tie_weights": True, "model.embedding": 8, "train.lr": 1e-3})   # bad config
    study.enqueue_trial({"model.tie_weights": False, "model.embedding": 8, "train.lr": 1e30})  # diverges
    study.enqueue_trial({"model.tie_weights": False, "model.embedding": 8, "train.lr": 1e-3})
    cfg = StudyConfig("lm", str(tmp_path / "out"), trials=3, storage=storage, pruner="none", defaults_first=False)
    outcome = tune(TASKS["lm"], settings, cfg, str(tmp_path / "space.yaml"), log=lambda *a: None)
    rows = json.loads((tmp_path / "out" / "trials.json").read_text())
    assert [r["state"] for r in rows] == ["fail", "fail", "complete"]
    assert "ConfigError" in rows[0]["note"] and "tie_weights needs embedding" in rows[0]["note"]
    assert "NonFiniteError" in rows[1]["note"]
    assert outcome.best_yaml and yaml.safe_load(outcome.best_yaml.read_text())["train"]["lr"] == 1e-3


def test_two_worker_processes_share_one_storage(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    cfg = StudyConfig("classify", str(tmp_path / "out"), trials=4, storage=storage, workers=2, pruner="none")
    outcome = tune(TASKS["classify"], _settings("classify"), cfg, str(tmp_path / "space.yaml"), log=lambda *a: None)
    trials = optuna.load_study(study_name="classify", storage=storage).trials
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials), \
        [(t.number, t.state.name, t.user_attrs.get("error")) for t in trials]
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    assert outcome.best_yaml.is_file()


def test_a_continued_study_counts_what_was_done_and_redoes_an_interrupted_trial(tmp_path, monkeypatch):
    (tmp_path / "space.yaml").write_text(SPACE)
    cfg = StudyConfig("classify", str(tmp_path / "out"), trials=3, pruner="none")
    real = TrialReporter.on_eval
    calls = {"n": 0}

    def interrupt_the_second_trial(self, trainer, metrics):
        calls["n"] += 1
        if self.trial.number == 1:
            raise KeyboardInterrupt
        real(self, trainer, metrics)

    monkeypatch.setattr(objective_module.TrialReporter, "on_eval", interrupt_the_second_trial)
    with pytest.raises(KeyboardInterrupt):
        tune(TASKS["classify"], _settings("classify"), cfg, str(tmp_path / "space.yaml"), log=lambda *a: None)
    monkeypatch.setattr(objective_module.TrialReporter, "on_eval", real)
    outcome = tune(TASKS["classify"], _settings("classify"), cfg, str(tmp_path / "space.yaml"),
                   log=lambda *a: None)
    trials = outcome.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE,
                                         TrialState.COMPLETE]
    assert trials[1].user_attrs["interrupted"] and trials[2].user_attrs["retry_of"] == 1
    assert trials[2].params == trials[1].params
    assert trials[0].user_attrs["baseline"] is True  # a new study starts from the task's settings as they are

    # how a process runs its trials (threads, progress) may differ; --trials 4 adds one trial
    more = tune(TASKS["classify"], C.merge(_settings("classify"), {"train": {"threads": 2, "progress": "plain"}}),
                StudyConfig("classify", str(tmp_path / "out"), trials=4, pruner="none"),
                str(tmp_path / "space.yaml"), log=lambda *a: None)
    assert len(more.study.trials) == 5 and more.study.trials[-1].state == TrialState.COMPLETE

    # continuing with another space is an error that says why, not a silent mix of two studies
    (tmp_path / "other.yaml").write_text("train.lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}\n")
    with pytest.raises(C.ConfigError, match="was started with other settings or another space"):
        tune(TASKS["classify"], _settings("classify"), cfg, str(tmp_path / "other.yaml"), log=lambda *a: None)


def test_bad_study_options_are_clear_errors(tmp_path, capsys):
    assert main(["tune", "classify", "--trials", "-1", "--out", str(tmp_path)]) == 2
    assert "--trials must be a whole number >= 0" in capsys.readouterr().err
    assert main(["tune", "classify", "--storage", "study.db", "--out", str(tmp_path)]) == 2
    assert "--storage must be an Optuna RDB URL" in capsys.readouterr().err
    assert main(["tune", "classify", "--lr", "-1", "--out", str(tmp_path)]) == 2
    assert "lr" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(TASKS))
def test_tune_help_lists_the_study_and_the_task_flags(name, capsys):
    with pytest.raises(SystemExit) as done:
        main(["tune", name, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--trials N" in text and "--pruner" in text and "--lr X" in text


def test_without_optuna_the_command_says_which_extra_installs_it(tmp_path, monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    assert main(["tune", "classify", "--out", str(tmp_path)]) == 2
    assert "pip install 'rnnkit[tune]'" in capsys.readouterr().err


def test_plots_are_drawn_or_say_why_not(tmp_path):
    dists = {"train.lr": FloatDistribution(1e-4, 1e-1, log=True),
             "model.cell": CategoricalDistribution(["lstm", "gru"])}
    study = optuna.create_study()
    for i, (lr, cell) in enumerate([(1e-3, "lstm"), (1e-2, "gru"), (3e-2, "lstm"), (3e-4, "gru")]):
        study.add_trial(create_trial(params={"train.lr": lr, "model.cell": cell}, distributions=dists,
                                     value=float(i % 3)))
    drawn = write_plots(study, tmp_path / "plots")
    assert drawn == {"history.png": str(tmp_path / "plots" / "history.png"),
                     "importances.png": str(tmp_path / "plots" / "importances.png")}
    assert all((tmp_path / "plots" / name).stat().st_size > 1000 for name in drawn)
    flat = optuna.create_study()
    for lr in (1e-3, 1e-2):
        flat.add_trial(create_trial(params={"train.lr": lr}, distributions={"train.lr": dists["train.lr"]}, value=0.5))
    assert write_plots(flat, tmp_path / "flat")["importances.png"].startswith("not drawn")


def test_a_task_that_does_not_hand_on_its_callbacks_fails_its_trials_saying_so(tmp_path):
    from rnnkit.tasks.classify.task import ClassifyTask
    from rnnkit.tune.objective import Objective
    from rnnkit.tune.space import SearchSpace
    from rnnkit.tune.study import CAUGHT

    class Deaf(ClassifyTask):
        def train(self, cfg, run_dir, *, resume=False, given=frozenset(), callbacks=()):
            return super().train(cfg, run_dir, given=given)

    study = optuna.create_study(direction="maximize")
    space = SearchSpace({"model.cell": {"type": "categorical", "choices": ["lstm"]}})
    study.optimize(Objective(Deaf(), _settings("classify"), space, tmp_path), n_trials=1, catch=CAUGHT)
    assert study.trials[0].state == TrialState.FAIL
    assert "made no evaluation" in study.trials[0].user_attrs["error"]


@pytest.mark.parametrize("name", ["median", "halving"])
def test_each_pruner_stops_the_trials_behind_and_keeps_the_good_ones(name):
    from rnnkit.tune.study import pruner_of

    study = optuna.create_study(pruner=pruner_of(name))
    for value in (0.1, 0.2, 0.3, 5.0, 0.05, 9.0):  # the validation loss each trial reports at every update
        trial = study.ask()
        reporter = TrialReporter(trial)
        try:
            for step in range(1, 9):
                reporter.on_eval(_Trainer(step, value), {"val_loss": value})
            study.tell(trial, value)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED] * 2 + \
        [TrialState.COMPLETE, TrialState.PRUNED]


def test_sqlite_transactions_take_the_write_lock_when_they_begin(tmp_path):
    """Optuna reads then writes a trial's state in one transaction; on SQLite (no SELECT ... FOR UPDATE) two
    processes could both take the same queued trial unless a transaction locks the file when it begins."""
    import sqlite3

    from rnnkit.tune.study import storage_of

    path = tmp_path / "study.db"
    storage = storage_of(f"sqlite:///{path}")
    with storage.engine.connect() as first:
        with first.begin():
            first.exec_driver_sql("SELECT 1")  # a transaction that has only read so far
            other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # free again once the first transaction ended
    other.execute("ROLLBACK")
    other.close()
