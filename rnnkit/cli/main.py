"""The ``rnnkit`` command line: a thin table from subcommand to plain function.

* ``rnnkit train TASK`` - one subcommand per task of the registry (:data:`rnnkit.tasks.TASKS`), its flags
  generated from the task's run config (:mod:`rnnkit.cli.flags`).
* :data:`COMMANDS` - ``evaluate``, ``predict``, ``generate``, ``compare``, ``export``, ``bench``: each reaches a run's
  task through the registry (the ``task`` its checkpoint records), never by name.
* Each task may add its own subcommands (:meth:`~rnnkit.tasks.task.Task.commands`).

This package names no task: a task is added in ``rnnkit/tasks/`` alone.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

import torch

from rnnkit import about
from rnnkit.bench import command as bench
from rnnkit.cli.flags import add_config_flags, config_from_args, given_settings
from rnnkit.cli.tune import setup_tune, tune_command
from rnnkit.config import ConfigError
from rnnkit.data.readers import DataError
from rnnkit.engines.cpp.build import CppBuildError
from rnnkit.serve import command as serve
from rnnkit.export import command as export
from rnnkit.tasks import TASKS, Command, task_of_run
from rnnkit.tasks.compare import setup as setup_compare_flags
from rnnkit.tasks.runs import print_table, rank_zero_writes, run_dir_for, saved_config
from rnnkit.train import distributed
from rnnkit.train.checkpoint import CheckpointError, resume_checkpoint
from rnnkit.train.guard import NonFiniteError
from rnnkit.train.runtime import resolve_device

COMMAND_ERRORS = (ConfigError, DataError, CheckpointError, NonFiniteError)


def _threads_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (0 = torch's default; 1 is often fastest on a busy machine)")


def _set_threads(args: argparse.Namespace) -> None:
    if args.threads < 0:
        raise ConfigError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)


def _by_task(what: str) -> str:
    """One line per task: what ``what`` (an attribute of each task) says."""
    return "\n".join(f"  {name}: {getattr(task, what)}" for name, task in TASKS.items() if getattr(task, what))


# ------------------------------------------------------------------- train

def train_command(args: argparse.Namespace) -> int:
    task = TASKS[args.task]
    resuming = bool(args.resume or args.resume_from)
    world = distributed.launch_world()  # an incomplete launch environment is an error before data is read
    launching = args.devices > 1 and not world.distributed  # start torchrun; its processes run this command
    if not launching:
        _check_processes(args, world)
    run_dir = run_dir_for(task.name, args.out, resuming)  # with --devices: one run directory for every process
    resume = False  # or the verified checkpoint to continue from: last, else best (with a notice), or the one named
    notice = ""
    if resuming:
        resume, notice = resume_checkpoint(run_dir, args.resume_from)
    base = task.upgrade_config(saved_config(resume)) if resume else dict(task.train_defaults)
    cfg = config_from_args(task, args, base=base)  # a bad setting stops here, before any process is started
    refusal = task.data_parallel_refusal(cfg) if launching or world.distributed else None
    if refusal:
        raise ConfigError(refusal)
    if launching:
        return distributed.run_local(args.devices, [*args.argv, *([] if args.out else ["--out", str(run_dir)])])
    if notice:
        print(f"rnnkit: {notice}", file=sys.stderr)
    distributed.check_batch(cfg.train.batch_size, world)
    try:
        with _printing(world), rank_zero_writes(run_dir, world):
            result = task.train(cfg, run_dir, resume=resume, given=given_settings(args))
    finally:
        distributed.shutdown()
    if world.main:
        task.report(result, run_dir)
    return 0


def _check_processes(args: argparse.Namespace, world: distributed.World) -> None:
    """``--devices`` and ``--out`` as a run in ``world``'s processes needs them."""
    if args.devices < 0:
        raise ConfigError(f"--devices must be >= 0, got {args.devices}")
    if world.distributed and args.devices > 1 and args.devices != world.world_size:
        raise ConfigError(f"--devices {args.devices} but torchrun started {world.world_size} processes")
    if world.distributed and not args.out:
        raise ConfigError("training in several processes needs --out RUN_DIR: every process must name the same "
                          "run directory")


@contextlib.contextmanager
def _printing(world: distributed.World):
    """What a task prints while it trains comes from rank 0 only (errors, on stderr, from every process)."""
    if world.main:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


# ---------------------------------------------------------------- evaluate

