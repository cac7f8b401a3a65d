"""Shared plumbing of the classify / tag / forecast commands.

* :func:`config_parser` - argparse flags generated from a run config's
  sections (``model``, ``data``, ``train``): ``--field-name`` per field, with the
  field's help and choices; ``--config FILE.yaml`` supplies values too (flags win).
* :func:`config_from_args` - the validated run config from parsed flags.
* :func:`load_task_checkpoint` - a trained run's checkpoint, checked to be of the task.
* :func:`write_json` / :func:`print_table` - results for people and for scripts.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Sequence

from rnnkit.config import ConfigError, from_dict, load_yaml, merge
from rnnkit.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint

NO_DEFAULT = object()


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("cli") or "--" + f.name.replace("_", "-")


def _sections(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def config_parser(prog: str, description: str, run_cls: type) -> argparse.ArgumentParser:
    """A parser with one flag per config field (default: unset, so YAML and defaults apply)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", default="", help="YAML file with model/data/train sections (flags override it)")
    seen: dict[str, str] = {}
    for section, cls in _sections(run_cls).items():
        group = p.add_argument_group(section)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            flag = _flag(f)
            if flag in seen:
                raise ConfigError(f"flag {flag} is defined by both {seen[flag]} and {section}.{f.name}")
            seen[flag] = f"{section}.{f.name}"
            kind = hints[f.name]
            kw: dict[str, Any] = {"dest": f"{section}__{f.name}", "default": NO_DEFAULT,
                                  "help": f"{f.metadata.get('help', '')} (default: {f.default!r})"}
            if kind is bool:
                kw["type"] = _bool
                kw["metavar"] = "BOOL"
            elif kind in (int, float, str):
                kw["type"] = kind
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            group.add_argument(flag, **kw)
    return p


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("true", "yes", "1", "on"):
        return True
    if low in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def config_from_args(run_cls: type, args: argparse.Namespace, defaults: dict | None = None) -> Any:
    """Task defaults < YAML file < flags; validated by the dataclasses."""
    data = merge(defaults or {}, load_yaml(args.config) if args.config else {})
    for key, value in vars(args).items():
        if "__" in key and value is not NO_DEFAULT:
            section, name = key.split("__", 1)
            data.setdefault(section, {})[name] = value
    return from_dict(run_cls, data)


def find_run_checkpoint(run: str | Path, which: str = "best") -> Path:
    run = Path(run)
    if run.is_file():
        return run
    if not run.is_dir():
        raise CheckpointError(f"{run}: no such run directory")
    for name in (which, "last"):
        path = run / "checkpoints" / f"{name}.safetensors"
        if path.is_file():
            return path
    raise CheckpointError(f"{run}: no checkpoint in {run / 'checkpoints'} (train first)")


def load_task_checkpoint(run: str | Path, task: str, run_cls: type) -> tuple[Checkpoint, Any, dict]:
    """``(checkpoint, resolved config, metadata)`` of a run of ``task``."""
    ck = load_checkpoint(find_run_checkpoint(run))
    meta = ck.meta.get("metadata", {})
    if meta.get("task") != task:
        raise CheckpointError(f"{run}: not a {task} run (task {meta.get('task')!r})")
    return ck, from_dict(run_cls, ck.meta["config"]), meta


def run_task(run: str | Path) -> str:
    """The task name stored in a run's checkpoint (for ``rnnkit evaluate`` / ``predict`` dispatch)."""
    from rnnkit.train.checkpoint import read_meta
    return read_meta(find_run_checkpoint(run)).get("metadata", {}).get("task", "")


def write_json(path: str | Path, obj: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=float) + "\n", encoding="utf-8")


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
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{feature} needs {module.split('.')[0]}: pip install 'rnnkit[tasks]'") from err
