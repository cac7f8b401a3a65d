"""The text-to-speech task as the registry sees it (:class:`TTSTask`).

Commands::

    rnnkit train tts [--data MANIFEST|LJSPEECH_DIR] --lang fr [--out RUN]   # no --data: embedded eSpeak NG corpus
    rnnkit speak RUN "Bonjour tout le monde" -o out.wav [--speed 1.2] [--pitch-shift 2] [--vocoder world]
    rnnkit evaluate RUN --data MANIFEST [--asr ASR_RUN]   # MCD, monotonic alignments, RTF, CER of ASR_RUN
    rnnkit predict RUN "text" ...                          # one WAV per text in RUN/speak/ (or --wav-dir)

Other code synthesises through ``TASKS["tts"].load(run)`` and
:func:`rnnkit.tasks.tts.pipeline.synthesize` ``(loaded, text, *, speed, pitch_shift) -> (wave, rate)``.
"""
from __future__ import annotations

import argparse
from typing import Any, Mapping

import torch

from rnnkit.tasks.task import Command, Task, distribution
from rnnkit.tasks.tts import commands, serve
from rnnkit.tasks.tts.config import TRAIN_DEFAULTS, TTSRunConfig
from rnnkit.tasks.tts.export import tts_graphs
from rnnkit.tasks.tts.pipeline import TASK, Transcriber, evaluate_tts, load_tts, predict_tts, train_tts


class TTSTask(Task):
    """``transcriber``: how ``--asr RUN`` transcribes the synthesised audio (the registry passes the
    ``predict`` of that run's own task, so this package imports no other task)."""
    name = TASK
    help = "a Tacotron 2 family text-to-speech model, English or French (default: an embedded eSpeak NG voice)"
    evaluate_help = ("mel cepstral distortion against the recordings, monotonic-alignment rate and real-time "
                     "factors of a manifest's texts synthesised; with --asr RUN the CER of that recogniser on them")
    predict_help = "a WAV file per text (RUN/speak/NNN.wav or --wav-dir)"
    predict_file_help = "text file, one text to speak per line"
    run_config = TTSRunConfig
    train_defaults = TRAIN_DEFAULTS
    presets_package = "rnnkit.tasks.tts.presets"

    def __init__(self, transcriber: Transcriber | None = None):
        self.transcriber = transcriber

    def train(self, cfg: TTSRunConfig, run_dir, *, resume: bool = False, given: frozenset = frozenset(),
              callbacks=()):
        cfg.data, note = cfg.data.without_unused_grammar(explicit=("data", "grammar") in given)
        if note:
            print(note)
        if not cfg.data.data:
            print(f"no --data given: training on the embedded {cfg.data.lang} corpus spoken by eSpeak NG voice "
                  f"{cfg.data.resolved_voice} (synthesised once and cached)")
        return train_tts(cfg, run_dir, resume=resume, callbacks=callbacks)

    def report(self, result: dict, run_dir) -> None:
        print(f"{result['parameters']} parameters, {result['steps']} updates in {result['elapsed_s']:.0f} s "
              f"(stopped: {result['stopped']}); train/val/test {result['train']}/{result['val']}/{result['test']}")
        if "test_mcd" in result:
            print(f"test: MCD {result['test_mcd']:.2f} dB, monotonic alignments {100 * result['test_monotonic_rate']:.0f}%, "
                  f"real-time factor acoustic {result['test_rtf_acoustic']:.3f} + vocoder {result['test_rtf_vocoder']:.3f}")
        print(f"run saved in {run_dir}/ (checkpoints/, data/test.jsonl, eval/test/, metrics.jsonl, plots/)")
        print(f"try: rnnkit speak {run_dir} \"Hello world.\" -o hello.wav")

    def load(self, run, which: str = "best", device: str = "cpu"):
        return load_tts(run, which, device)

    def add_evaluate_arguments(self, group) -> None:
        commands.add_evaluate_arguments(group)

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        return evaluate_tts(run, data, dict(options), self.transcriber)

    def print_evaluation(self, m: dict, data: str) -> None:
        print(f"{data}: MCD {m['mcd']:.2f} dB over {m['utterances']} utterances, monotonic alignments "
              f"{100 * m['monotonic_rate']:.1f}%, real-time factor acoustic {m['rtf_acoustic']:.3f} + vocoder "
              f"({m['vocoder']}) {m['rtf_vocoder']:.3f} (CPU time: {m['cpu_rtf_acoustic']:.3f} + {m['cpu_rtf_vocoder']:.3f}, "
              f"{m['threads']} thread(s))" + (f", {m['skipped']} skipped" if m["skipped"] else ""))
        if "asr_cer" in m:
            print(f"intelligibility: CER {100 * m['asr_cer']:.2f}%, WER {100 * m['asr_wer']:.2f}% by {m['asr_run']}")
        print(f"audio, plots and per-utterance scores: {m['dir']}/")

    def add_predict_arguments(self, group) -> None:
        commands.add_predict_arguments(group)

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        return predict_tts(run, inputs, dict(options))

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        for p in predictions:
            print(f"{p['audio']}\t{p['seconds']:.2f} s\t{p['text']}")

    def commands(self) -> dict[str, Command]:
        return {"speak": Command("speak a text with a trained text-to-speech run into a WAV file",
                                 commands.setup_speak, self._speak, threads=True)}

    def _speak(self, args: argparse.Namespace) -> int:
        return commands.speak_command(self, args)

    def example_inputs(self, loaded) -> tuple:
        r, M = loaded.model.reduction, loaded.features.n_mels
        return ({"text": torch.tensor([[loaded.vocab.offset, loaded.vocab.eos_id]]), "text_lengths": torch.tensor([2]),
                 "mels": torch.zeros(1, 2 * r, M), "mel_lengths": torch.tensor([2 * r])},)

    def export_graphs(self, loaded) -> list:
        return tts_graphs(loaded)

    def search_space(self) -> dict[str, dict]:
        return {"train.lr": distribution("float", low=3e-4, high=5e-3, log=True),
                "model.decoder_hidden": distribution("int", low=64, high=512, log=True),
                "model.reduction": distribution("int", low=1, high=4),
                "model.guided_attention": distribution("float", low=0.0, high=5.0)}

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)
