"""Search spaces: every task's default space draws valid configs, and a YAML space is checked with errors
that name the file and the key (no training here)."""
from __future__ import annotations

import optuna
import pytest

from rnnkit import config as C
from rnnkit.tasks import TASKS
from rnnkit.tune.space import check_space, default_space, load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


BUNDLES = {"voice-translate"}  # bundles of other tasks' runs: no space of their own (tuned stage by stage)


@pytest.mark.parametrize("name", sorted(set(TASKS) - BUNDLES))
def test_every_default_space_draws_valid_configs(name):
    task = TASKS[name]
    space = default_space(task, {})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(8):
        point = space.suggest(study.ask())
        assert set(point) <= set(space.specs)
        settings = {}
        for key, value in point.items():
            section, field = key.split(".", 1)
            settings.setdefault(section, {})[field] = value
        cfg = C.from_dict(task.run_config, C.merge(dict(task.train_defaults), settings))
        for key, value in point.items():
            section, field = key.split(".", 1)
            assert getattr(getattr(cfg, section), field) == value
    base = C.from_dict(task.run_config, dict(task.train_defaults))
    assert space.point_of(base)[0] is not None, f"{name}: its own defaults should be a point of its space"


def test_a_conditional_entry_is_drawn_only_when_its_condition_holds():
    space = default_space(TASKS["lm"], {})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        point = space.suggest(study.ask())
        assert ("model.tie_weights" in point) == (point["model.embedding"] == 0)
        seen.add(point.get("model.tie_weights"))
    assert seen == {True, False, None}


def _write(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_a_yaml_space_replaces_the_default_and_accepts_both_layouts(tmp_path):
    path = _write(tmp_path, "train.lr: {type: float, low: 1e-4, high: 1e-2, log: true}\n"
                            "model:\n  hidden: {type: int, low: 8, high: 32, step: 8}\n"
                            "  cell: {type: categorical, choices: [lstm, gru]}\n")
    space = load_space(path, TASKS["classify"], {})
    assert list(space.specs) == ["train.lr", "model.hidden", "model.cell"]
    assert space.specs["train.lr"]["low"] == 1e-4  # YAML reads 1e-4 as text; it is taken as the number


@pytest.mark.parametrize("text, message", [
    ("model.hiddn: {type: int, low: 8, high: 32}\n", "model.hiddn: not a setting of classify runs"),
    ("model.hidden: {type: integer, low: 8, high: 32}\n", "model.hidden: expected a mapping with type int, float"),
    ("model.hidden: {type: int, low: 32, high: 8}\n", "model.hidden: needs low < high"),
    ("model.hidden: {type: int, low: 8.5, high: 32}\n", "low of an int distribution must be a whole number"),
    ("model.hidden: {type: int, low: 8, high: 32, scale: 2}\n", "unknown key(s) scale for a int distribution"),
    ("train.lr: {type: float, low: 0, high: 0.1, log: true}\n", "train.lr: log needs low > 0"),
    ("model.cell: {type: categorical, choices: [lstm, nocell]}\n",
     "model.cell: 'nocell' does not make a valid classify config"),
    ("model.dropout: {type: float, low: 0.0, high: 1.5}\n", "model.dropout: 1.5 does not make a valid"),
    ("model.cell: {type: categorical, choices: []}\n", "choices must be a non-empty list"),
    ("model.embedding: {type: categorical, choices: [32], if: {model.cell: gru}}\n"
     "model.cell: {type: categorical, choices: [lstm, gru]}\n", "which must be a categorical entry listed before it"),
    ("train.monitor: {type: categorical, choices: [val_loss, val_accuracy]}\n", "train.monitor: cannot be searched"),
    ("[1, 2]\n", "expected a mapping of sections"),
])
def test_a_bad_yaml_space_is_an_error_naming_file_and_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(C.ConfigError) as err:
        load_space(path, TASKS["classify"], {})
    assert message in str(err.value) and (str(path) in str(err.value))


def test_bounds_are_checked_over_the_studys_settings():
    # alone, embedding 8 is valid only when the weights are not tied: the study's settings decide
    space = {"model.embedding": {"type": "categorical", "choices": [8]}}
    with pytest.raises(C.ConfigError, match="tie_weights needs embedding == hidden"):
        check_space(space, TASKS["lm"], {"model": {"hidden": 16, "tie_weights": True}}, "here")
    assert check_space(space, TASKS["lm"], {"model": {"hidden": 16, "tie_weights": False}}, "here").specs


@pytest.mark.parametrize("mode", ["roll", "performance", "melody"])
def test_the_music_space_follows_the_studys_mode(mode):
    """model.output (sigmoid / nade) applies to piano-roll runs only: event-mode studies do not draw it."""
    base = {"data": {"mode": mode}}
    space = default_space(TASKS["music"], base)
    assert ("model.output" in space.specs) == (mode == "roll")
    assert all("data.mode" not in spec.get("if", {}) for spec in space.specs.values())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    outputs = set()
    for _ in range(12):
        point = space.suggest(study.ask())
        outputs.add(point.get("model.output"))
        assert ("model.nade_hidden" in point) == (point.get("model.output") == "nade")
        settings = C.merge(base, {k.split(".")[0]: {} for k in point})
        for key, value in point.items():
            section, field = key.split(".", 1)
            settings[section][field] = value
        C.from_dict(TASKS["music"].run_config, C.merge(dict(TASKS["music"].train_defaults), settings))
    assert outputs == ({"sigmoid", "nade"} if mode == "roll" else {None})


def test_an_if_on_a_setting_outside_the_space_is_decided_by_the_studys_settings(tmp_path):
    path = _write(tmp_path, "model.hidden: {type: int, low: 8, high: 32}\n"
                            "model.output: {type: categorical, choices: [sigmoid, nade], if: {data.mode: roll}}\n"
                            "model.embedding: {type: int, low: 8, high: 32, if: {data.mode: melody}}\n")
    music = TASKS["music"]
    assert list(load_space(path, music, {}).specs) == ["model.hidden", "model.output"]
    assert list(load_space(path, music, {"data": {"mode": "melody"}}).specs) == ["model.hidden", "model.embedding"]
    bad = _write(tmp_path, "model.hidden: {type: int, low: 8, high: 32, if: {data.moood: roll}}\n")
    with pytest.raises(C.ConfigError, match="data.moood.*neither an entry of the space nor a setting of music"):
        load_space(bad, music, {})
