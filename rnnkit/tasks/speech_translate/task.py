"""The direct speech-translation task as the registry sees it (:class:`SpeechTranslateTask`).

Commands::

    rnnkit train speech-translate [--data MANIFEST] [--out RUN]   # no --data: the embedded phrase-book speech
    rnnkit evaluate RUN --data MANIFEST                             # sacreBLEU / chrF
    rnnkit predict RUN english.wav                                  # or --file MANIFEST
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from rnnkit.tasks.task import Task, distribution

from . import serve
from .config import TRAIN_DEFAULTS, SpeechTranslateRunConfig
from .export import speech_translate_graphs
from .pipeline import (TASK, evaluate_speech_translate, load_speech_translator, predict_speech_translate,
                       train_speech_translate)


class SpeechTranslateTask(Task):
    name = TASK
    help = ("English speech to French text in one attention encoder-decoder (default: the embedded phrase book "
            "spoken by eSpeak NG)")
    evaluate_help = ("sacreBLEU and chrF on a manifest with audio, text and translation columns; hypotheses in "
                     "RUN/eval/<name>.hyp.jsonl")
    predict_help = "the French translation of each English audio file"
    predict_file_help = "speech-translation manifest whose audio files are translated"
    run_config = SpeechTranslateRunConfig
    train_defaults = TRAIN_DEFAULTS
    presets_package = "rnnkit.tasks.speech_translate.presets"

    def train(self, cfg: SpeechTranslateRunConfig, run_dir, *, resume=False, given: frozenset = frozenset(),
              callbacks=()):
        if not cfg.data.data:
            print("no --data given: training on the embedded phrase book spoken by eSpeak NG (synthesised once "
                  "and cached; held-out sentences in held-out voices for the test split)")
        return train_speech_translate(cfg, run_dir, resume=resume, callbacks=callbacks)

    def report(self, result: dict, run_dir) -> None:
        print(f"{result['parameters']} parameters, {result['steps']} updates in {result['elapsed_s']:.0f} s "
              f"(stopped: {result['stopped']}); train/val/test {result['train']}/{result['val']}/{result['test']}")
        print(f"test: BLEU {result['test_bleu']:.1f}  chrF {result['test_chrf']:.1f}")
        print(f"run saved in {run_dir}/; try: rnnkit predict {run_dir} ENGLISH.wav")

    def load(self, run, which: str = "best", device: str = "cpu"):
        return load_speech_translator(run, which, device)

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        return evaluate_speech_translate(run, data, dict(options))

    def print_evaluation(self, m: dict, data: str) -> None:
        print(f"{data}: BLEU {m['bleu']:.2f}  chrF {m['chrf']:.2f}  exact {m['exact']:.3f} over {m['n']} "
              f"utterances; hypotheses: {m['hypotheses']}")

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        return predict_speech_translate(run, inputs, dict(options))

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        for p in predictions:
            print(f"{p['audio']}\t{p['translation']}")

    def example_inputs(self, loaded) -> tuple:
        f = loaded.model.features
        return ({"feats": torch.zeros(1, 12, f.num_features), "lengths": torch.tensor([12]),
                 "tgt_in": torch.tensor([[loaded.tgt_vocab.bos_id]]), "tgt_out": torch.tensor([[loaded.tgt_vocab.eos_id]])},)

    def export_graphs(self, loaded) -> list:
        return speech_translate_graphs(loaded)

    def search_space(self) -> dict[str, dict]:
        return {**super().search_space(), "model.ctc_weight": distribution("float", low=0.0, high=0.6),
                "model.pyramid_layers": distribution("int", low=0, high=2)}

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)