def setup_evaluate(p: argparse.ArgumentParser) -> None:
    p.description = "Score a trained run on a labelled file; what a run is scored on depends on its task:\n" + \
        _by_task("evaluate_help")
    p.add_argument("run", metavar="RUN_DIR", help="a run directory of `rnnkit train TASK` (or a .safetensors file)")
    p.add_argument("--data", required=True, metavar="FILE|DIR", help="the labelled data to score the run on")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    for task in TASKS.values():
        task.add_evaluate_arguments(p.add_argument_group(f"{task.name} runs"))


def evaluate_command(args: argparse.Namespace) -> int:
    device = resolve_device(args.device) if getattr(args, "device", None) else None  # unusable: an error
    task = task_of_run(args.run)
    task.check_device("evaluate", device)
    metrics = task.evaluate(args.run, args.data, vars(args))
    if args.json:
        print(json.dumps(metrics, default=float))
    else:
        task.print_evaluation(metrics, args.data)
    return 0


# ----------------------------------------------------------------- predict

def setup_predict(p: argparse.ArgumentParser) -> None:
    p.description = "Predictions of a trained run; what a run predicts depends on its task:\n" + \
        _by_task("predict_help")
    p.add_argument("run", metavar="RUN_DIR", help="a run directory of `rnnkit train TASK`")
    p.add_argument("inputs", nargs="*", help="inputs to predict from (texts, sentences)")
    p.add_argument("--file", default="", help="a file of inputs: " + "; ".join(
        f"{name}: {t.predict_file_help}" for name, t in TASKS.items() if t.predict_file_help))
    p.add_argument("--top", type=int, default=0, help="alternatives shown per input (0 = the task's default)")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    for task in TASKS.values():
        task.add_predict_arguments(p.add_argument_group(f"{task.name} runs"))


def predict_command(args: argparse.Namespace) -> int:
    if args.top < 0:
        raise ConfigError(f"--top must be >= 0, got {args.top}")
    device = resolve_device(args.device) if getattr(args, "device", None) else None  # unusable: an error
    task = task_of_run(args.run)
    task.check_device("predict", device)
    preds = task.predict(args.run, list(args.inputs), vars(args))
    if args.json:
        print(json.dumps(preds, default=float, ensure_ascii=False))
    else:
        task.print_predictions(preds, vars(args))
    return 0


# ---------------------------------------------------------------- generate

def setup_generate(p: argparse.ArgumentParser) -> None:
    generating = [name for name, t in TASKS.items() if t.can_generate]
    p.description = f"Generate from a trained run (runs of: {', '.join(generating)})."
    p.add_argument("run", metavar="RUN_DIR", help="a run directory (or a .safetensors file)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where to run")
    for name in generating:
        TASKS[name].add_generate_arguments(SharedFlags(p, p.add_argument_group(f"{name} runs"), name))


class SharedFlags:
    """One task's argument group of ``rnnkit generate``, where a flag another task already added
    (``--length``, ``--temperature``, ``--seed``) is shared instead of clashing: it is kept once, its
    default is left out of the namespace (each task then applies its own), and its help names each
    task's default."""

    def __init__(self, parser: argparse.ArgumentParser, group, task: str):
        self.parser, self.group, self.task = parser, group, task

    def add_argument(self, *names: str, **kw):
        taken = [self.parser._option_string_actions[n] for n in names if n in self.parser._option_string_actions]
        if not taken:
            return self.group.add_argument(*names, **kw)
        action = taken[0]
        dest = kw.get("dest") or names[-1].lstrip("-").replace("-", "_")
        if any(a is not action for a in taken) or action.dest != dest:
            raise ValueError(f"task {self.task} adds generate flag {'/'.join(names)}, which another task "
                             f"uses for {action.dest!r}")
        if action.default is not argparse.SUPPRESS:
            action.help = f"{_expand(action.help, action.default)}"
            action.default = argparse.SUPPRESS
        action.help += f"; {self.task} runs: " + _expand(kw.get("help", ""), kw.get("default"))
        return action


def _expand(text: str, default) -> str:
    return (text or "").replace("%(default)s", str(default))


def generate_command(args: argparse.Namespace) -> int:
    resolve_device(args.device)  # an unusable --device is an error before any run is read
    for generating in TASKS.values():  # every task checks its own flags, before a run is read
        if generating.can_generate:
            generating.check_generate_options(vars(args))
    task = task_of_run(args.run)
    for piece in task.generate(args.run, vars(args)):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


