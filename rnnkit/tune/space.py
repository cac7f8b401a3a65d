"""A search space over a task's run config: validated once, sampled through Optuna's ``suggest_*``.

A space maps ``"section.field"`` of the task's run config to one distribution (the form
:func:`rnnkit.tasks.task.distribution` builds and ``--space FILE.yaml`` writes)::

    train.lr:      {type: float, low: 3.0e-4, high: 1.0e-2, log: true}
    model.hidden:  {type: int, low: 32, high: 256, log: true}
    model.cell:    {type: categorical, choices: [lstm, gru]}
    model.embedding: {type: categorical, choices: [64, 128], if: {model.tie_weights: false}}

``if`` makes an entry conditional on the values already drawn for earlier categorical entries (an
embedding size only matters, and is only valid, when the weights are not tied). An ``if`` on a setting
the space does not hold is decided once, by the study's settings: ``model.output: {..., if: {data.mode:
roll}}`` is searched in a study of piano-roll runs and left out of one whose trials are event-mode runs
(and so is an entry conditional on one left out).
Every bound and choice is checked against the run config before a trial runs, so a typo fails at once
with the key named.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from rnnkit import config as C

KEYS = {"int": {"low", "high", "step", "log"}, "float": {"low", "high", "step", "log"},
        "categorical": {"choices"}}
COMMON = {"type", "if"}
NOT_SEARCHABLE = {"train.monitor", "train.monitor_mode"}  # they define the objective, so they are fixed per study
FORM = "'section.field': {type: int|float|categorical, low/high[/step][/log] or choices[, if: {key: value}]}"


def nested(flat: Mapping[str, Any]) -> dict:
    """``{"model.hidden": 64}`` -> ``{"model": {"hidden": 64}}``."""
    out: dict = {}
    for key, value in flat.items():
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = value
    return out


@dataclass(frozen=True)
class SearchSpace:
    """A checked space: ``specs`` in drawing order (conditions refer to earlier entries)."""
    specs: dict[str, dict]

    def suggest(self, trial) -> dict[str, Any]:
        """Draw one point (flat ``"section.field" -> value``); entries whose condition fails are left out."""
        values: dict[str, Any] = {}
        for key, spec in self.specs.items():
            if not self.applies(spec, values):
                continue
            if spec["type"] == "int":
                values[key] = trial.suggest_int(key, spec["low"], spec["high"], step=spec.get("step", 1),
                                                log=spec.get("log", False))
            elif spec["type"] == "float":
                values[key] = trial.suggest_float(key, spec["low"], spec["high"], step=spec.get("step"),
                                                  log=spec.get("log", False))
            else:
                values[key] = trial.suggest_categorical(key, spec["choices"])
        return values

    @staticmethod
    def applies(spec: dict, values: Mapping[str, Any]) -> bool:
        return all(key in values and values[key] == want for key, want in spec.get("if", {}).items())

    def point_of(self, cfg: Any) -> tuple[dict[str, Any] | None, str]:
        """The point of the space a resolved config sits on (to try the defaults first), or ``(None, why not)``."""
        values: dict[str, Any] = {}
        for key, spec in self.specs.items():
            if not self.applies(spec, values):
                continue
            section, name = key.split(".", 1)
            value = getattr(getattr(cfg, section), name)
            if not contains(spec, value):
                return None, f"{key}={value!r} is outside the space"
            values[key] = value
        return values, ""


def contains(spec: dict, value: Any) -> bool:
    if spec["type"] == "categorical":
        return any(value == c and type(value) is type(c) for c in spec["choices"])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not spec["low"] <= value <= spec["high"]:
        return False
    if spec["type"] == "int" and not float(value).is_integer():
        return False
    step = spec.get("step")
    return not step or math.isclose((value - spec["low"]) / step, round((value - spec["low"]) / step))


# ------------------------------------------------------------------ checking

def check_space(space: Mapping, task, base: dict, where: str) -> SearchSpace:
    """Validate ``space`` against ``task``'s run config; ``base`` = the settings every trial starts from
    (each bound and choice must give a valid config over it); ``where`` names the source in errors."""
    if not isinstance(space, Mapping) or not space:
        raise C.ConfigError(f"{where}: a search space is a non-empty mapping {FORM}")
    fields = {f"{s}.{f.name}": f for s, fs in C.section_fields(task.run_config).items() for f in fs}
    flat = _flatten(space, where)
    specs: dict[str, dict] = {}
    left_out: set[str] = set()  # entries the study's settings rule out, and the entries conditional on them
    for key, spec in flat.items():
        at = f"{where}: {key}"
        if key not in fields:
            raise C.ConfigError(f"{at}: not a setting of {task.name} runs; settings are 'section.field', e.g. "
                                f"{', '.join(sorted(fields)[:4])}, ...")
        if key in NOT_SEARCHABLE:
            raise C.ConfigError(f"{at}: cannot be searched (it defines what the study optimises); set it with "
                                f"--{key.split('.', 1)[1].replace('_', '-')} instead")
        spec = dict(spec) if isinstance(spec, Mapping) else spec
        if isinstance(spec, dict) and (left_out & set(spec.get("if") or ())
                                       or not _settings_allow(spec, flat, fields, task, base, at)):
            left_out.add(key)
            continue
        specs[key] = _check_spec(spec, at, specs)
        for value in _values_to_check(specs[key]):
            _check_value(task, base, key, value, specs[key].get("if", {}), at)
    return SearchSpace(specs)


def _settings_allow(spec: dict, flat: Mapping, fields: Mapping, task, base: dict, at: str) -> bool:
    """Decide the parts of ``spec``'s ``if`` that name settings outside the space by the study's settings
    (``base`` over the task's training defaults): False = the entry is left out; True = it stays, with
    only its conditions on other entries of the space left in ``spec["if"]``."""
    condition = spec.get("if")
    if not isinstance(condition, dict):
        return True                                  # _check_spec names the bad form
    fixed = {k: v for k, v in condition.items() if k not in flat}
    if not fixed:
        return True
    for k in fixed:
        if k not in fields:
            raise C.ConfigError(f"{at}: if names {k!r}, which is neither an entry of the space nor a setting of "
                                f"{task.name} runs")
    cfg = C.from_dict(task.run_config, C.merge(dict(task.train_defaults), base))
    holds = all(getattr(getattr(cfg, k.split(".", 1)[0]), k.split(".", 1)[1]) == v for k, v in fixed.items())
    spec["if"] = {k: v for k, v in condition.items() if k in flat}
    if not spec["if"]:
        del spec["if"]
    return holds


def _flatten(space: Mapping, where: str) -> dict:
    """Accept ``model.hidden: {...}`` and the nested ``model: {hidden: {...}}`` alike."""
    flat: dict = {}
    for key, value in space.items():
        if not isinstance(key, str):
            raise C.ConfigError(f"{where}: key {key!r} must be text of the form {FORM}")
        if "." not in key and isinstance(value, Mapping) and "type" not in value:
            for name, spec in value.items():
                flat[f"{key}.{name}"] = spec
        else:
            flat[key] = value
    return flat


def _check_spec(spec: Any, at: str, earlier: Mapping[str, dict]) -> dict:
    if not isinstance(spec, dict) or spec.get("type") not in KEYS:
        raise C.ConfigError(f"{at}: expected a mapping with type int, float or categorical ({FORM}), got {spec!r}")
    kind = spec["type"]
    unknown = set(spec) - KEYS[kind] - COMMON
    if unknown:
        raise C.ConfigError(f"{at}: unknown key(s) {', '.join(sorted(unknown))} for a {kind} distribution; "
                            f"known: {', '.join(sorted(KEYS[kind] | COMMON))}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise C.ConfigError(f"{at}: choices must be a non-empty list, got {choices!r}")
        bad = [c for c in choices if c is not None and not isinstance(c, (bool, int, float, str))]
        if bad:
            raise C.ConfigError(f"{at}: choices must be numbers, text, true/false or null, got {bad[0]!r}")
    else:
        _check_bounds(spec, kind, at)
    condition = spec.get("if", {})
    if not isinstance(condition, dict):
        raise C.ConfigError(f"{at}: if must be a mapping {{earlier.key: value}}, got {condition!r}")
    for key, want in condition.items():
        parent = earlier.get(key)
        if parent is None or parent["type"] != "categorical":
            raise C.ConfigError(f"{at}: if names {key!r}, which must be a categorical entry listed before it")
        if not contains(parent, want):
            raise C.ConfigError(f"{at}: if {key}: {want!r} is not one of its choices {parent['choices']}")
    return spec


def _check_bounds(spec: dict, kind: str, at: str) -> None:
    for name in ("low", "high", "step"):
        if name not in spec:
            if name == "step":
                continue
            raise C.ConfigError(f"{at}: a {kind} distribution needs low and high")
        value = spec[name]
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as text
            try:
                value = float(value)
            except ValueError:
                raise C.ConfigError(f"{at}: {name} must be a number, got {spec[name]!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise C.ConfigError(f"{at}: {name} must be a finite number, got {spec[name]!r}")
        if kind == "int":
            if not float(value).is_integer():
                raise C.ConfigError(f"{at}: {name} of an int distribution must be a whole number, got {value!r}")
            value = int(value)
        spec[name] = value if kind == "int" else float(value)
    if not spec["low"] < spec["high"]:
        raise C.ConfigError(f"{at}: needs low < high, got low={spec['low']!r} high={spec['high']!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise C.ConfigError(f"{at}: log must be true or false, got {log!r}")
    if log and spec["low"] <= 0:
        raise C.ConfigError(f"{at}: log needs low > 0, got {spec['low']!r}")
    if "step" in spec and (spec["step"] <= 0 or (log and kind == "float") or (log and spec["step"] != 1)):
        raise C.ConfigError(f"{at}: step must be > 0 and cannot be combined with log (int log needs step 1), "
                            f"got step={spec['step']!r}")


def _values_to_check(spec: dict) -> list:
    return list(spec["choices"]) if spec["type"] == "categorical" else [spec["low"], spec["high"]]


def _check_value(task, base: dict, key: str, value: Any, condition: Mapping, at: str) -> None:
    """The run config over ``base`` with ``key`` (and its condition) at ``value`` must be valid."""
    point = nested({**condition, key: value})
    try:
        C.from_dict(task.run_config, C.merge(C.merge(dict(task.train_defaults), base), point))
    except C.ConfigError as err:
        raise C.ConfigError(f"{at}: {value!r} does not make a valid {task.name} config: {err}") from None


def load_space(path: str | Path, task, base: dict) -> SearchSpace:
    """``--space FILE.yaml``: replaces the task's default space."""
    return check_space(C.load_yaml(path), task, base, str(path))


def default_space(task, base: dict) -> SearchSpace:
    return check_space(task.search_space(), task, base, f"the {task.name} task's default search space")
