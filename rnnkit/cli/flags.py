"""Training flags generated from a task's run-config dataclasses, and the config they resolve to.

Precedence: dataclass defaults < the task's training defaults (or, on ``--resume``, the run's saved
config) < ``--preset`` < ``--config FILE.yaml`` < flags.
"""
from __future__ import annotations

import argparse

from rnnkit import config as C


def _flag(f) -> str:
    return "--" + (f.metadata.get("cli") or f.name.replace("_", "-"))


def add_config_flags(parser: argparse.ArgumentParser, task) -> None:
    """One flag per field of ``task.run_config``, grouped by section; unset flags stay out of the namespace.

    The task's own training defaults are shown in ``--help`` in place of the dataclass defaults they override.
    """
    presets = task.presets()
    parser.add_argument("--preset", metavar="NAME",
                        help=(f"a preset this task ships: {', '.join(presets)}" if presets
                              else "a shipped preset (this task ships none)"))
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file with model/data/train sections")
    for section, fields in C.section_fields(task.run_config).items():
        group = parser.add_argument_group(f"{section} options")
        for f in fields:
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            shown = task.train_defaults.get(section, {}).get(f.name, f.default)
            kw = {"dest": f"{section}.{f.name}", "default": argparse.SUPPRESS,
                  "help": f"{f.metadata.get('help', '')} (default: {shown!r})"}
            if kind == "bool":
                group.add_argument(_flag(f), action=argparse.BooleanOptionalAction, **kw)
                continue
            choices = C.choices_of(f)
            if choices:
                kw["choices"] = choices
            else:
                kw["metavar"] = {"int": "N", "float": "X"}.get(kind, "PATH" if "data" in f.name else "TEXT")
            group.add_argument(_flag(f), type={"int": int, "float": float}.get(kind, str), **kw)


def config_from_args(task, args: argparse.Namespace, base: dict | None = None):
    """Resolve ``task``'s run config: ``base`` < preset < --config < explicit flags."""
    return C.from_dict(task.run_config, C.merge(dict(base or {}), settings_from_args(task, args)))


def settings_from_args(task, args: argparse.Namespace) -> dict:
    """The settings the command line asks for (preset < --config < explicit flags), as a nested dict."""
    data: dict = {}
    if getattr(args, "preset", None):
        data = C.merge(data, task.load_preset(args.preset))
    if getattr(args, "config", None):
        data = C.merge(data, C.load_yaml(args.config))
    flags: dict = {}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            flags.setdefault(section, {})[name] = value
    return C.merge(data, flags)


def given_settings(args: argparse.Namespace) -> frozenset[tuple[str, str]]:
    """(section, field) of every setting the user wrote: flags on the command line (unset flags stay out
    of the namespace) and keys of the --config file. A shipped --preset is not counted: its values are
    the preset's, not the user's."""
    given = {tuple(key.split(".", 1)) for key in vars(args) if "." in key}
    if getattr(args, "config", None):
        data = C.load_yaml(args.config)
        given |= {(section, name) for section, fields in data.items() if isinstance(fields, dict) for name in fields}
    return frozenset(given)
