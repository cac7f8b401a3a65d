"""Run a study end to end: check the settings and the space, run the trials, write the results."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

from rnnkit import config as C
from rnnkit.tasks.task import Task
from rnnkit.tune.config import StudyConfig
from rnnkit.tune.results import write_results
from rnnkit.tune.space import default_space, load_space
from rnnkit.tune.study import Job, run_study


@dataclass
class Outcome:
    study: optuna.Study
    best_yaml: Path | None  # None when no trial completed


def prepare(task: Task, settings: dict, config: StudyConfig, space_file: str | None = None,
            log=print) -> tuple[Job, dict | None]:
    """The job to run and the baseline point (the task's settings as they are, when the space holds them).

    ``settings``: the trials' common settings over the task's training defaults (data options, budget)."""
    if config.task != task.name:  # worker processes find the task by the study's name for it
        raise C.ConfigError(f"the study config names task {config.task!r}, not {task.name!r}")
    base_cfg = C.from_dict(task.run_config, C.merge(dict(task.train_defaults), settings))  # a bad base fails here
    space = load_space(space_file, task, settings) if space_file else default_space(task, settings)
    baseline = None
    if config.defaults_first:
        baseline, why = space.point_of(base_cfg)
        if baseline is None:
            log(f"the first trial is not the task's settings as they are: {why}")
    return Job(config, settings, space.specs, base_cfg.train.monitor_mode), baseline


def tune(task: Task, settings: dict, config: StudyConfig, space_file: str | None = None, log=print) -> Outcome:
    """Run (or continue) the study, then write its results into ``config.out``."""
    job, baseline = prepare(task, settings, config, space_file, log)
    study = run_study(job, baseline, log)
    return Outcome(study, write_results(study, Path(config.out), task.name, log))
