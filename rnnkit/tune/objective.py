"""One trial = one ordinary training run of the task, observed through the trainer's callbacks.

:class:`TrialReporter` is a :class:`~rnnkit.train.trainer.Trainer` callback: at each evaluation it reports
the monitored validation metric to Optuna (``trial.report``) and raises ``optuna.TrialPruned`` when the
study's pruner says the trial is behind; the trainer stops there, and the trial's run directory keeps its
checkpoints and metrics like any run. The trial's value is the best monitored metric of the run (the one
its ``best`` checkpoint holds).

:class:`Objective` turns a drawn point into the run's settings (``trial.yaml`` in the run directory: the
study's base settings with the point over them, what ``best.yaml`` becomes) and trains.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from rnnkit import config as C
from rnnkit.atomic import atomic_write_text
from rnnkit.train.guard import NonFiniteError
from rnnkit.tune.space import SearchSpace, nested


class TrialReporter:
    """Trainer callback: report each evaluation to the trial, prune when the pruner says so."""

    def __init__(self, trial: optuna.Trial):
        self.trial = trial
        self.best: float | None = None
        self.evaluations = 0

    def on_eval(self, trainer, metrics: dict) -> None:
        value = float(metrics[trainer.cfg.monitor])
        self.best, self.evaluations = trainer.best, self.evaluations + 1
        if not math.isfinite(value):
            raise NonFiniteError(f"{trainer.cfg.monitor} is {value} at update {trainer.step} (the run diverged)")
        self.trial.report(value, trainer.step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at update {trainer.step} ({trainer.cfg.monitor} {value:.4g})")


def settings_given(settings: dict) -> frozenset[tuple[str, str]]:
    """What ``rnnkit train TASK --config FILE`` counts as given for a file holding ``settings``."""
    return frozenset((s, f) for s, fields in settings.items() if isinstance(fields, dict) for f in fields)


@dataclass
class Objective:
    """``objective(trial) -> value`` for ``study.optimize``: the trial's run lives in ``out/trials/NNNN``."""
    task: Any
    base: dict            # the study's settings over the task's training defaults (data options, budget)
    space: SearchSpace
    out: Path
    worker: int = 0       # which of this machine's processes runs the trial (recorded with it)

    def __call__(self, trial: optuna.Trial) -> float:
        point = self.space.suggest(trial)
        settings = C.merge(self.base, nested(point))
        run_dir = self.out / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("settings", json.dumps(settings))
        trial.set_user_attr("worker", self.worker)
        reporter = TrialReporter(trial)
        try:
            cfg = C.from_dict(self.task.run_config, C.merge(C.merge(dict(self.task.train_defaults), settings),
                                                            self._quiet(settings)))
            if (run_dir / "checkpoints").exists():
                raise C.ConfigError(f"{run_dir} already holds a run (of an earlier study in this output folder?); "
                                    "choose another --out or remove it")
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / "trial.yaml", yaml.safe_dump(settings, sort_keys=False))
            self.task.train(cfg, run_dir, given=settings_given(settings), callbacks=[reporter])
            if reporter.best is None:
                raise C.ConfigError(f"the {self.task.name} run of trial {trial.number} made no evaluation, so "
                                    "there is no value to optimise (does the task pass its callbacks to the Trainer?)")
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)  # retried when the study is continued
            raise
        except optuna.TrialPruned:
            raise
        except Exception as err:
            trial.set_user_attr("error", f"{type(err).__name__}: {err}")  # shown in the trials table
            raise
        trial.set_user_attr("evaluations", reporter.evaluations)
        return float(reporter.best)

    @staticmethod
    def _quiet(settings: dict) -> dict:
        """No progress bar per trial unless asked for (it does not change the run, so it stays out of
        ``trial.yaml``)."""
        return {} if "progress" in settings.get("train", {}) else {"train": {"progress": "none"}}
