"""What every task offers: the :class:`Task` base class, one subclass per task package.

The registry :data:`rnnkit.tasks.TASKS` maps each task's ``name`` to one instance; the CLI
(``train``, ``evaluate``, ``predict``, ``generate``, ``compare``) and the tools built on it (serve,
export, tune) reach a task only through that table and this interface:

* ``name`` - equal to the ``task`` metadata saved in the task's checkpoints (how a run finds its task).
* ``run_config`` / ``train_defaults`` / :meth:`presets` - the typed run config, the task's own
  training defaults over the generic ones, and the YAML presets shipped in the task's ``presets/``.
* :meth:`train`, :meth:`load`, :meth:`evaluate`, :meth:`predict`, :meth:`generate` (optional:
  :attr:`can_generate`) and their printers for people.
* :meth:`upgrade_config` - the saved config of an old run, completed so that it loads.
* :meth:`example_inputs` and :meth:`export_graphs` (export), :meth:`search_space` (tuning), :meth:`serve_routes`
  (serving, see :mod:`rnnkit.tasks.serving`).
* :meth:`commands` - the task's own subcommands (``rnnkit translate``, ``rnnkit demo``, ...).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable, Iterator, Mapping

from rnnkit.config import ConfigError, cell_names, load_yaml


@dataclass(frozen=True)
class Command:
    """A subcommand: one-line help, the function adding its arguments, the function running it
    (``threads``: the command also takes ``--threads N``, applied before it runs)."""
    help: str
    setup: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    threads: bool = False


def distribution(kind: str, **spec) -> dict:
    """One entry of a search space: ``{"type": "int"|"float"|"categorical", ...}`` (Optuna's suggest_*)."""
    if kind in ("int", "float"):
        if not spec.get("low", 0) < spec.get("high", 0):
            raise ValueError(f"a {kind} distribution needs low < high, got {spec}")
    elif kind == "categorical":
        if not spec.get("choices"):
            raise ValueError("a categorical distribution needs choices")
    else:
        raise ValueError(f"distribution type must be int, float or categorical, got {kind!r}")
    return {"type": kind, **spec}


class Task:
    """Base of every task; subclasses set the class attributes and override the methods they support."""
    name: str = ""
    help: str = ""             # `rnnkit train --help`: what this task trains
    evaluate_help: str = ""    # `rnnkit evaluate --help`: what a run of this task is scored on
    predict_help: str = ""     # `rnnkit predict --help`: what a run of this task predicts from its inputs
    predict_file_help: str = ""  # `rnnkit predict --file`: the file a run of this task reads inputs from
    run_config: type = type(None)
    train_defaults: Mapping[str, Mapping[str, Any]] = {}
    presets_package: str = ""  # importable package holding the task's presets/*.yaml ("" = none)
    compare_metrics: tuple[str, ...] = ()  # `rnnkit compare` columns; empty = the task has no comparison
    device_commands: frozenset = frozenset()  # commands ("evaluate", "predict") that run this task's model on --device

    def check_device(self, command: str, device) -> None:
        """A ``--device`` (resolved: ``auto`` on a machine without CUDA is the CPU) other than the CPU, given to
        a command that runs this task's model on the CPU, is an error, not silently ignored."""
        if device is not None and str(device) != "cpu" and command not in self.device_commands:
            raise ConfigError(f"`rnnkit {command}` runs {self.name} runs on the CPU; --device {device} is not "
                              f"supported for them (drop it, or use --device cpu)")

    def data_parallel_refusal(self, cfg: Any) -> str | None:
        """Why a run of ``cfg`` cannot train in several processes (``--devices N``, torchrun), or None: every
        task that trains through :class:`~rnnkit.train.Trainer` can."""
        return None

    # ----------------------------------------------------------------- config

    def presets(self) -> list[str]:
        """Names of the presets this task ships."""
        if not self.presets_package:
            return []
        folder = resources.files(self.presets_package)
        return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))

    def load_preset(self, name: str) -> dict:
        names = self.presets()
        if name not in names:
            shipped = ", ".join(names) if names else "none"
            raise ConfigError(f"unknown preset {name!r} for task {self.name}; its presets: {shipped}")
        return load_yaml(resources.files(self.presets_package) / f"{name}.yaml")

    def upgrade_config(self, saved: dict) -> dict:
        """The saved config of a run, with settings it predates filled in by the values that reproduce it."""
        return saved

    # ------------------------------------------------------------- train / use

    def add_evaluate_arguments(self, group: argparse._ArgumentGroup) -> None:
        """Flags of ``rnnkit evaluate`` that only runs of this task read (none by default)."""

    def add_predict_arguments(self, group: argparse._ArgumentGroup) -> None:
        """Flags of ``rnnkit predict`` that only runs of this task read (none by default)."""

    def add_generate_arguments(self, group: argparse._ArgumentGroup) -> None:
        """Flags of ``rnnkit generate`` for runs of this task (only when :attr:`can_generate`)."""

    def train(self, cfg: Any, run_dir, *, resume=False, given: frozenset = frozenset(), callbacks=()) -> Any:
        """Train as configured into ``run_dir``; ``resume``: False, or the checkpoint to continue from;
        ``given`` = (section, field) the user set explicitly; ``callbacks`` go to the task's main
        :class:`~rnnkit.train.trainer.Trainer` (``on_step`` / ``on_eval``: how ``rnnkit tune`` reports and
        prunes a trial)."""
        raise NotImplementedError(f"{type(self).__name__} must define train")

    def report(self, result: Any, run_dir) -> None:
        """Print the outcome of :meth:`train` for people."""
        print(f"run saved in {run_dir}/")

    def load(self, run, which: str = "best", device: str = "cpu") -> Any:
        """The trained model of a run with what it needs to be used (tokenizers, scalers, config)."""
        raise NotImplementedError(f"{type(self).__name__} must define load")

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        """Metrics of a run on a labelled file; ``options`` = the evaluate flags (see the add_* hooks)."""
        raise NotImplementedError(f"{type(self).__name__} must define evaluate")

    def print_evaluation(self, metrics: dict, data: str) -> None:
        print(json.dumps(metrics, default=float))

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        """One JSON-ready prediction per input (or per row of the input file in ``options``)."""
        raise NotImplementedError(f"{type(self).__name__} must define predict")

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        for p in predictions:
            print(json.dumps(p, default=float, ensure_ascii=False))

    @property
    def can_generate(self) -> bool:
        return type(self).generate is not Task.generate

    def check_generate_options(self, options: Mapping[str, Any]) -> None:
        """Check the flags :meth:`add_generate_arguments` added (before any run is read)."""

    def generate(self, run, options: Mapping[str, Any]) -> Iterator[str]:
        """Stream generated text; tasks that do not generate answer with a ConfigError saying so."""
        raise ConfigError(f"{self.name} runs do not generate; use `rnnkit predict` on them")

    def compare(self, args: argparse.Namespace) -> tuple[list[dict], list[str]]:
        """``rnnkit compare``: recurrent cells and baselines on the same split -> (table rows, columns)."""
        raise ConfigError(f"{self.name} has no comparison (`rnnkit compare` covers tasks that set compare_metrics)")

    def commands(self) -> dict[str, Command]:
        """Top-level subcommands this task adds to ``rnnkit`` (name -> :class:`Command`)."""
        return {}

    # ------------------------------------------------------- export, tune, serve

    def example_inputs(self, loaded: Any) -> tuple:
        """Arguments ``loaded.model`` accepts (a tiny real batch), for tracing and ONNX export."""
        raise NotImplementedError(f"{type(self).__name__} must define example_inputs")

    def export_graphs(self, loaded: Any) -> list:
        """The graphs ``rnnkit export`` writes for a loaded run (:class:`rnnkit.tasks.graphs.ExportGraph`):
        the whole-sequence model and, for tasks that generate or stream, the step graphs with the
        recurrent state as explicit inputs and outputs."""
        raise ConfigError(f"{self.name} runs cannot be exported (the task defines no export graphs)")

    def search_space(self) -> dict[str, dict]:
        """Default hyperparameter search space of ``rnnkit tune``: ``"section.field"`` -> :func:`distribution`
        spec, drawn in this order (an ``if`` entry refers to earlier ones; see :mod:`rnnkit.tune.space`).
        The base covers the settings every task has; tasks add their own (layers, truncation length, ...)."""
        return {
            "train.lr": distribution("float", low=3e-4, high=1e-2, log=True),
            "train.batch_size": distribution("categorical", choices=[16, 32, 64]),
            "model.cell": distribution("categorical", choices=[c for c in ("lstm", "gru", "rnn")
                                                                if c in cell_names()]),
            "model.hidden": distribution("int", low=32, high=512, log=True),
            "model.dropout": distribution("float", low=0.0, high=0.5),
        }

    def serve_routes(self, loaded: Any) -> list:
        """What ``rnnkit serve`` offers for a loaded run of this task (:meth:`load`'s answer): a list of
        :class:`rnnkit.tasks.serving.Route`; empty = runs of this task are not served."""
        return []
