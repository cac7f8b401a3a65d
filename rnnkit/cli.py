"""The ``rnnkit`` command line: a thin table from subcommand to plain function.

* ``COMMANDS``: top-level subcommands (``generate``, ``evaluate``, ``diagnose``,
  ``demo``) -> :class:`Command`.
* ``TRAIN_TASKS``: ``rnnkit train <task>`` -> :class:`TrainTask` (its run-config
  dataclass and the function that trains it).  Adding ``train classify`` is one
  entry here.

Training flags are generated from the config dataclasses (:mod:`rnnkit.config`);
precedence: dataclass defaults < ``--preset`` < ``--config FILE.yaml`` < flags.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Callable

import time
from pathlib import Path

from rnnkit import config as C
from rnnkit.data.readers import DataError
from rnnkit.train.checkpoint import CheckpointError
from rnnkit.train.guard import NonFiniteError

COMMAND_ERRORS = (C.ConfigError, DataError, CheckpointError, NonFiniteError)


@dataclass(frozen=True)
class Command:
    help: str
    setup: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class TrainTask:
    help: str
    config: type
    run: Callable[[object, argparse.Namespace], int]
    defaults: dict = field(default_factory=dict)  # the task's own values over the config defaults, by section


# ------------------------------------------------------------ LM commands

def _default_out(task: str) -> Path:
    return Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"


def train_lm_command(cfg, args: argparse.Namespace) -> int:
    from rnnkit.tasks.lm import train_lm
    out = Path(args.out) if args.out else _default_out("lm")
    if args.resume:
        cfg = _resume_config(C.LMRunConfig, args)
    elif (out / "checkpoints").exists():
        raise C.ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if cfg.model.model == "markov" and not args.resume:
        from rnnkit.tasks.lm_markov import check_markov_settings
        check_markov_settings(cfg, given_settings(args))  # also a setting given at its default value
    run = train_lm(cfg, out, resume=args.resume)
    if cfg.model.model == "markov":
        from rnnkit.tasks.lm_markov import report
        report(run)
    else:
        _report_run(run)
    return 0


def _resume_config(run_cls: type, args: argparse.Namespace):
    from rnnkit.train.checkpoint import read_meta
    return config_from_args(run_cls, args, base=read_meta(args.resume)["config"])


def resolve_resume(args: argparse.Namespace) -> None:
    """``--resume`` / ``--resume-from``: replace ``args.resume`` by the verified checkpoint to continue from
    (last, else best with a notice on stderr; or the one named); False when not resuming."""
    from rnnkit.train.checkpoint import resume_checkpoint
    if not (args.resume or args.resume_from):
        return
    if not args.out:
        raise C.ConfigError("--resume needs --out RUN_DIR (the run to continue)")
    path, notice = resume_checkpoint(args.out, args.resume_from or "")
    if notice:
        print(f"rnnkit: {notice}", file=sys.stderr)
    args.resume = path


def _report_run(run) -> None:
    m = run.metrics
    print(f"best validation: loss {m['val_loss']:.4f} nats/token, perplexity {m['val_ppl']:.2f}, "
          f"{m['val_bpc']:.3f} bits/char ({run.result.steps} updates, {run.result.train_s:.0f} s training, "
          f"{run.result.elapsed_s:.0f} s with evaluations, stopped: {run.result.stopped})")
    print(f"run saved in {run.run_dir}/ (checkpoints/best.safetensors, metrics.jsonl, plots/curves.png)")


def _sampling_flags(p: argparse.ArgumentParser, length: int = 500) -> None:
    p.add_argument("--prompt", default="", help="priming text, run once before sampling")
    p.add_argument("--length", type=int, default=length, help="tokens to generate (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="softmax temperature; 0 = greedy (default: %(default)s)")
    p.add_argument("--greedy", action="store_true", help="always take the most likely token")
    p.add_argument("--top-k", type=int, default=0, help="sample from the k most likely tokens (0 = off)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    p.add_argument("--seed", type=int, default=None, help="random seed for sampling")


def _threads_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (0 = torch's default; 1 is often fastest on a busy machine)")


def _set_threads(args: argparse.Namespace) -> None:
    import torch
    if args.threads < 0:
        raise C.ConfigError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)


def setup_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory from `rnnkit train lm` (or a .safetensors file)")
    _sampling_flags(p)
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where to run")
    _threads_flag(p)


def _stream(lm, args: argparse.Namespace) -> str:
    from rnnkit.tasks.lm import generate
    out, text = sys.stdout, args.prompt
    out.write(args.prompt)
    for piece in generate(lm.model, lm.tokenizer, args.prompt, args.length,
                          temperature=0.0 if args.greedy else args.temperature,
                          top_k=args.top_k, top_p=args.top_p, seed=args.seed):
        out.write(piece)
        out.flush()
        text += piece
    out.write("\n")
    return text


def generate_command(args: argparse.Namespace) -> int:
    from rnnkit.tasks.lm import check_sampling, load_run
    from rnnkit.train.runtime import resolve_device
    check_sampling(args.length, args.temperature, args.top_k, args.top_p)
    _set_threads(args)
    lm = load_run(args.run, args.checkpoint, device=resolve_device(args.device))
    _stream(lm, args)
    return 0


def setup_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory from `rnnkit train lm`")
    p.add_argument("--data", required=True, metavar="FILE|DIR", help="UTF-8 text to score")
    p.add_argument("--batch-size", type=int, default=8, help="parallel streams (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _threads_flag(p)


def evaluate_command(args: argparse.Namespace) -> int:
    import json
    from rnnkit.tasks.lm import evaluate_lm
    if args.batch_size < 1:
        raise C.ConfigError(f"--batch-size must be positive, got {args.batch_size}")
    _set_threads(args)
    m = evaluate_lm(args.run, args.data, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(m))
    else:
        print(f"{args.data}: loss {m['loss']:.4f} nats/token, perplexity {m['ppl']:.3f}, "
              f"{m['bpc']:.4f} bits/char over {m['tokens']} tokens ({m['unknown_tokens']} unknown)")
    return 0


def setup_diagnose(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory from `rnnkit train lm`")
    p.add_argument("--data", metavar="FILE|DIR", help="text to measure on (default: the run's validation text)")
    p.add_argument("--steps", type=int, default=200, help="time steps to backpropagate through (default: %(default)s)")
    _threads_flag(p)


def diagnose_command(args: argparse.Namespace) -> int:
    from rnnkit.train.diagnostics import summarize
    from rnnkit.tasks.lm import diagnose_run
    if args.steps < 2:
        raise C.ConfigError(f"--steps must be at least 2, got {args.steps}")
    _set_threads(args)
    report = diagnose_run(args.run, args.data, steps=args.steps)
    print("\n".join(summarize(report)))
    print("saved: " + ", ".join(report["files"] + [str(Path(args.run) / "diagnostics" / "diagnostics.json")]))
    return 0


def setup_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=60.0,
                   help="seconds of training (evaluations and one-time kernel builds not counted; "
                        "default: %(default)s)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/demo-<time>)")
    _sampling_flags(p, length=400)
    p.set_defaults(prompt="def ")


def demo_command(args: argparse.Namespace) -> int:
    from rnnkit.data.corpus import STDLIB_FILES, stdlib_dir
    from rnnkit.tasks.lm import check_sampling, load_run, train_lm
    from rnnkit.tasks.lm_demo import learning_verdict, unigram_nats
    if args.seconds <= 0:
        raise C.ConfigError(f"--seconds must be positive, got {args.seconds}")
    check_sampling(args.length, args.temperature, args.top_k, args.top_p)
    cfg = C.from_dict(C.LMRunConfig, C.merge(load_preset("demo"), {"train": {"max_time": args.seconds}}))
    out = Path(args.out) if args.out else _default_out("demo")
    print(f"rnnkit demo: a {cfg.model.layers}-layer {cfg.model.cell.upper()} ({cfg.model.hidden} units) learns "
          f"to write Python from {len(STDLIB_FILES)} standard-library sources in {stdlib_dir()}, "
          f"for {args.seconds:.0f} s.\n", flush=True)
    run = train_lm(cfg, out)
    _report_run(run)
    verdict = learning_verdict(run.result.steps, run.metrics.get("val_loss"),
                               unigram_nats(run.corpus.train, run.corpus.val))
    if verdict is not None:  # noise printed as "generated text" teaches nothing: say so and fail
        print(f"\nrnnkit demo: NOTHING LEARNED: {verdict}. Training stopped ({run.result.stopped}) after "
              f"{run.result.train_s:.1f} s; give it more time with --seconds, and see `rnnkit doctor` for what "
              f"runs slowly here. No text is generated from an untrained model.", file=sys.stderr)
        return 3
    print(f"\n--- generated (temperature {args.temperature}, prompt {args.prompt!r}) ---")
    _stream(load_run(out), args)
    print(f"---\nplots: {out / 'plots' / 'curves.png'}, {out / 'diagnostics'}/*.png")
    print(f"more: rnnkit generate {out} --prompt 'class ' --length 500")
    return 0


def setup_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--build", action="store_true",
                   help="build the C++ CPU kernels now, in the foreground with progress (else the first use "
                        "builds them in the background)")


def doctor_command(args: argparse.Namespace) -> int:
    from rnnkit import about
    from rnnkit.engines.cpp.build import CppBuildError
    if args.build:
        try:
            folder, seconds = about.build_kernels()
        except CppBuildError as err:
            print(f"rnnkit: error: {err}", file=sys.stderr)
            return 1
        print(f"C++ kernels ready in {folder}" + (f" (the build took {seconds:.0f} s)" if seconds else ""))
    print("\n".join(about.report_lines(about.environment_report())))
    return 0


# ------------------------------------------------------------ config flags

def _flag(f) -> str:
    return "--" + (f.metadata.get("cli") or f.name.replace("_", "-"))


def add_config_flags(parser: argparse.ArgumentParser, run_cls: type, defaults: dict | None = None) -> None:
    """One flag per config field, grouped by section; unset flags stay out of the namespace.

    ``defaults`` (section -> field -> value) are the task's own training defaults, shown in ``--help``
    in place of the dataclass defaults they override.
    """
    defaults = defaults or {}
    parser.add_argument("--preset", help="a shipped preset name (see rnnkit/presets/)")
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file with model/data/train sections")
    for section, fields in C.section_fields(run_cls).items():
        group = parser.add_argument_group(f"{section} options")
        for f in fields:
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            shown = defaults.get(section, {}).get(f.name, f.default)
            kw = {"dest": f"{section}.{f.name}", "default": argparse.SUPPRESS,
                  "help": f"{f.metadata.get('help', '')} (default: {shown!r})"}
            if kind == "bool":
                group.add_argument(_flag(f), action=argparse.BooleanOptionalAction, **kw)
                continue
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            else:
                kw["metavar"] = {"int": "N", "float": "X"}.get(kind, "PATH" if "data" in f.name else "TEXT")
            group.add_argument(_flag(f), type={"int": int, "float": float}.get(kind, str), **kw)


def config_from_args(run_cls: type, args: argparse.Namespace, base: dict | None = None):
    """Resolve a run config: defaults < preset < --config < explicit flags (< ``base`` first)."""
    data = dict(base or {})
    if getattr(args, "preset", None):
        data = C.merge(data, load_preset(args.preset))
    if getattr(args, "config", None):
        data = C.merge(data, C.load_yaml(args.config))
    flags: dict = {}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            flags.setdefault(section, {})[name] = value
    return C.from_dict(run_cls, C.merge(data, flags))


def given_settings(args: argparse.Namespace) -> set[tuple[str, str]]:
    """(section, field) of every setting the user wrote: flags on the command line (unset flags stay out
    of the namespace) and keys of the --config file. A shipped --preset is not counted: its values are
    the preset's, not the user's."""
    given = {tuple(key.split(".", 1)) for key in vars(args) if "." in key}
    if getattr(args, "config", None):
        data = C.load_yaml(args.config)
        given |= {(section, name) for section, fields in data.items() if isinstance(fields, dict) for name in fields}
    return given


def preset_names() -> list[str]:
    from importlib import resources
    return sorted(p.name[:-5] for p in (resources.files("rnnkit") / "presets").iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict:
    from importlib import resources
    names = preset_names()
    if name not in names:
        raise C.ConfigError(f"unknown preset {name!r}; shipped presets: {', '.join(names)}")
    return C.load_yaml(resources.files("rnnkit") / "presets" / f"{name}.yaml")


# ------------------------------------------------------------------ tables

from rnnkit.tasks.seq2seq import commands as _translate  # noqa: E402  (translation task, issue 5)
from rnnkit.tasks import task_commands as _tasks  # noqa: E402  (classify / tag / forecast, issue 4)
from rnnkit.tasks import classify as _classify, forecast as _forecast, tag as _tag  # noqa: E402
from rnnkit.bench import command as _bench  # noqa: E402  (benchmarks, issues 2 and 6)

TRAIN_TASKS: dict[str, TrainTask] = {
    "lm": TrainTask("a language model on text (default: the embedded corpus)", C.LMRunConfig, train_lm_command),
    "translate": TrainTask("an encoder-decoder with attention on sentence pairs (default: the embedded "
                           "English-French phrase book)", _translate.TranslateRunConfig, _translate.train_translate_command),
    "classify": TrainTask("a sequence classifier on labelled texts or numeric sequences (default: digits)",
                          _classify.RUN_CONFIG, _tasks.train_classify_command, _classify.TRAIN_DEFAULTS),
    "tag": TrainTask("a sequence tagger (NER, POS) on CoNLL / JSONL files (default: embedded NER set)",
                     _tag.RUN_CONFIG, _tasks.train_tag_command, _tag.TRAIN_DEFAULTS),
    "forecast": TrainTask("a forecaster on a time series, backtested against baselines (default: CO2)",
                          _forecast.RUN_CONFIG, _tasks.train_forecast_command, _forecast.TRAIN_DEFAULTS),
}

COMMANDS: dict[str, Command] = {
    "generate": Command("generate text from a trained language model", setup_generate, generate_command),
    "evaluate": Command("score a trained run on a file: perplexity (language models), BLEU and chrF "
                        "(translation), accuracy / entity F1 / MAE (classify, tag, forecast)",
                        _tasks.setup_evaluate, _tasks.evaluate_command),
    "predict": Command("labels, tags or forecasts from a classify / tag / forecast run",
                       _tasks.setup_predict, _tasks.predict_command),
    "compare": Command("train recurrent cells and baselines on the same split, print one table",
                       _tasks.setup_compare, _tasks.compare_command),
    "translate": Command("translate sentences with a trained translation run (beam search, n-best)",
                         _translate.setup_translate, _translate.translate_command),
    "diagnose": Command("gradient flow over time and gate saturation of a trained run (PNG plots)",
                        setup_diagnose, diagnose_command),
    "demo": Command("train a small character model on the embedded corpus for about a minute, then write",
                    setup_demo, demo_command),
    "doctor": Command("what this installation can do: versions, CPU features, engines available here and why "
                      "not, caches (--build: build the C++ kernels now)", setup_doctor, doctor_command),
    "bench": Command("training and inference throughput against torch.nn, ratios from one run (CPU or GPU)",
                     _bench.setup_bench, _bench.bench_command),
}



# ------------------------------------------------------------------ parser

class _VersionAction(argparse.Action):
    """``--version``: the line comes from rnnkit.about, computed only when asked."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from rnnkit.about import version_line
        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnkit", description="Recurrent neural networks: train, "
                                     "generate, evaluate and diagnose.")
    parser.add_argument("--version", action=_VersionAction, help="print rnnkit's, torch's and Python's versions")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train = sub.add_parser("train", help="train a model for a task", description="Train a model.")
    tasks = train.add_subparsers(dest="task", metavar="TASK", required=True)
    for name, task in TRAIN_TASKS.items():
        p = tasks.add_parser(name, help=task.help, description=f"Train {task.help}.")
        p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/<task>-<time>)")
        p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint "
                       "(its best one when the last is missing or damaged, with a notice)")
        p.add_argument("--resume-from", metavar="best|last|FILE", default="",
                       help="continue the run in --out from this checkpoint (implies --resume)")
        add_config_flags(p, task.config, task.defaults)
        p.set_defaults(_train=task)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help[0].upper() + cmd.help[1:] + ".")
        cmd.setup(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            resolve_resume(args)
            cfg = config_from_args(args._train.config, args, base=args._train.defaults) if not args.resume else None
            return args._train.run(cfg, args)
        return args._run(args)
    except COMMAND_ERRORS as err:
        print(f"rnnkit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nrnnkit: interrupted (continue a training run with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
