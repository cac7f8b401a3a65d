"""Typed configuration: the single source of truth for training runs.

Each section is a dataclass validated in ``__post_init__``; the CLI flags and
the YAML presets are generated from these fields (``help`` and ``choices``
live in the field metadata), and the fully resolved config is stored in every
checkpoint.

* :func:`opt` - a field with its CLI help and choices; :func:`from_dict` / :func:`to_dict`,
  YAML reading and merging - the machinery every task's run config is built with.
* :class:`TrainConfig`  - the generic trainer (optimiser, schedule, TBPTT,
  checkpoints, precision, ...), reused by every task.

Each task's run config (``model`` + ``data`` + ``train`` sections, as in YAML) lives in its
package, e.g. :class:`rnnkit.tasks.lm.config.LMRunConfig`::

      model: {cell: lstm, hidden: 256, layers: 2}
      data:  {tokenizer: char}
      train: {epochs: 10, lr: 0.002}
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from rnnkit.atomic import atomic_write_text
from rnnkit.layers.build import CELLS as CELL_REGISTRY

CONFIG_VERSION = 1


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def cell_names() -> tuple[str, ...]:
    """Every cell name :func:`rnnkit.layers.build_layer` knows, read from its registry when asked, so a cell
    added with :func:`rnnkit.layers.register_cell` is accepted by every config and CLI flag."""
    return tuple(CELL_REGISTRY)


def choices_of(f: dataclasses.Field) -> tuple | None:
    """The allowed values of a config field: a tuple, or a function returning one (read when asked)."""
    choices = f.metadata.get("choices")
    return choices() if callable(choices) else choices


def opt(default: Any, help: str, choices: tuple | Callable[[], tuple] | None = None, cli: str | None = None):
    """A dataclass field with CLI help text (and optional choices / flag name).

    ``choices`` may be a function (like :func:`cell_names`) for a set that grows at run time."""
    meta = {"help": help, "choices": choices, "cli": cli}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def check_choices(obj: Any) -> None:
    for f in dataclasses.fields(obj):
        choices = choices_of(f)
        value = getattr(obj, f.name)
        if choices and value not in choices:
            raise ConfigError(f"{f.name}={value!r} is not one of {', '.join(map(str, choices))}")


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    if value is None or (not allow_zero and value <= 0) or (allow_zero and value < 0) \
            or (isinstance(value, float) and not math.isfinite(value)):
        what = "non-negative" if allow_zero else "positive"
        raise ConfigError(f"{name} must be {what}, got {value!r}")


def check_fraction(name: str, value: float, upper_open: bool = True) -> None:
    if not (0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
        raise ConfigError(f"{name} must be in [0, 1{')' if upper_open else ']'}, got {value!r}")


@dataclass
class TrainConfig:
    """Generic trainer settings, shared by every task."""
    epochs: int = opt(10, "passes over the training data (0 = as many as max_time or max_steps allow)")
    batch_size: int = opt(32, "sequences (LM: parallel streams) per batch")
    bptt: int = opt(64, "TBPTT k1: time steps between updates (stateful models)")
    bptt_k2: int = opt(0, "TBPTT k2: steps to backpropagate through (0 = k1; a multiple of k1)")
    optimizer: str = opt("adamw", "optimiser", ("sgd", "rmsprop", "adam", "adamw"))
    lr: float = opt(2e-3, "peak learning rate")
    momentum: float = opt(0.9, "momentum for SGD / RMSprop")
    nesterov: bool = opt(False, "Nesterov momentum (SGD)")
    beta2: float = opt(0.999, "Adam/AdamW second-moment decay")
    weight_decay: float = opt(0.01, "weight decay (decoupled for AdamW)")
    schedule: str = opt("cosine", "learning-rate schedule (slanted: ULMFiT's triangular rise and long fall)",
                        ("constant", "step", "cosine", "plateau", "slanted"))
    warmup_steps: int = opt(100, "linear warm-up updates before the schedule")
    step_size: int = opt(1000, "updates between decays (schedule=step)")
    gamma: float = opt(0.5, "decay factor (schedule=step, plateau)")
    plateau_patience: int = opt(1, "evaluations without improvement before decay (plateau)")
    min_lr: float = opt(0.0, "floor of the learning rate (cosine, plateau)")
    clip_norm: float = opt(1.0, "clip gradients to this global L2 norm (0 = off)")
    clip_value: float = opt(0.0, "clip each gradient element to +-value (0 = off)")
    accumulate: int = opt(1, "batches whose gradients are summed before an update")
    layer_lr_decay: float = opt(1.0, "discriminative learning rates: each layer group below the top learns at "
                                     "the rate above / this factor (ULMFiT: 2.6; 1 = one rate; models with "
                                     "layer groups only)")
    unfreeze: str = opt("all", "gradual: the first epoch trains only the top layer group, each next epoch one "
                               "more (ULMFiT; models with layer groups only)", ("all", "gradual"))
    patience: int = opt(3, "early stopping: evaluations without improvement (0 = off)")
    monitor: str = opt("val_loss", "validation metric for early stopping / best checkpoint")
    monitor_mode: str = opt("min", "whether the monitored metric should go down or up", ("min", "max"))
    eval_every: int = opt(0, "evaluate every N updates (0 = at the end of each epoch)")
    max_eval_batches: int = opt(0, "cap on validation batches per evaluation (0 = all)")
    max_steps: int = opt(0, "stop after this many updates (0 = no limit)")
    max_time: float = opt(0.0, "stop after this many seconds of training (0 = no limit)")
    clock: str = opt("wall", "what max_time counts: wall-clock seconds, or this process's CPU seconds (all its "
                             "threads; for measurements on a machine shared with other jobs)", ("wall", "cpu"))
    checkpoint_every: int = opt(0, "also save the last checkpoint every N updates (0 = at evaluations)")
    seed: int = opt(0, "random seed (model init, dropout, shuffling)")
    deterministic: bool = opt(False, "bit-identical runs and resumes: deterministic algorithms only, and one CPU "
                                     "thread unless --threads N is given (see docs/lm.md)")
    device: str = opt("auto", "where to train", ("auto", "cpu", "cuda"))
    threads: int = opt(0, "CPU threads for torch (0 = torch's default); 1 is often fastest for small "
                          "recurrent layers and on a busy machine")
    precision: str = opt("fp32", "numeric precision", ("fp32", "bf16", "fp16"))
    nan_policy: str = opt("skip", "on a non-finite loss/gradient: skip the update, roll back, or stop",
                          ("skip", "rollback", "raise"))
    max_bad_steps: int = opt(10, "consecutive non-finite updates before giving up")
    log_every: int = opt(20, "updates between progress lines / step metrics")
    progress: str = opt("auto", "progress display", ("auto", "bar", "plain", "none"))
    tensorboard: str = opt("auto", "TensorBoard event files (auto = when installed)", ("auto", "on", "off"))
    diagnose: bool = opt(False, "gradient-flow and gate diagnostics at every evaluation")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("batch_size", "bptt", "accumulate", "log_every", "max_bad_steps"):
            check_positive(name, getattr(self, name))
        check_positive("epochs", self.epochs, allow_zero=True)
        if not self.epochs and not (self.max_time or self.max_steps):
            raise ConfigError("epochs=0 (no epoch limit) needs max_time or max_steps to end the run")
        for name in ("bptt_k2", "warmup_steps", "patience", "eval_every", "max_steps",
                     "checkpoint_every", "max_eval_batches", "threads", "weight_decay", "clip_norm",
                     "clip_value", "max_time", "min_lr", "momentum", "plateau_patience"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_positive("lr", self.lr)
        check_positive("step_size", self.step_size)
        check_fraction("beta2", self.beta2)
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in (0, 1], got {self.gamma!r}")
        if self.bptt_k2 and (self.bptt_k2 < self.bptt or self.bptt_k2 % self.bptt):
            raise ConfigError(f"bptt_k2={self.bptt_k2} must be 0 or a multiple of bptt={self.bptt} "
                              "(k2 >= k1: each update backpropagates through k2 steps)")
        if not self.layer_lr_decay >= 1.0:
            raise ConfigError(f"layer_lr_decay must be >= 1 (1 = one learning rate), got {self.layer_lr_decay!r}")
        if self.schedule == "slanted" and self.warmup_steps:
            raise ConfigError(f"schedule=slanted rises over its first 10% of updates itself; set warmup_steps=0 "
                              f"(--warmup-steps 0), got {self.warmup_steps}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ConfigError("nesterov needs optimizer=sgd with momentum > 0")
        if self.precision == "fp16" and self.device == "cpu":
            raise ConfigError("--precision fp16 needs a CUDA device (--device cuda or auto on a GPU machine); "
                              "on CPU use --precision fp32 or bf16")

    @property
    def k2(self) -> int:
        return self.bptt_k2 or self.bptt


# ----------------------------------------------------------------- conversion

def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (JSON / YAML ready)."""
    return dataclasses.asdict(cfg)


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    kind = {"int": int, "float": float, "bool": bool, "str": str}.get(
        annotation if isinstance(annotation, str) else getattr(annotation, "__name__", ""))
    if kind is None:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    if value is None and kind is str:
        return ""
    raise ConfigError(f"{name} must be {kind.__name__}, got {value!r}")


def from_dict(cls: type, data: dict | None, where: str = "") -> Any:
    """Build config ``cls`` from a nested dict; unknown keys are errors."""
    data = dict(data or {})
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in {where or cls.__name__}; "
                          f"known: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in data.items():
        full = f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = from_dict(hints[key], value, full)
        else:
            kwargs[key] = _coerce(full, value, hints[key])
    return cls(**kwargs)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def save_yaml(cfg: Any, path: str | Path) -> None:
    """The resolved config as YAML, written atomically."""
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def merge(base: dict, override: dict) -> dict:
    """Recursive dict merge: values of ``override`` win."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def section_fields(cls: type) -> dict[str, list[dataclasses.Field]]:
    """Section name -> its fields, for a task's run config (sections of dataclasses)."""
    hints = typing.get_type_hints(cls)
    return {f.name: list(dataclasses.fields(hints[f.name])) for f in dataclasses.fields(cls)}
