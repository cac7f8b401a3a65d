"""The language-model task as the registry sees it (:class:`LMTask`)."""
from __future__ import annotations

import argparse
from typing import Any, Iterator, Mapping

import torch

from rnnkit.config import ConfigError
from rnnkit.tasks.lm import commands, serve
from rnnkit.tasks.lm.compare import METRICS as COMPARE_METRICS, compare_lm
from rnnkit.tasks.lm.commands import add_sampling_arguments, report_run, stream
from rnnkit.tasks.lm.config import (TRAIN_DEFAULTS, LMRunConfig, cpu_bf16_default, epochs_follow_budget,
                                    upgrade_config)
from rnnkit.tasks.lm.export import lm_graphs
from rnnkit.tasks.lm.markov import check_markov_settings
from rnnkit.tasks.lm.model import check_sampling, evaluate_lm, load_run, train_lm
from rnnkit.tasks.task import Command, Task, distribution
from rnnkit.train import Chunk
from rnnkit.train.runtime import cpu_has_native_bf16, resolve_device

TOP_TOKENS = 5  # next tokens shown per input by `rnnkit predict` unless --top says otherwise


class LMTask(Task):
    name = "lm"
    help = "a language model on text (default: the embedded corpus)"
    evaluate_help = "perplexity and bits per character on a UTF-8 text file or directory"
    predict_help = "the most likely next tokens after each input text"
    run_config = LMRunConfig
    train_defaults = TRAIN_DEFAULTS
    presets_package = "rnnkit.tasks.lm.presets"
    compare_metrics = tuple(COMPARE_METRICS)

    def upgrade_config(self, saved: dict) -> dict:
        return upgrade_config(saved)

    def train(self, cfg: LMRunConfig, run_dir, *, resume=False, given: frozenset = frozenset(),
              callbacks=()):
        if cfg.model.model == "markov" and not resume:
            check_markov_settings(cfg, given)  # also a setting given at its default value
        if cfg.model.model == "rnn":
            cfg = epochs_follow_budget(cfg, given)
            if not resume:   # a resumed run keeps the precision it was saved with, so it continues exactly
                cfg = cpu_bf16_default(cfg, given, on_cpu=resolve_device(cfg.train.device).type == "cpu",
                                       bf16=cpu_has_native_bf16())
        return train_lm(cfg, run_dir, resume=resume, callbacks=callbacks)

    def data_parallel_refusal(self, cfg: LMRunConfig) -> str | None:
        if cfg.model.model == "markov":   # no Trainer: every process would fit and write the same run
            return ("--model markov fits its n-gram counts in one pass in one process, with no training loop "
                    "to share between processes; train it without --devices (and without torchrun)")
        return None

    def report(self, result, run_dir) -> None:
        report_run(result)

    def load(self, run, which: str = "best", device: str = "cpu"):
        return load_run(run, which, device=device)

    def add_evaluate_arguments(self, group) -> None:
        group.add_argument("--batch-size", type=int, default=8, help="parallel streams (default: %(default)s)")

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        batch_size = options.get("batch_size", 8)
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be positive, got {batch_size}")
        return evaluate_lm(run, data, batch_size=batch_size)

    def print_evaluation(self, m: dict, data: str) -> None:
        print(f"{data}: loss {m['loss']:.4f} nats/token, perplexity {m['ppl']:.3f}, "
              f"{m['bpc']:.4f} bits/char over {m['tokens']} tokens ({m['unknown_tokens']} unknown)")

    @torch.no_grad()
    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        if not inputs:
            raise ConfigError("give texts whose next tokens to predict")
        top = options.get("top") or TOP_TOKENS
        lm = self.load(run)
        rows = []
        for text in inputs:
            ids = lm.tokenizer.encode(text)
            if not ids:
                raise ConfigError(f"{text!r} encodes to no tokens")
            logits, _ = lm.model.logits(torch.tensor(ids, device=lm.device).view(-1, 1))  # (T, 1, V)
            probs = logits[-1, 0].float().softmax(-1)
            p, idx = probs.topk(min(top, probs.numel()))
            rows.append({"input": text, "next": {lm.tokenizer.decode([int(i)]): float(v) for v, i in zip(p, idx)}})
        return rows

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        for r in predictions:
            print(f"{r['input']!r}\t" + "  ".join(f"{t!r} {p:.3f}" for t, p in r["next"].items()))

    def add_generate_arguments(self, group) -> None:
        add_sampling_arguments(group)

    def check_generate_options(self, options: Mapping[str, Any]) -> None:
        check_sampling(options.get("length", 500), options.get("temperature", 0.8), options.get("top_k", 0),
                       options.get("top_p", 1.0))

    def generate(self, run, options: Mapping[str, Any]) -> Iterator[str]:
        self.check_generate_options(options)
        lm = self.load(run, options.get("checkpoint", "best"), device=resolve_device(options.get("device", "cpu")))
        return stream(lm, options)

    def compare(self, args) -> tuple[list[dict], list[str]]:
        return compare_lm(args)

    def commands(self) -> dict[str, Command]:
        return {"diagnose": Command("gradient flow over time and gate saturation of a trained run (PNG plots)",
                                    commands.setup_diagnose, commands.diagnose_command, threads=True),
                "demo": Command("train a small character model on the embedded corpus for about a minute, "
                                "then write", commands.setup_demo, self._demo)}

    def _demo(self, args: argparse.Namespace) -> int:
        return commands.demo(args, self.load_preset("demo"))

    def example_inputs(self, loaded) -> tuple:
        ids = torch.tensor(loaded.tokenizer.encode("ab") or [0], device=loaded.device).view(-1, 1)  # (T, 1)
        return (Chunk(ids, ids, torch.zeros(1, dtype=torch.bool, device=loaded.device)),)

    def export_graphs(self, loaded) -> list:
        return lm_graphs(loaded)

    def search_space(self) -> dict[str, dict]:
        return {**super().search_space(),
                "model.layers": distribution("int", low=1, high=3),
                "train.bptt": distribution("categorical", choices=[32, 64, 128]),  # truncation length
                "model.variational_dropout": distribution("float", low=0.0, high=0.5),
                "model.recurrent_dropout": distribution("float", low=0.0, high=0.3),
                "model.dropconnect": distribution("float", low=0.0, high=0.5),
                "model.zoneout": distribution("float", low=0.0, high=0.2),
                # an embedding size (0 = hidden), then tied weights only where it equals the hidden size:
                # valid over the CLI defaults' untied 128-wide embedding and over a tied preset alike
                "model.embedding": distribution("categorical", choices=[0, 64, 128, 256]),
                "model.tie_weights": distribution("categorical", choices=[True, False],
                                                  **{"if": {"model.embedding": 0}})}

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)
