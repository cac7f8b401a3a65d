"""The speech-recognition task as the registry sees it (:class:`ASRTask`).

Commands::

    rnnkit train asr [--data MANIFEST] [--out RUN]      # no --data: the embedded eSpeak NG digit strings
    rnnkit transcribe RUN a.wav b.flac [--beam 8] [--lm LM_RUN] [--timings] [--json] [--plot DIR]
    rnnkit evaluate RUN --data MANIFEST [--beam 8 --lm LM_RUN]   # WER / CER, RUN/eval/<name>.hyp.jsonl
    rnnkit predict RUN a.wav                            # or --file MANIFEST
    rnnkit compare asr [--data MANIFEST]                # CTC greedy / beam / beam+LM and LAS beam, one table
"""
from __future__ import annotations

import argparse
from typing import Any, Mapping

import torch

from rnnkit.tasks.asr import commands, serve
from rnnkit.tasks.asr.compare import METRICS, compare_asr
from rnnkit.tasks.asr.config import TRAIN_DEFAULTS, ASRRunConfig
from rnnkit.tasks.asr.pipeline import (TASK, LMLoader, evaluate_asr, load_recognizer, logits_decoder, predict_asr,
                                      train_asr)
from rnnkit.tasks.task import Command, Task, distribution
from rnnkit.tasks.asr.export import asr_graphs


class ASRTask(Task):
    """``lm_loader``: how a language-model run given with ``--lm`` is loaded (the registry passes the
    ``load`` of the run's own task, so this package imports no other task)."""
    name = TASK
    help = "a CTC speech recogniser on audio with transcripts (default: eSpeak NG digit strings)"
    evaluate_help = ("WER and CER (corpus level, normaliser named) on a speech manifest; hypotheses beside "
                     "references in RUN/eval/<name>.hyp.jsonl")
    predict_help = "the transcript of each audio file (or of each file of a --file manifest)"
    predict_file_help = "speech manifest whose audio files are transcribed"
    run_config = ASRRunConfig
    train_defaults = TRAIN_DEFAULTS
    presets_package = "rnnkit.tasks.asr.presets"

    def __init__(self, lm_loader: LMLoader | None = None):
        self.lm_loader = lm_loader

    def train(self, cfg: ASRRunConfig, run_dir, *, resume: bool = False, given: frozenset = frozenset(),
              callbacks=()):
        if not cfg.data.data:
            print(f"no --data given: training on the embedded eSpeak NG set '{cfg.data.dataset}' (synthesised "
                  "once and cached; held-out voices for the test split)")
        return train_asr(cfg, run_dir, resume=resume, lm_loader=self.lm_loader, callbacks=callbacks)

    def report(self, result: dict, run_dir) -> None:
        print(f"{result['parameters']} parameters, {result['steps']} updates in {result['elapsed_s']:.0f} s "
              f"(stopped: {result['stopped']}); train/val/test {result['train']}/{result['val']}/{result['test']}")
        for key in sorted(k for k in result if k.endswith("_wer") and k.startswith("test")):
            prefix = key[:-4]
            print(f"{prefix}: WER {100 * result[key]:.2f}%  CER {100 * result[prefix + '_cer']:.2f}%  "
                  f"(normaliser '{result['normalizer']}')")
        print(f"run saved in {run_dir}/ (checkpoints/, data/test.jsonl, eval/, metrics.jsonl, plots/)")
        print(f"try: rnnkit transcribe {run_dir} AUDIO.wav --timings   or   "
              f"rnnkit evaluate {run_dir} --data {run_dir}/data/test.jsonl --beam 8")

    device_commands = frozenset({"evaluate", "predict"})
    compare_metrics = METRICS

    def compare(self, args: argparse.Namespace) -> tuple[list[dict], list[str]]:
        return compare_asr(self, args)

    def load(self, run, which: str = "best", device: str = "cpu"):
        return load_recognizer(run, which, device)

    def decoder(self, loaded, options: Mapping[str, Any]):
        """``decode(logits (T', V)) -> label ids`` of a loaded run's CTC head with ``options`` (beam, lm: a
        language-model run loaded through the registry, lm_weight, insertion_bonus) over the run's own."""
        return logits_decoder(loaded, dict(options), self.lm_loader)

    def add_evaluate_arguments(self, group) -> None:
        commands.add_decode_arguments(group)

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        return evaluate_asr(run, data, dict(options), self.lm_loader)

    def print_evaluation(self, m: dict, data: str) -> None:
        print(f"{data}: WER {100 * m['wer']:.2f}%  CER {100 * m['cer']:.2f}%  over {m['utterances']} utterances "
              f"({m['reference_words']} words), normaliser '{m['normalizer']}', decoding {m['decoding']}"
              + (f", {m['skipped']} skipped" if m["skipped"] else ""))
        print(f"hypotheses: {m['hypotheses']}" + (f"; plots: {', '.join(m['plots'])}" if m["plots"] else ""))

    def add_predict_arguments(self, group) -> None:
        commands.add_decode_arguments(group)
        commands.add_output_arguments(group)

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        return predict_asr(run, inputs, dict(options), self.lm_loader)

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        commands.print_transcripts(predictions, False, len(predictions) > 1)

    def commands(self) -> dict[str, Command]:
        return {"transcribe": Command("transcribe audio files with a trained speech-recognition run (greedy, "
                                      "beam search, LM fusion, word timings)", commands.setup_transcribe,
                                      self._transcribe, threads=True)}

    def _transcribe(self, args: argparse.Namespace) -> int:
        return commands.transcribe_command(self, args)

    def example_inputs(self, loaded) -> tuple:
        f = loaded.model.features
        return ({"feats": torch.zeros(1, 12, f.num_features), "lengths": torch.tensor([12])},)

    def export_graphs(self, loaded) -> list:
        return asr_graphs(loaded)

    def search_space(self) -> dict[str, dict]:
        return {**super().search_space(),
                "model.layers": distribution("int", low=1, high=4),
                "model.stack_frames": distribution("int", low=1, high=4),
                "data.freq_masks": distribution("int", low=0, high=2)}  # SpecAugment frequency masks

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded, self.lm_loader)
