"""``rnnkit compare TASK``: recurrent cells and the literature's baselines on the same split, one table.

For each variant the task's normal training runs (same data, split, seed and
training settings) in ``OUT/<variant>/``; the table shows the test metric,
the parameter count and the training time (``train_s``: every fit of the
variant, for forecast the early-stopped fit plus the ``--refit`` one), so one
sees where recurrence pays.

* classify: each ``--cells`` cell, the TDNN and MLP networks, and logistic
  regression (TF-IDF for text, flattened sequences for numeric data) or, for
  audio clips, MFCC statistics with an RBF SVM;
* asr: CTC greedy, CTC beam, CTC beam + a character LM and Listen, Attend and
  Spell beam search, WER / CER and decoding time on the same test split;
* tag: each cell, TDNN and MLP (the output layer, softmax or CRF, as ``--set model.output=...``), and a
  linear-chain CRF over hand-made word features (python-crfsuite);
* forecast: each cell, TDNN and MLP, plus naive, seasonal naive, linear AR,
  ETS and SARIMA from the same rolling-origin backtest;
* lm: each cell (``rnnkit train lm``) and Kneser-Ney n-gram Markov models of
  ``--orders``, same tokenizer, scored on the same validation text.

This module holds what every task's comparison shares (the flags, the variants, the loop over them);
each task's :meth:`~rnnkit.tasks.task.Task.compare` adds its metrics and baselines.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path
from typing import Callable

from rnnkit import config as C
from rnnkit.tasks.runs import write_json


def setup(p: argparse.ArgumentParser, tasks: list[str]) -> None:
    p.add_argument("task", choices=tasks, help="which task to compare on")
    p.add_argument("--data", default="", help="the task's data file or folder (default: its embedded set)")
    p.add_argument("--dataset", default="", help="embedded set to use without --data")
    p.add_argument("--target", default="", help="forecast: column(s) to forecast")
    p.add_argument("--horizon", type=int, default=0, help="forecast: steps to forecast")
    p.add_argument("--cells", default="lstm,gru,rnn", help="recurrent cells to train (comma-separated)")
    p.add_argument("--models", default="tdnn,mlp", help="non-recurrent networks to train (comma-separated)")
    p.add_argument("--orders", default="3,5", help="lm: orders of the n-gram Markov baselines")
    p.add_argument("--epochs", type=int, default=0, help="training epochs for every network (0 = task default)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="any other setting, e.g. --set model.hidden=64 (repeatable)")
    p.add_argument("--out", default="", help="folder for the runs (default: runs/compare-<task>-<time>)")
    p.add_argument("--folds", type=int, default=0,
                   help="classify: k-fold cross-validation (e.g. 10 for MR), each row the mean over the folds")


def out_dir(args: argparse.Namespace) -> Path:
    return Path(args.out) if args.out else Path("runs") / f"compare-{args.task}-{time.strftime('%Y%m%d-%H%M%S')}"


def overrides(args: argparse.Namespace) -> dict:
    data: dict = {}
    for key in ("data", "dataset", "target"):
        if getattr(args, key):
            data[key] = getattr(args, key)
    if args.horizon:
        data["horizon"] = args.horizon
    out: dict = {"data": data} if data else {}
    if args.epochs:
        out["train"] = {"epochs": args.epochs}
    for item in args.set:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise C.ConfigError(f"--set expects SECTION.FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        out = C.merge(out, {section: {name: value}})
    return out


def variants(args: argparse.Namespace) -> list[tuple[str, dict]]:
    cells = [c for c in args.cells.split(",") if c]
    models = [m for m in args.models.split(",") if m]
    bad = [m for m in models if m not in ("tdnn", "mlp")]
    if bad:
        raise C.ConfigError(f"--models takes tdnn and mlp, got {', '.join(bad)}")
    return [(c, {"model": {"model": "rnn", "cell": c}}) for c in cells] + \
           [(m, {"model": {"model": m}}) for m in models]


def compare_networks(task, args: argparse.Namespace, metrics: list[str],
                     rows_of: Callable[[str, dict], list[dict]], baselines: Callable[[object], list[dict]],
                     first_only: dict | None = None) -> tuple[list[dict], list[str]]:
    """Train every variant of ``task`` on the same split into ``OUT/<variant>/``; one row per variant (from
    ``rows_of(name, result)``), then the task's ``baselines(cfg)``. ``first_only``: settings for every variant
    after the first (e.g. no baselines again)."""
    if getattr(args, "folds", 0):
        raise C.ConfigError(f"--folds: {task.name} has no cross-validation; compare it without --folds")
    out = out_dir(args)
    base = C.merge(task.train_defaults, overrides(args))
    rows: list[dict] = []
    for i, (name, over) in enumerate(variants(args)):
        cfg_dict = C.merge(base, over)
        if first_only and i > 0:
            cfg_dict = C.merge(cfg_dict, first_only)
        cfg = C.from_dict(task.run_config, cfg_dict)
        # what the command line set (flags, --set, the variant): a task checks these against what it adopts
        given = frozenset((section, field) for section, fields in C.merge(overrides(args), over).items()
                          for field in fields)
        print(f"== {name}", flush=True)
        rows += rows_of(name, task.train(cfg, out / name, given=given))
    rows += baselines(C.from_dict(task.run_config, base))
    write_json(out / "compare.json", rows)
    return rows, ["model"] + metrics + ["parameters", "train_s"]


def test_rows(metrics: list[str]) -> Callable[[str, dict], list[dict]]:
    """The row of a variant whose training result holds ``test_<metric>`` for each metric."""
    def rows_of(name: str, result: dict) -> list[dict]:
        return [{"model": name, **{k: result.get(f"test_{k}", "") for k in metrics},
                 "parameters": result["parameters"], "train_s": result["elapsed_s"]}]
    return rows_of


def cross_validate(args: argparse.Namespace, metrics: list[str],
                   compare_fold: Callable[[argparse.Namespace], tuple[list[dict], list[str]]]
                   ) -> tuple[list[dict], list[str]]:
    """``--folds K``: ``compare_fold`` once per fold (``data.folds=K``, ``data.fold=i``, runs in
    ``OUT/fold-<i>/``); one row per model with the mean of each metric over the folds, its standard
    deviation (``<metric>_std``), ``train_s`` summed and the first metric of every fold in order
    (``<metric>_folds``). Every fold's table is kept in ``OUT/compare.json``."""
    if args.folds < 2:
        raise C.ConfigError(f"--folds must be >= 2, got {args.folds}")
    out = out_dir(args)
    per_fold: list[list[dict]] = []
    columns: list[str] = []
    first = metrics[0]
    for i in range(args.folds):
        fold_args = copy.copy(args)
        fold_args.folds, fold_args.out = 0, str(out / f"fold-{i}")
        fold_args.set = list(args.set) + [f"data.folds={args.folds}", f"data.fold={i}"]
        print(f"=== fold {i + 1}/{args.folds}", flush=True)
        rows, columns = compare_fold(fold_args)
        per_fold.append(rows)
        print(f"fold {i + 1}/{args.folds} {first}: " + ", ".join(f"{r['model']} {float(r[first]):.4f}" for r in rows),
              flush=True)
    rows = []
    for row in per_fold[0]:
        same = [r for fold in per_fold for r in fold if r["model"] == row["model"]]
        agg = {"model": row["model"]}
        for m in metrics:
            values = [float(r[m]) for r in same]
            agg[m] = statistics.fmean(values)
            agg[f"{m}_std"] = statistics.stdev(values)
        agg["parameters"] = row["parameters"]
        agg["train_s"] = sum(float(r["train_s"]) for r in same)
        agg[f"{first}_folds"] = " ".join(f"{float(r[first]):.3f}" for r in same)
        rows.append(agg)
    write_json(out / "compare.json", {"folds": args.folds, "mean": rows, "per_fold": per_fold})
    return rows, (["model"] + [c for m in metrics for c in (m, f"{m}_std")] + ["parameters", "train_s"]
                  + [f"{first}_folds"])
