"""The captioning task as the registry sees it (:class:`CaptionTask`)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import torch

from rnnkit.metrics.captioning import METEOR_MODES
from rnnkit.tasks.task import Command, distribution
from rnnkit.tasks.vision import image_paths
from rnnkit.tasks.vision_export import decoder_graphs
from rnnkit.tasks.vision_pipeline import ImageTextTask

from . import commands, serve
from .config import TRAIN_DEFAULTS, CaptionRunConfig
from .pipeline import CAPTIONING, TASK, caption_files, evaluate_caption_run


def _scores_line(m: dict) -> str:
    """Scores for people; ``m`` holds them bare (evaluate) or ``test_``-prefixed (training's result)."""
    p = "test_" if "test_bleu4" in m else ""
    line = "  ".join(f"BLEU-{n} {100 * m[f'{p}bleu{n}']:.1f}" for n in range(1, 5))
    line += f"  CIDEr-D {m[p + 'cider_d']:.3f}"
    if p + "meteor" in m:
        line += f"  METEOR {100 * m[p + 'meteor']:.1f}"
    if p + "attr_exact_acc" in m:
        line += ("\nattributes: " + "  ".join(f"{k} {100 * m[f'{p}attr_{k}_acc']:.1f}%" for k in
                                             ("colour", "shape", "count", "size", "relation", "exact"))
                 + f"  (parsed {100 * m[p + 'attr_parse_rate']:.1f}%)")
    return line


class CaptionTask(ImageTextTask):
    name = TASK
    help = ("image captioning: a CNN encoder and a recurrent decoder with soft attention (Show, Attend and "
            "Tell) or the image as first input (Show and Tell); default data: embedded synthetic scenes")
    evaluate_help = ("BLEU-1..4, CIDEr-D (METEOR when java is found) on a Flickr-style folder, COCO .json or "
                     "image,caption .csv; attribute accuracy on scene captions")
    predict_help = "the best caption of each image file (beam search; `rnnkit caption` also draws attention)"
    run_config = CaptionRunConfig
    train_defaults = TRAIN_DEFAULTS
    presets_package = "rnnkit.tasks.caption.presets"
    kind = CAPTIONING
    no_data_note = ("no --data given: training on the embedded synthetic scenes (test split: colour-shape "
                    "combinations never seen in training)")

    def report(self, r: dict, run_dir) -> None:
        print(f"{r['source']}: train/val/test {r['train']}/{r['val']}/{r['test']} images; {r['parameters']} "
              f"parameters, {r['steps']} updates in {r['elapsed_s']:.0f} s (stopped: {r['stopped']})")
        print("test: " + _scores_line(r))
        out = Path(run_dir)
        print(f"run saved in {out}/ (checkpoints/, data/test.csv, eval/test.captions.jsonl, result.json)")

    # ------------------------------------------------------------------ evaluate / predict

    def add_evaluate_arguments(self, group) -> None:
        commands.add_decode_arguments(group)
        commands.add_run_arguments(group)
        group.add_argument("--meteor", choices=METEOR_MODES, default=None,
                           help="METEOR: when java is found (auto), required (on) or skipped (off) "
                                "(default: the run's decode.meteor)")
        commands.add_flag(group, "--skip-bad", action="store_true",
                      help="skip and count unreadable images, missing images and empty captions")

    def add_predict_arguments(self, group) -> None:
        commands.add_decode_arguments(group)

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        which = options.get("checkpoint") or "best"
        m = evaluate_caption_run(run, data, which=which, skip_bad=bool(options.get("skip_bad")),
                                 meteor=options.get("meteor"), **commands.decode_overrides(options))
        print(f"captions: {m['captions_file']}", file=sys.stderr)
        return m

    def print_evaluation(self, m: dict, data: str) -> None:
        print(f"{data}: {m['images']} images" + (f" (skipped {m['skipped']}, bad images {m['bad_images']})"
                                                 if m["skipped"] or m["bad_images"] else ""))
        print(_scores_line(m))

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        paths = image_paths(inputs, options.get("file"))
        caps = caption_files(self.load(run, options.get("checkpoint") or "best"), paths, **commands.decode_overrides(options))
        return [{"image": p, "caption": c.text, "score": c.score} for p, c in zip(paths, caps)]

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        for p in predictions:
            print(f"{p['image']}: {p['caption']}")

    def commands(self) -> dict[str, Command]:
        return {"caption": Command("caption images with a trained captioning run (beam search; the attention "
                                   "over the image as a PNG strip)", commands.setup_caption,
                                   commands.caption_command, threads=True)}

    # ------------------------------------------------------------ export, tune, serve

    def example_inputs(self, loaded) -> tuple:
        size = loaded.config.data.image_size
        images = torch.zeros(2, 3, size, size, dtype=torch.uint8)
        v = loaded.vocab
        tokens = torch.tensor([[v.bos_id, v.unk_id], [v.bos_id, v.eos_id]])
        return ({"images": images.to(loaded.device), "tokens_in": tokens.to(loaded.device)},)

    def search_space(self) -> dict[str, dict]:
        return {**super().search_space(),
                "model.attention": distribution("categorical", choices=["soft", "none"]),
                "model.doubly_stochastic": distribution("float", low=0.0, high=2.0)}

    def export_graphs(self, loaded) -> list:
        return decoder_graphs(loaded.model, loaded.config.data.image_size, loaded.vocab.size, loaded.vocab.offset)

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)