# ----------------------------------------------------------------- compare

def setup_compare(p: argparse.ArgumentParser) -> None:
    setup_compare_flags(p, [name for name, t in TASKS.items() if t.compare_metrics])


def compare_command(args: argparse.Namespace) -> int:
    rows, columns = TASKS[args.task].compare(args)
    print_table(rows, columns)
    return 0


# ------------------------------------------------------------------ doctor

def setup_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--build", action="store_true",
                   help="build the C++ CPU kernels now, in the foreground with progress (else the first use "
                        "builds them in the background)")


def doctor_command(args: argparse.Namespace) -> int:
    if args.build:
        try:
            folder, seconds = about.build_kernels()
        except CppBuildError as err:
            print(f"rnnkit: error: {err}", file=sys.stderr)
            return 1
        print(f"C++ kernels ready in {folder}" + (f" (the build took {seconds:.0f} s)" if seconds else ""))
    print("\n".join(about.report_lines(about.environment_report())))
    return 0


# ------------------------------------------------------------------ tables

COMMANDS: dict[str, Command] = {
    "generate": Command("generate from a trained run (text from a language model, MIDI from a music model)",
                        setup_generate, generate_command, threads=True),
    "evaluate": Command("score a trained run of any task on a labelled file", setup_evaluate, evaluate_command,
                        threads=True),
    "predict": Command("predictions of a trained run of any task on new inputs", setup_predict, predict_command),
    "compare": Command("train recurrent cells and baselines on the same split, print one table",
                       setup_compare, compare_command),
    "doctor": Command("what this installation can do: versions, CPU features, engines available here and why "
                      "not, caches (--build: build the C++ kernels now)", setup_doctor, doctor_command),
    "serve": Command("serve trained runs over HTTP: a route per task, streamed generation, a web page, /docs",
                     serve.setup_serve, serve.serve_command),
    "export": Command("a trained run of any task as ONNX graphs (onnxruntime) or torch.export programs, checked "
                      "against PyTorch", export.setup_export, export.export_command, threads=True),
    "bench": Command("training and inference throughput against torch.nn, ratios from one run (CPU or GPU)",
                     bench.setup_bench, bench.bench_command),
    "tune": Command("search a task's hyperparameters with Optuna (pruning, shared storage, several processes)",
                    setup_tune, tune_command),
}


def all_commands() -> dict[str, Command]:
    """:data:`COMMANDS` and every task's own subcommands; a name taken twice is an error."""
    table = dict(COMMANDS)
    for task in TASKS.values():
        for name, cmd in task.commands().items():
            if name in table or name == "train":
                raise ValueError(f"task {task.name} adds subcommand {name!r}, which already exists")
            table[name] = cmd
    return table


# ------------------------------------------------------------------ parser

class _VersionAction(argparse.Action):
    """``--version``: the line comes from rnnkit.about, computed only when asked."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(about.version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnkit", description="Recurrent neural networks: train, "
                                     "generate, evaluate and diagnose.")
    parser.add_argument("--version", action=_VersionAction, help="print rnnkit's, torch's and Python's versions")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train = sub.add_parser("train", help="train a model for a task", description="Train a model.")
    tasks = train.add_subparsers(dest="task", metavar="TASK", required=True)
    for name, task in TASKS.items():
        p = tasks.add_parser(name, help=task.help, description=f"Train {task.help}.")
        p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/<task>-<time>)")
        p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint "
                       "(its best one when the last is missing or damaged, with a notice)")
        p.add_argument("--resume-from", metavar="best|last|FILE", default="",
                       help="continue the run in --out from this checkpoint (implies --resume)")
        p.add_argument("--devices", type=int, default=0, metavar="N",
                       help="train data-parallel in N processes on this machine (torchrun started for you; one GPU "
                            "each on CUDA, gloo on the CPU); --batch-size stays the global batch (see "
                            "docs/distributed.md for several machines)")
        add_config_flags(p, task)
        p.set_defaults(_run=train_command)
    for name, cmd in all_commands().items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help[0].upper() + cmd.help[1:] + ".",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.setup(p)
        if cmd.threads:
            _threads_flag(p)
        p.set_defaults(_run=cmd.run, _threads=cmd.threads)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what --devices hands on to its processes
    try:
        if getattr(args, "_threads", False):
            _set_threads(args)
        return args._run(args)
    except COMMAND_ERRORS as err:
        print(f"rnnkit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nrnnkit: interrupted (continue a training run with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
