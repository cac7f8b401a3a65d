"""Run directories and saved runs, shared by every task.

* :func:`run_dir_for` / :func:`saved_config` - where a training run goes and, on ``--resume``, the
  config it was started with (one helper for every task).
* :func:`load_task_checkpoint` - a trained run's checkpoint, checked to be of the task.
* :func:`run_task` - the task name a run's checkpoint records.
* :func:`write_json` / :func:`print_table` - results for people and for scripts.
* :func:`rank_zero_writes` - in data-parallel training, only rank 0 writes the run directory.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from rnnkit.atomic import atomic_write_text, written_elsewhere
from rnnkit.config import ConfigError, from_dict
from rnnkit.train.checkpoint import Checkpoint, CheckpointError, find_run_checkpoint, load_checkpoint, read_meta
from rnnkit.train.distributed import World


def run_dir_for(task: str, out: str | None, resume: bool) -> Path:
    """The run directory of a training run: ``out``, or ``runs/<task>-<time>``.

    A directory that already holds a run is continued only with ``resume``; ``resume`` needs ``out``.
    """
    if resume and not out:
        raise ConfigError("--resume needs --out RUN_DIR (the run to continue)")
    run_dir = Path(out) if out else Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not resume and (run_dir / "checkpoints").exists():
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    return run_dir


@contextlib.contextmanager
def rank_zero_writes(run_dir: str | Path, world: World) -> Iterator[None]:
    """Around a task's training: on a rank > 0 of a data-parallel run, the task's files under ``run_dir``
    (split files, ``config.yaml``, reports, plots, ``result.json``) are left to rank 0, which writes the same
    ones; this process still reads what rank 0 wrote (checkpoints after the trainer's barrier).  Every write
    through :mod:`rnnkit.atomic` obeys it; the Trainer itself writes on rank 0 only."""
    if world.main:
        yield
        return
    with written_elsewhere(run_dir):
        yield


def saved_config(checkpoint: str | Path) -> dict:
    """The resolved config saved in a checkpoint (what a resumed run continues with)."""
    return read_meta(checkpoint)["config"]


def load_task_checkpoint(run: str | Path, task: str, run_cls: type, upgrade: Callable[[dict], dict] | None = None
                         ) -> tuple[Checkpoint, Any, dict]:
    """``(checkpoint, resolved config, metadata)`` of a run of ``task``.

    ``upgrade`` fills in settings the saved config predates with the values that reproduce the old run.
    """
    ck = load_checkpoint(find_run_checkpoint(run))
    meta = ck.meta.get("metadata", {})
    if meta.get("task") != task:
        raise CheckpointError(f"{run}: not a {task} run (task {meta.get('task')!r})")
    saved = upgrade(ck.meta["config"]) if upgrade else ck.meta["config"]
    return ck, from_dict(run_cls, saved), meta


def run_task(run: str | Path) -> str:
    """The task name stored in a run's checkpoint (for ``rnnkit evaluate`` / ``predict`` dispatch)."""
    return read_meta(find_run_checkpoint(run)).get("metadata", {}).get("task", "")


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, default=float) + "\n")


def print_table(rows: Sequence[dict], columns: Sequence[str], floats: str = "{:.4f}") -> str:
    """A plain aligned text table; returns the text it printed."""
    cells = [[floats.format(r[c]) if isinstance(r.get(c), float) else str(r.get(c, "")) for c in columns]
             for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    text = "\n".join(lines)
    print(text)
    return text


def need(module: str, feature: str):
    """Import an optional dependency or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{feature} needs {module.split('.')[0]}: pip install 'rnnkit[tasks]'") from err
