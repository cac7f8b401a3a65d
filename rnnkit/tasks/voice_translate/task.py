"""The voice-translation task as the registry sees it (:class:`VoiceTranslateTask`).

Commands::

    rnnkit train voice-translate --out BUNDLE [--max-time S] [--asr-data M] [--mt-data TSV] [--tts-data M] [--mt-generated N] [--speech-grammar N]
    rnnkit voice-translate BUNDLE in.wav -o out.wav [--transcript "..."]   # or --asr RUN --mt RUN --tts RUN
    rnnkit evaluate BUNDLE --data BUNDLE/data/test.jsonl     # BLEU of the cascade's text, WER of its recogniser
    rnnkit predict BUNDLE a.wav b.wav                         # French audio beside each (a.fr.wav + .json + .png)
    rnnkit compare voice-translate --data BUNDLE              # cascade vs direct model, BLEU in one table
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from rnnkit import config as C
from rnnkit.config import ConfigError
from rnnkit.data.audio import read_audio
from rnnkit.data.speech_parallel import read_translation_manifest
from rnnkit.metrics.asr import asr_scores
from rnnkit.metrics.translation import corpus_scores
from rnnkit.tasks.compare import out_dir
from rnnkit.tasks.runs import write_json
from rnnkit.tasks.task import Command, Task

from . import commands, serve
from .bundle import TASK, bundle_runs, train_bundle
from .cascade import recognize
from .config import TRAIN_DEFAULTS, VoiceTranslateRunConfig


TUNE_STAGES = "tune its stages one at a time: `rnnkit tune asr`, `rnnkit tune translate`, `rnnkit tune tts`"


class VoiceTranslateTask(Task):
    """``get_task``: the registry's lookup by name, ``run_task``: the task of a run (both to reach the stage
    tasks without importing them); ``synthesize``: the tts task's ``synthesize(loaded, text)``."""
    name = TASK
    help = ("voice translation: English speech recogniser, English-French translator and French synthesiser "
            "(and the direct speech translator), trained into one bundle")
    evaluate_help = ("the cascade's French text (recognised, then translated) by sacreBLEU / chrF, and its "
                     "recogniser's WER, on a manifest with audio, text and translation columns")
    predict_help = "French speech in the speaker's voice for each English audio file (OUT.wav, .json, .png)"
    predict_file_help = "speech-translation manifest whose audio files are translated"
    run_config = VoiceTranslateRunConfig
    train_defaults = TRAIN_DEFAULTS
    presets_package = "rnnkit.tasks.voice_translate.presets"
    compare_metrics = ("bleu", "chrf")

    def __init__(self, get_task: Callable[[str], Task] | None = None, run_task: Callable[[Any], Task] | None = None,
                 synthesize: Callable | None = None):
        self.get_task, self.run_task, self.synthesize = get_task, run_task, synthesize

    def _need_registry(self) -> None:
        if self.get_task is None or self.run_task is None or self.synthesize is None:
            raise ConfigError("voice-translate reaches its stages through the registry; use rnnkit.tasks.TASKS")

    def train(self, cfg: VoiceTranslateRunConfig, run_dir, *, resume=False, given: frozenset = frozenset(),
              callbacks=()):
        self._need_registry()
        if callbacks:
            raise ConfigError(f"a voice-translate bundle trains several runs, none of them reporting to one "
                              f"trainer's callbacks; {TUNE_STAGES}")
        if resume:
            raise ConfigError("a voice-translate bundle is not resumed as a whole; resume a stage with "
                              "`rnnkit train TASK --out BUNDLE/STAGE --resume`")
        return train_bundle(cfg, Path(run_dir), self.get_task)

    def report(self, result: dict, run_dir) -> None:
        for stage, r in result["results"].items():
            keys = [k for k in ("test_wer", "test_cer", "test_bleu", "test_chrf", "test_mcd", "test_monotonic_rate")
                    if k in r]
            print(f"{stage}: " + ", ".join(f"{k} {r[k]:.3f}" for k in keys) + f" ({r.get('elapsed_s', 0):.0f} s)")
        print(f"bundle saved in {run_dir}/; try: rnnkit voice-translate {run_dir} ENGLISH.wav -o french.wav")

    def load(self, run, which: str = "best", device: str = "cpu"):
        self._need_registry()
        return commands.load_stages(str(run), {}, self.run_task, self.synthesize, commands.match_config(str(run), {}))

    def add_evaluate_arguments(self, group) -> None:
        commands.add_decode_arguments(group)

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        self._need_registry()
        match = commands.match_config(str(run), dict(options))
        stages = commands.load_stages(str(run), {"lm": options.get("lm")}, self.run_task, self.synthesize, match)
        rows = read_translation_manifest(data)
        if stages.asr is None:
            raise ConfigError(f"{run}: the bundle has no recogniser run to evaluate")
        rate = stages.asr.model.features.sample_rate
        t0 = time.process_time()
        heard = [recognize(stages.asr, read_audio(r.audio, rate), stages.decode).text for r in rows]
        recognition_cpu_s = time.process_time() - t0
        beam = match.beam
        cascade = [stages.mt.translate([h], beam=beam)[0][0].text if h else "" for h in heard]
        gold = [t[0].text for t in stages.mt.translate([r.text for r in rows], beam=beam)]
        refs = [stages.mt.normalize(r.translation) for r in rows]
        s, g = corpus_scores(cascade, refs), corpus_scores(gold, refs)
        wer = asr_scores([r.text for r in rows], heard, stages.asr.config.data.normalizer)
        out = Path(run) / "eval" / f"{Path(data).stem}.hyp.jsonl"
        write_json(out.with_suffix(".json"), [{"audio": str(r.audio), "heard": h, "cascade": c, "from_transcript": t,
                                               "reference": ref} for r, h, c, t, ref in zip(rows, heard, cascade,
                                                                                            gold, refs)])
        return {"bleu": s["bleu"], "chrf": s["chrf"], "transcript_bleu": g["bleu"], "asr_wer": wer.wer,
                "asr_cer": wer.cer, "n": len(rows), "hypotheses": str(out.with_suffix(".json")),
                "decoding": stages.decoding, "recognition_cpu_s": recognition_cpu_s}

    def print_evaluation(self, m: dict, data: str) -> None:
        print(f"{data}: cascade BLEU {m['bleu']:.2f} chrF {m['chrf']:.2f} (from the true transcript: BLEU "
              f"{m['transcript_bleu']:.2f}); recogniser WER {100 * m['asr_wer']:.1f}% CER {100 * m['asr_cer']:.1f}% "
              f"over {m['n']} utterances; recognition {m['decoding']}")

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        stages = self.load(run)
        files = ([str(r.audio) for r in read_translation_manifest(options["file"])] if options.get("file")
                 else list(inputs))
        if not files:
            raise ConfigError("give English audio files to translate, or --file MANIFEST")
        folder = Path(run) / "predict"
        match = commands.match_config(str(run), {})
        return [commands.run_file(stages, f, folder / f"{Path(f).stem}.fr.wav", match, plot=False) for f in files]

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        for p in predictions:
            print(f"{p['input']['path']}\t{p['french']}\t{p['output']['wav']}")

    def commands(self) -> dict[str, Command]:
        return {"voice-translate": Command("translate English speech into French speech in the speaker's own "
                                           "pitch and voice depth", commands.setup_voice_translate,
                                           self._voice_translate, threads=True)}

    def _voice_translate(self, args: argparse.Namespace) -> int:
        self._need_registry()
        return commands.voice_translate_command(args, self.run_task, self.synthesize)

    def compare(self, args: argparse.Namespace) -> tuple[list[dict], list[str]]:
        """The cascade (recognised, then translated), the translator on the true transcript and the direct
        model, scored by sacreBLEU on the bundle's held-out test set (``--data BUNDLE``; without it a bundle is
        trained into ``--out``). The table is written to ``--out``'s ``compare.json`` (the bundle's without it)."""
        self._need_registry()
        bundle = Path(args.data) if args.data else out_dir(args)
        if not args.data:
            cfg = C.from_dict(VoiceTranslateRunConfig, C.merge(dict(self.train_defaults), {}))
            self.train(cfg, bundle)
        runs = bundle_runs(bundle)
        test = str(bundle / "data" / "test.jsonl")
        t0 = time.perf_counter()
        m = self.evaluate(bundle, test, {})
        cascade_s = time.perf_counter() - t0
        results = _results(bundle)
        params = _parameters(self.load(bundle))
        rows = [{"model": "cascade: asr -> translate", "bleu": m["bleu"], "chrf": m["chrf"], "parameters": params,
                 "train_s": sum(results.get(s, {}).get("elapsed_s", 0.0) for s in ("asr", "mt")),
                 "eval_s": cascade_s},
                {"model": "translate on the true transcript", "bleu": m["transcript_bleu"], "chrf": "",
                 "parameters": "", "train_s": results.get("mt", {}).get("elapsed_s", "")}]
        if "direct" in runs:
            direct = self.get_task("speech-translate")
            t0 = time.perf_counter()
            d = direct.evaluate(runs["direct"], test, {})
            loaded = direct.load(runs["direct"])
            rows.append({"model": "direct: speech-translate", "bleu": d["bleu"], "chrf": d["chrf"],
                         "parameters": sum(p.numel() for p in loaded.model.parameters()),
                         "train_s": results.get("direct", {}).get("elapsed_s", ""), "eval_s": time.perf_counter() - t0})
        write_json((Path(args.out) if args.out else bundle) / "compare.json", rows)   # --out: never the user's bundle
        return rows, ["model", "bleu", "chrf", "parameters", "train_s", "eval_s"]

    def example_inputs(self, loaded) -> tuple:
        raise ConfigError("a voice-translate bundle is several runs; export each stage's run (BUNDLE/asr, "
                          "BUNDLE/mt, BUNDLE/tts) with its own task")

    def export_graphs(self, loaded) -> list:
        return self.example_inputs(loaded)  # the same answer: export the stages' runs

    def search_space(self) -> dict[str, dict]:
        raise ConfigError(f"{TUNE_STAGES}; a bundle is not tuned as a whole")

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)


def _results(bundle: Path) -> dict:
    path = bundle / "bundle.json"
    return json.loads(path.read_text(encoding="utf-8")).get("results", {}) if path.is_file() else {}


def _parameters(stages) -> int:
    return sum(p.numel() for m in (stages.asr.model, stages.mt.model) for p in m.parameters())
