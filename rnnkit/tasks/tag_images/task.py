"""The image-tagging task as the registry sees it (:class:`TagImagesTask`)."""
from __future__ import annotations

import sys
from typing import Any, Mapping

import torch

from rnnkit.tasks.task import distribution
from rnnkit.tasks.vision import image_paths
from rnnkit.tasks.vision_export import decoder_graphs, image_model_graph
from rnnkit.tasks.vision_pipeline import ImageTextTask

from . import serve
from .config import TRAIN_DEFAULTS, TagRunConfig
from .pipeline import TAGGING, TASK, evaluate_tag_run, predict_files


def _add(group, flag: str, **kw) -> None:
    """Add ``flag`` unless another task already gave the shared parser the same flag (same meaning)."""
    if flag not in group._option_string_actions:  # argparse's table of the option strings in use
        group.add_argument(flag, **kw)


def _scores_line(m: dict, p: str = "") -> str:
    return (f"mAP {100 * m[p + 'mAP']:.1f}  micro-F1 {100 * m[p + 'micro_f1']:.1f}  macro-F1 "
            f"{100 * m[p + 'macro_f1']:.1f}  exact set {100 * m[p + 'exact_set']:.1f}%  ({m[p + 'n']} images)")


class TagImagesTask(ImageTextTask):
    name = TASK
    help = ("multi-label image tagging: tags as a sequence by a recurrent decoder over a CNN (CNN-RNN) or a "
            "sigmoid per tag; default data: the embedded synthetic scenes' tags")
    evaluate_help = "mAP, micro / macro F1 and F1 per tag on an image,tags .csv (tags separated by |)"
    predict_help = "the predicted tags of each image file, with a score per tag"
    run_config = TagRunConfig
    train_defaults = TRAIN_DEFAULTS
    presets_package = "rnnkit.tasks.tag_images.presets"
    kind = TAGGING
    no_data_note = ("no --data given: tagging the embedded synthetic scenes (colours, shapes, sizes, counts, "
                    "relation axis)")

    def report(self, r: dict, run_dir) -> None:
        print(f"{r['source']}: train/val/test {r['train']}/{r['val']}/{r['test']} images, {r['tags']} tags, "
              f"head {r['head']}; {r['parameters']} parameters, {r['steps']} updates in {r['elapsed_s']:.0f} s")
        print("test: " + _scores_line(r, "test_"))
        print(f"run saved in {run_dir}/ (checkpoints/, data/test.csv, eval/test.tags.jsonl, result.json)")

    def add_evaluate_arguments(self, group) -> None:
        _add(group, "--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
        _add(group, "--skip-bad", action="store_true",
             help="skip and count unreadable images, missing images and empty captions")

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        m = evaluate_tag_run(run, data, which=options.get("checkpoint") or "best",
                             skip_bad=bool(options.get("skip_bad")))
        print(f"tags: {m['tags_file']}", file=sys.stderr)
        return m

    def print_evaluation(self, m: dict, data: str) -> None:
        print(f"{data}: " + _scores_line(m))
        worst = sorted(m["per_tag_f1"].items(), key=lambda kv: kv[1])[:5]
        print("lowest F1: " + ", ".join(f"{t} {100 * f:.1f}" for t, f in worst))
        if m["unknown_tags"]:
            print(f"tags the run does not know (not scored): {', '.join(m['unknown_tags'][:10])}")

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        paths = image_paths(inputs, options.get("file"))
        return predict_files(self.load(run, options.get("checkpoint") or "best"), paths)

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        for p in predictions:
            print(f"{p['image']}: {' '.join(p['tags']) or '(no tag)'}")

    def example_inputs(self, loaded) -> tuple:
        size = loaded.config.data.image_size
        images = torch.zeros(2, 3, size, size, dtype=torch.uint8, device=loaded.device)
        if loaded.config.model.head == "sigmoid":
            return ({"images": images},)
        v = loaded.vocab
        return ({"images": images, "tokens_in": torch.tensor([[v.bos_id], [v.bos_id]], device=loaded.device)},)

    def search_space(self) -> dict[str, dict]:
        return {**super().search_space(), "model.head": distribution("categorical", choices=["rnn", "sigmoid"])}

    def export_graphs(self, loaded) -> list:
        size = loaded.config.data.image_size
        if loaded.config.model.head == "sigmoid":
            return image_model_graph(loaded.model, size)
        return decoder_graphs(loaded.model, size, loaded.vocab.size, loaded.vocab.offset)

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)
