"""The translation task as the registry sees it (:class:`TranslateTask`)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

from rnnkit.config import ConfigError, from_dict
from rnnkit.train.checkpoint import read_meta
from rnnkit.train.runtime import cpu_has_native_bf16, resolve_device

from rnnkit.tasks.task import Command, Task, distribution
from rnnkit.tasks.translate.export import translate_graphs

from . import commands, serve
from .config import TranslateRunConfig, budget_profile
from .data import EncodedPair, collate, read_tsv
from .vocab import special_ids
from .pipeline import evaluate_run, format_scores, train_translate
from .translator import TASK, Translator, checkpoint_path


def _example(out: Path) -> str:
    test = out / "data" / "test.tsv"
    if test.is_file():
        first = test.read_text(encoding="utf-8").split("\n", 1)[0]
        if first:
            return first.split("\t")[0].replace('"', "'")
    return "Hello."


class TranslateTask(Task):
    name = TASK
    help = ("an encoder-decoder with attention on sentence pairs (default: the embedded English-French "
            "phrase book)")
    evaluate_help = ("BLEU, chrF and exact match on a TSV of source<TAB>reference; hypotheses are written "
                     "beside the run")
    predict_help = "the best translation of each sentence (decoding as the run was configured)"
    run_config = TranslateRunConfig
    presets_package = "rnnkit.tasks.translate.presets"

    def train(self, cfg: TranslateRunConfig, run_dir, *, resume=False, given: frozenset = frozenset(),
              callbacks=()):
        if not cfg.data.data and not cfg.data.source:
            print("no --data given: training on the embedded English-French phrase book (a few hundred "
                  "pairs; real quality needs a real corpus)")
        cfg = budget_profile(cfg, given, on_cpu=resolve_device(cfg.train.device).type == "cpu",
                             bf16=cpu_has_native_bf16())
        return train_translate(cfg, run_dir, resume=resume, callbacks=callbacks)

    def report(self, result, run_dir) -> None:
        out = Path(run_dir)
        print(f"run saved in {out}/ (checkpoints/best.safetensors, data/test.tsv, eval/, metrics.jsonl)")
        print(f'try: rnnkit translate {out} "{_example(out)}" --beam 5 --nbest 3')

    device_commands = frozenset({"evaluate"})

    def load(self, run, which: str = "best", device: str = "cpu") -> Translator:
        return Translator.load(run, which, device=str(device))

    def add_evaluate_arguments(self, group) -> None:
        commands.add_decode_arguments(group)
        group.add_argument("--hyp-out", metavar="FILE", help="where to write hypotheses "
                           "(default: RUN/eval/<data name>.hyp.txt)")

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        which = options.get("checkpoint") or "best"
        data_cfg = from_dict(TranslateRunConfig, read_meta(checkpoint_path(run, which))["config"]).data
        pairs = read_tsv(data, reverse=data_cfg.reverse, on_bad=data_cfg.bad_lines)
        hyp_out = options.get("hyp_out")
        out = Path(hyp_out) if hyp_out else Path(run) / "eval" / f"{Path(data).stem}.hyp.txt"
        scores = evaluate_run(run, pairs, out, device=str(resolve_device(options.get("device") or "cpu")),
                              which=which, **commands.decode_overrides(options))
        print(f"hypotheses: {out}", file=sys.stderr)
        return {k: v for k, v in scores.items() if k != "hypotheses"}

    def print_evaluation(self, scores: dict, data: str) -> None:
        print(format_scores(data, scores))

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        if not inputs:
            raise ConfigError("give sentences to translate")
        results = self.load(run).translate(inputs)
        return [{"source": s, "translation": hyps[0].text, "score": hyps[0].score}
                for s, hyps in zip(inputs, results)]

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        for p in predictions:
            print(p["translation"])

    def commands(self) -> dict[str, Command]:
        return {"translate": Command("translate sentences with a trained translation run (beam search, n-best)",
                                     commands.setup_translate, commands.translate_command)}

    def example_inputs(self, loaded: Translator) -> tuple:
        src = loaded.src_vocab.encode(loaded.normalize("Hello.")) or [loaded.src_vocab.unk_id]
        tgt = loaded.tgt_vocab.encode(loaded.normalize("Bonjour.")) or [loaded.tgt_vocab.unk_id]
        return (collate([EncodedPair(src, tgt)], special_ids(loaded.tgt_vocab)),)

    def export_graphs(self, loaded) -> list:
        return translate_graphs(loaded)

    def search_space(self) -> dict[str, dict]:
        return {**super().search_space(),
                "model.embedding": distribution("categorical", choices=[64, 128, 256]),
                "model.encoder_layers": distribution("int", low=1, high=2),
                "model.decoder_layers": distribution("int", low=1, high=2),
                "model.attention": distribution("categorical", choices=["bahdanau", "general", "dot"]),
                "model.label_smoothing": distribution("float", low=0.0, high=0.2)}

    def serve_routes(self, loaded: Translator) -> list:
        return serve.routes(loaded)
