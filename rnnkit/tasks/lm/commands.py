"""The language model's own subcommands (``rnnkit diagnose RUN``, ``rnnkit demo``) and the sampling flags
and printing they share with ``rnnkit generate``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

from rnnkit.config import ConfigError, from_dict, merge
from rnnkit.data.corpus import STDLIB_FILES, stdlib_dir
from rnnkit.tasks.lm.config import LMRunConfig
from rnnkit.tasks.lm.demo_check import learning_verdict, unigram_nats
from rnnkit.tasks.lm.markov import MarkovFit, report as report_markov
from rnnkit.tasks.lm.model import check_sampling, diagnose_run, generate, load_run, train_lm
from rnnkit.tasks.runs import run_dir_for
from rnnkit.train.diagnostics import summarize


def add_sampling_arguments(p, length: int = 500) -> None:
    """Flags of text generation (``rnnkit generate`` and ``rnnkit demo``)."""
    p.add_argument("--prompt", default="", help="priming text, run once before sampling")
    p.add_argument("--length", type=int, default=length, help="tokens to generate (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="softmax temperature; 0 = greedy (default: %(default)s)")
    p.add_argument("--greedy", action="store_true", help="always take the most likely token")
    p.add_argument("--top-k", type=int, default=0, help="sample from the k most likely tokens (0 = off)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    p.add_argument("--seed", type=int, default=None, help="random seed for sampling")


def stream(loaded, options: Mapping[str, Any]) -> Iterator[str]:
    """The prompt, then the generated text piece by piece."""
    yield options.get("prompt", "")
    yield from generate(loaded.model, loaded.tokenizer, options.get("prompt", ""), options.get("length", 500),
                        temperature=0.0 if options.get("greedy") else options.get("temperature", 0.8),
                        top_k=options.get("top_k", 0), top_p=options.get("top_p", 1.0), seed=options.get("seed"))


def report_run(run) -> None:
    """The outcome of ``train_lm`` for people (an n-gram run has its own report)."""
    if isinstance(run.result, MarkovFit):
        report_markov(run)
        return
    m = run.metrics
    print(f"best validation: loss {m['val_loss']:.4f} nats/token, perplexity {m['val_ppl']:.2f}, "
          f"{m['val_bpc']:.3f} bits/char ({run.result.steps} updates, {run.result.train_s:.0f} s training, "
          f"{run.result.elapsed_s:.0f} s with evaluations, stopped: {run.result.stopped})")
    print(f"run saved in {run.run_dir}/ (checkpoints/best.safetensors, metrics.jsonl, plots/curves.png)")


def setup_diagnose(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory from `rnnkit train lm`")
    p.add_argument("--data", metavar="FILE|DIR", help="text to measure on (default: the run's validation text)")
    p.add_argument("--steps", type=int, default=200, help="time steps to backpropagate through (default: %(default)s)")


def diagnose_command(args: argparse.Namespace) -> int:
    if args.steps < 2:
        raise ConfigError(f"--steps must be at least 2, got {args.steps}")
    report = diagnose_run(args.run, args.data, steps=args.steps)
    print("\n".join(summarize(report)))
    print("saved: " + ", ".join(report["files"] + [str(Path(args.run) / "diagnostics" / "diagnostics.json")]))
    return 0


def setup_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=60.0,
                   help="seconds of training (evaluations and one-time kernel builds not counted; "
                        "default: %(default)s)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/demo-<time>)")
    add_sampling_arguments(p, length=400)
    p.set_defaults(prompt="def ")


def demo(args: argparse.Namespace, preset: dict) -> int:
    """Train the ``demo`` preset for ``--seconds``, report it, then write from the prompt."""
    if args.seconds <= 0:
        raise ConfigError(f"--seconds must be positive, got {args.seconds}")
    check_sampling(args.length, args.temperature, args.top_k, args.top_p)
    cfg = from_dict(LMRunConfig, merge(preset, {"train": {"max_time": args.seconds}}))
    out = Path(args.out) if args.out else run_dir_for("demo", None, resume=False)
    print(f"rnnkit demo: a {cfg.model.layers}-layer {cfg.model.cell.upper()} ({cfg.model.hidden} units) learns "
          f"to write Python from {len(STDLIB_FILES)} standard-library sources in {stdlib_dir()}, "
          f"for {args.seconds:.0f} s.\n", flush=True)
    run = train_lm(cfg, out)
    report_run(run)
    verdict = learning_verdict(run.result.steps, run.metrics.get("val_loss"),
                               unigram_nats(run.corpus.train, run.corpus.val))
    if verdict is not None:  # noise printed as "generated text" teaches nothing: say so and fail
        print(f"\nrnnkit demo: NOTHING LEARNED: {verdict}. Training stopped ({run.result.stopped}) after "
              f"{run.result.train_s:.1f} s; give it more time with --seconds, and see `rnnkit doctor` for what "
              f"runs slowly here. No text is generated from an untrained model.", file=sys.stderr)
        return 3
    print(f"\n--- generated (temperature {args.temperature}, prompt {args.prompt!r}) ---")
    for piece in stream(load_run(out), vars(args)):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    print(f"---\nplots: {out / 'plots' / 'curves.png'}, {out / 'diagnostics'}/*.png")
    print(f"more: rnnkit generate {out} --prompt 'class ' --length 500")
    return 0
