"""``rnnkit tune TASK [the task's training flags] --trials N ...``: flags to :func:`rnnkit.tune.tune`.

The task's training flags (``--data``, ``--max-steps``, ``--preset``, ``--config``, ...) set what every
trial shares; the search space draws the rest. See docs/tune.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys

from rnnkit.cli.flags import add_config_flags, settings_from_args
from rnnkit.config import ConfigError
from rnnkit.tasks import TASKS
from rnnkit.tune.config import PRUNERS, StudyConfig


def setup_tune(p: argparse.ArgumentParser) -> None:
    p.description = ("Search a task's hyperparameters with Optuna: each trial is an ordinary training run "
                     "(in OUT/trials/NNNN); OUT gets best.yaml, trials.json and plots/. Running the same "
                     "command again continues the study.")
    tasks = p.add_subparsers(dest="task", metavar="TASK", required=True)
    for name, task in TASKS.items():
        sub = tasks.add_parser(name, help=task.help, description=f"Tune {task.help}: the training flags "
                               "below are shared by every trial; the search space draws the rest.")
        study = sub.add_argument_group("study options")
        study.add_argument("--trials", type=int, default=20, metavar="N",
                           help="trials in the study, counted over every run of it (default: %(default)s)")
        study.add_argument("--timeout", type=float, default=0.0, metavar="S",
                           help="stop starting trials after S seconds, per process (0 = no limit)")
        study.add_argument("--out", metavar="DIR", help=f"where trials and results go (default: runs/tune-{name})")
        study.add_argument("--storage", default="", metavar="URL",
                           help="Optuna RDB storage shared by processes and machines, e.g. sqlite:///study.db "
                                "(default: sqlite:///OUT/study.db)")
        study.add_argument("--study", default="", metavar="NAME", help=f"study name (default: {name})")
        study.add_argument("--space", metavar="FILE.yaml",
                           help="search space replacing the task's default ('section.field': {type, low, high} "
                                "or {type: categorical, choices}); see docs/tune.md")
        study.add_argument("--workers", type=int, default=1, metavar="K",
                           help="processes started here on the same study (default: %(default)s)")
        study.add_argument("--pruner", choices=PRUNERS, default="median",
                           help="stop trials that fall behind at an evaluation (default: %(default)s)")
        study.add_argument("--sampler-seed", type=int, default=0, metavar="N",
                           help="seed of the TPE sampler (worker i uses N + i)")
        study.add_argument("--no-defaults-first", dest="defaults_first", action="store_false",
                           help="do not run the task's settings as they are as the study's first trial")
        add_config_flags(sub, task)


def tune_command(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("optuna") is None:
        raise ConfigError("rnnkit tune needs Optuna: pip install 'rnnkit[tune]'")
    from rnnkit.tune.run import tune  # Optuna is imported only by the command that uses it
    task = TASKS[args.task]
    config = StudyConfig(task=task.name, out=args.out or f"runs/tune-{task.name}", trials=args.trials,
                         timeout=args.timeout, storage=args.storage, study=args.study, workers=args.workers,
                         pruner=args.pruner, sampler_seed=args.sampler_seed, defaults_first=args.defaults_first)
    settings = settings_from_args(task, args)
    try:
        outcome = tune(task, settings, config, args.space)
    except KeyboardInterrupt:
        print("\nrnnkit: interrupted; run the same command again to continue the study", file=sys.stderr)
        return 130
    return 0 if outcome.best_yaml else 1
