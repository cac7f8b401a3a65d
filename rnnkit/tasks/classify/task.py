"""The classify task as the registry sees it (:class:`ClassifyTask`)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rnnkit.config import ConfigError
from rnnkit.tasks.classify.config import TRAIN_DEFAULTS, ClassifyRunConfig, upgrade_config
from rnnkit.tasks.baselines.audio import mfcc_svm
from rnnkit.tasks.baselines.nbsvm import nbsvm_baseline
from rnnkit.tasks.baselines.text import flat_logreg, tfidf_logreg
from rnnkit.tasks.classify.pipeline import (TASK, evaluate_classify, load_classifier, load_splits, predict_classify,
                                            train_classify)
from rnnkit.tasks.compare import compare_networks, cross_validate, test_rows
from rnnkit.tasks.classify import serve
from rnnkit.tasks.task import Task, distribution
from rnnkit.tasks.classify.export import classify_graphs

TOP_CLASSES = 3  # probabilities shown per input by `rnnkit predict` unless --top says otherwise
SHOWN_INPUT_CHARS = 60  # an input longer than this is cut in the table (``--json`` has it whole)


def shown_input(x: str | list, width: int = SHOWN_INPUT_CHARS) -> str:
    """An input on one line of a table: whitespace collapsed, cut to ``width`` characters with "..."."""
    text = " ".join(x.split()) if isinstance(x, str) else " ".join(f"{v:g}" for v in np.ravel(x))
    return text if len(text) <= width else text[:width - 3] + "..."


def logreg_baseline(cfg: ClassifyRunConfig) -> list[dict]:
    """The classical baselines on the same split: TF-IDF + logistic regression and NBSVM (uni- and bigrams,
    Wang & Manning 2012) for texts, MFCC statistics + an RBF SVM for audio clips, logistic regression on
    flattened numeric sequences."""
    s = load_splits(cfg.data, cfg.train.seed)
    if s.train.kind == "audio":
        r = mfcc_svm(s.train.inputs, s.train.labels, s.test.inputs, s.test.labels, cfg.data.feature_config())
        return [{"model": "mfcc+svm", **r}]
    if s.train.kind == "text":
        split = (s.train.inputs, s.train.labels, s.test.inputs, s.test.labels)
        return [{"model": "tfidf+logreg", **tfidf_logreg(*split)}, {"model": "nbsvm", **nbsvm_baseline(*split)}]
    else:
        r, name = flat_logreg(s.train.inputs, s.train.labels, s.test.inputs, s.test.labels), "logreg"
    return [{"model": name, **r}]


class ClassifyTask(Task):
    name = TASK
    help = "a sequence classifier on labelled texts, numeric sequences or audio clips (default: digits)"
    evaluate_help = "accuracy, macro-F1 and per-class scores on a labelled CSV/TSV/JSONL file or class folders"
    predict_help = "the label and class probabilities of each text or audio file (or each row of --file)"
    run_config = ClassifyRunConfig
    presets_package = "rnnkit.tasks.classify.presets"
    train_defaults = TRAIN_DEFAULTS
    predict_file_help = "CSV/TSV/JSONL of inputs"
    compare_metrics = ("accuracy", "macro_f1")

    def upgrade_config(self, saved: dict) -> dict:
        return upgrade_config(saved)

    def train(self, cfg: ClassifyRunConfig, run_dir, *, resume=False, given: frozenset = frozenset(),
              callbacks=()):
        return train_classify(cfg, run_dir, resume=resume, callbacks=callbacks, given=given)

    def report(self, result: dict, run_dir) -> None:
        print(f"{result['parameters']} parameters, {result['steps']} updates in {result['elapsed_s']:.0f} s "
              f"(stopped: {result['stopped']}); train/val/test {result['train']}/{result['val']}/{result['test']}")
        if result.get("skipped"):
            print(f"skipped {result['skipped']} bad audio file(s) (--skip-bad)")
        if "pretrain_val_loss" in result:
            print(f"language-model pretraining: {result['pretrain_texts']} texts, {result['pretrain_steps']} updates "
                  f"in {result['pretrain_s']:.0f} s, best val loss {result['pretrain_val_loss']:.3f} nats/token "
                  f"(run_dir/pretrain/)")
        if "test_accuracy" in result:
            print(f"test: accuracy {result['test_accuracy']:.4f}  macro-F1 {result['test_macro_f1']:.4f}")
        print(f"run saved in {run_dir}/")

    def load(self, run, which: str = "best", device: str = "cpu"):
        return load_classifier(run)

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        return evaluate_classify(run, data)

    def print_evaluation(self, rep: dict, data: str) -> None:
        print(f"accuracy {rep['accuracy']:.4f}  macro-F1 {rep['macro_f1']:.4f}  ({rep['n']} examples)")
        if rep.get("skipped"):
            print(f"skipped {rep['skipped']} bad audio file(s) (the run was trained with --skip-bad)")
        for row in rep["per_class"]:
            print(f"  {row['label']:>12}  precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                  f"f1 {row['f1']:.3f}  support {row['support']}")
        labels = [row["label"] for row in rep["per_class"]]
        width = max(5, *(len(lab) for lab in labels))
        print("confusion (rows: true, columns: predicted)")
        print(" " * (width + 3) + " ".join(f"{lab:>{width}}" for lab in labels))
        for lab, counts in zip(labels, rep["confusion"]):
            print(f"  {lab:>{width}} " + " ".join(f"{int(c):>{width}}" for c in counts))

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        file = options.get("file") or ""
        if not inputs and not file:
            raise ConfigError("give inputs to classify or --file FILE")
        return predict_classify(run, list(inputs), file)

    def print_predictions(self, preds: list[dict], options: Mapping[str, Any]) -> None:
        top = options.get("top") or TOP_CLASSES
        for i, r in enumerate(preds):
            probs = "  ".join(f"{k} {v:.3f}" for k, v in list(r["probabilities"].items())[:top])
            print(f"{i + 1}\t{shown_input(r['input'])}\t{r['label']}\t{probs}")

    def compare(self, args) -> tuple[list[dict], list[str]]:
        metrics = list(self.compare_metrics)
        if getattr(args, "folds", 0):
            return cross_validate(args, metrics,
                                  lambda a: compare_networks(self, a, metrics, test_rows(metrics), logreg_baseline))
        return compare_networks(self, args, metrics, test_rows(metrics), logreg_baseline)

    def example_inputs(self, loaded) -> tuple:
        enc = loaded.encoder
        x = "an example" if enc.kind == "text" else np.zeros((4, enc.n_inputs), dtype=np.float32)
        return (enc.batches([x], None, 1)[0],)

    def export_graphs(self, loaded) -> list:
        return classify_graphs(loaded)

    def search_space(self) -> dict[str, dict]:
        return {**super().search_space(),
                "model.layers": distribution("int", low=1, high=2),
                "model.embedding": distribution("categorical", choices=[32, 64, 128]),
                "model.pooling": distribution("categorical",
                                              choices=["auto", "last", "mean", "max", "attention", "concat"]),
                "model.embed_dropout": distribution("float", low=0.0, high=0.3),
                "model.locked_dropout": distribution("float", low=0.0, high=0.5),
                # character features of words: word-level text only (0 = none)
                "model.char_hidden": {**distribution("categorical", choices=[0, 16, 25]),
                                      "if": {"data.tokenizer": "word"}},
                "model.bidirectional": distribution("categorical", choices=[False, True]),
                # the NBSVM experts (text; no effect on numeric or audio examples)
                "model.nbsvm": distribution("categorical", choices=[0, 2]),
                "model.nbsvm_chars": distribution("categorical", choices=[0, 4, 5])}

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)
