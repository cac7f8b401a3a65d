"""CLI entries of the classify / tag / forecast tasks, plugged into :mod:`rnnkit.cli`'s tables.

* ``rnnkit train classify|tag|forecast`` - :data:`TRAIN` (run config + train function); flags come
  from the config dataclasses; each task has its own training defaults (:func:`task_config`).
* ``rnnkit evaluate RUN --data FILE`` - dispatches on the run's task; runs of other tasks go on to
  the command this one wraps (translation, then language models).
* ``rnnkit predict RUN ...`` - labels / tags / forecasts from a trained run.
* ``rnnkit compare TASK`` - see :mod:`rnnkit.tasks.compare`.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rnnkit import config as C
from rnnkit.tasks.task_cli import print_table, run_task
from rnnkit.train.checkpoint import CheckpointError, read_meta

OUR_TASKS = ("classify", "tag", "forecast")


def _module(task: str):
    import importlib
    return importlib.import_module(f"rnnkit.tasks.{task}")


def task_config(task: str, args: argparse.Namespace):
    """Run config: task defaults < preset < --config < flags; on --resume the run's saved config < flags."""
    from rnnkit.cli import config_from_args
    mod = _module(task)
    if getattr(args, "resume", False):  # the checkpoint path, set by rnnkit.cli.resolve_resume
        base = read_meta(args.resume)["config"]
        if hasattr(mod, "upgrade_config"):  # settings the run predates keep their old values
            base = mod.upgrade_config(base)
    else:
        base = mod.TRAIN_DEFAULTS
    return config_from_args(mod.RUN_CONFIG, args, base=base)


def _out(task: str, args: argparse.Namespace) -> Path:
    out = Path(args.out) if args.out else Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not args.resume and (out / "checkpoints").exists():
        raise C.ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    return out


def _train(task: str, args: argparse.Namespace) -> int:
    mod = _module(task)
    cfg = task_config(task, args)
    out = _out(task, args)
    result = mod.train(cfg, out, resume=args.resume)
    mod.report(result)
    print(f"run saved in {out}/")
    return 0


def train_classify_command(cfg, args: argparse.Namespace) -> int:
    return _train("classify", args)


def train_tag_command(cfg, args: argparse.Namespace) -> int:
    return _train("tag", args)


def train_forecast_command(cfg, args: argparse.Namespace) -> int:
    return _train("forecast", args)


# ------------------------------------------------------------------ evaluate

def _task_or_none(run: str) -> str | None:
    try:
        return run_task(run)
    except CheckpointError:
        return None  # the wrapped command reports a missing run in its own terms


def setup_evaluate(p: argparse.ArgumentParser) -> None:
    from rnnkit.tasks.seq2seq.commands import setup_evaluate as setup_next
    setup_next(p)
    p.description = ("Score a trained run on a labelled file: accuracy / macro-F1 (classify), entity F1 (tag), "
                     "MAE / RMSE / sMAPE / MASE vs baselines (forecast), BLEU (translate), perplexity (lm).")


def evaluate_command(args: argparse.Namespace) -> int:
    from rnnkit.train.runtime import resolve_device
    resolve_device(args.device)  # an unusable --device is an error whatever the run's task
    task = _task_or_none(args.run)
    if task not in OUR_TASKS:
        from rnnkit.tasks.seq2seq.commands import evaluate_command as evaluate_next
        return evaluate_next(args)
    mod = _module(task)
    metrics = mod.evaluate(args.run, args.data)
    if args.json:
        print(json.dumps(metrics, default=float))
    else:
        mod.print_evaluation(metrics)
    return 0


# ------------------------------------------------------------------- predict

def setup_predict(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run of `rnnkit train classify|tag|forecast`")
    p.add_argument("inputs", nargs="*", help="texts to classify or sentences to tag")
    p.add_argument("--file", default="", help="classify: CSV/TSV/JSONL of inputs; tag: one sentence per line")
    p.add_argument("--data", default="", help="forecast: the series to continue (CSV/TSV/JSONL with the run's columns)")
    p.add_argument("--top", type=int, default=3, help="classify: probabilities shown per input")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")


def predict_command(args: argparse.Namespace) -> int:
    task = run_task(args.run)
    if task not in OUR_TASKS:
        raise C.ConfigError(f"{args.run}: `rnnkit predict` serves classify, tag and forecast runs, "
                            f"this is a {task!r} run (see `rnnkit generate` / `rnnkit translate`)")
    mod = _module(task)
    preds = mod.predict(args.run, args)
    if args.json:
        print(json.dumps(preds, default=float))
    else:
        mod.print_predictions(preds, args)
    return 0


# ------------------------------------------------------------------- compare

def setup_compare(p: argparse.ArgumentParser) -> None:
    from rnnkit.tasks.compare import setup
    setup(p)


def compare_command(args: argparse.Namespace) -> int:
    from rnnkit.tasks.compare import run_compare
    rows, columns = run_compare(args)
    print_table(rows, columns)
    return 0
