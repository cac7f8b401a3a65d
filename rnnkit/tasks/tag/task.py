"""The tag task as the registry sees it (:class:`TagTask`)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from rnnkit.config import ConfigError
from rnnkit.data.readers import read_text, text_lines
from rnnkit.data.word_vectors import vector_dim
from rnnkit.tasks.tag.config import TRAIN_DEFAULTS, TagRunConfig
from rnnkit.tasks.tag.data import make_tag_batches
from rnnkit.tasks.baselines.crf_features import crf_tagger
from rnnkit.tasks.compare import compare_networks, test_rows
from rnnkit.tasks.tag.pipeline import TASK, evaluate_tag, load_tag_splits, load_tagger, predict_tag, train_tag
from rnnkit.tasks.tag import serve
from rnnkit.tasks.task import Task, distribution
from rnnkit.tasks.tag.export import tag_graphs


def embedding_follows_vectors(cfg: TagRunConfig, given: frozenset = frozenset()) -> TagRunConfig:
    """With ``--embeddings FILE`` and no ``--embedding`` of the user's, the word embedding takes the file's
    dimension; an ``--embedding`` the user gave must match it (an error otherwise, in training)."""
    if cfg.model.embeddings and ("model", "embedding") not in set(given):
        return replace(cfg, model=replace(cfg.model, embedding=vector_dim(cfg.model.embeddings)))
    return cfg


def crf_baseline(cfg: TagRunConfig) -> list[dict]:
    """A linear-chain CRF over hand-made word features (python-crfsuite) on the same split."""
    train, _, test = load_tag_splits(cfg.data, cfg.train.seed)
    r = crf_tagger([(s.tokens, s.tags) for s in train], [(s.tokens, s.tags) for s in test])
    return [{"model": "crf (word features)", **r}]


class TagTask(Task):
    name = TASK
    help = "a sequence tagger (NER, POS) on CoNLL / JSONL files (default: embedded NER set)"
    evaluate_help = "token accuracy and CoNLL entity precision / recall / F1 on a CoNLL or JSONL file"
    predict_help = "a tag per token and the entities found in each raw sentence (or each line of --file)"
    run_config = TagRunConfig
    presets_package = "rnnkit.tasks.tag.presets"
    train_defaults = TRAIN_DEFAULTS
    predict_file_help = "one sentence per line"
    compare_metrics = ("f1", "accuracy")

    def train(self, cfg: TagRunConfig, run_dir, *, resume=False, given: frozenset = frozenset(),
              callbacks=()):
        return train_tag(embedding_follows_vectors(cfg, given), run_dir, resume=resume, callbacks=callbacks)

    def report(self, result: dict, run_dir) -> None:
        if "pretrained" in result:
            p = result["pretrained"]
            print(f"pretrained vectors ({p['file']}) started {p['found']} of {p['words']} words")
        print(f"{result['parameters']} parameters, {result['steps']} updates in {result['elapsed_s']:.0f} s "
              f"(stopped: {result['stopped']}); scheme {result['scheme']}; "
              f"train/val/test {result['train']}/{result['val']}/{result['test']} sentences")
        if "test_accuracy" in result:
            line = f"test: token accuracy {result['test_accuracy']:.4f}"
            if "test_f1" in result:
                line += (f"  entity precision {result['test_precision']:.2f}  recall {result['test_recall']:.2f}  "
                         f"F1 {result['test_f1']:.2f}")
            print(line)
        print(f"run saved in {run_dir}/")

    def load(self, run, which: str = "best", device: str = "cpu"):
        return load_tagger(run)

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        return evaluate_tag(run, data)

    def print_evaluation(self, s: dict, data: str) -> None:
        line = f"token accuracy {s['accuracy']:.4f}"
        if "f1" in s:
            line += f"  entity precision {s['precision']:.2f}  recall {s['recall']:.2f}  F1 {s['f1']:.2f}"
        print(line + f"  ({s['n']} sentences)")
        for typ, v in s.get("per_type", {}).items():
            print(f"  {typ:>8}  precision {v['precision']:.2f}  recall {v['recall']:.2f}  F1 {v['f1']:.2f}")

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        texts = list(inputs)
        if options.get("file"):
            texts += [ln for ln in text_lines(read_text(options["file"])) if ln.strip()]
        if not texts:
            raise ConfigError("give sentences to tag or --file FILE")
        return predict_tag(run, texts)

    def print_predictions(self, preds: list[dict], options: Mapping[str, Any]) -> None:
        for r in preds:
            print(" ".join(f"{t}/{g}" for t, g in zip(r["tokens"], r["tags"])))
            for e in r["entities"]:
                print(f"  {e['type']}: {e['text']}")

    def compare(self, args) -> tuple[list[dict], list[str]]:
        metrics = list(self.compare_metrics)
        return compare_networks(self, args, metrics, test_rows(metrics), crf_baseline)

    def example_inputs(self, loaded) -> tuple:
        return (make_tag_batches(loaded.encoder, [["An", "example", "."]], 1, labelled=False)[0],)

    def export_graphs(self, loaded) -> list:
        return tag_graphs(loaded)

    def search_space(self) -> dict[str, dict]:
        return {**super().search_space(),
                "model.embedding": distribution("categorical", choices=[32, 64, 128]),
                "model.char_hidden": distribution("categorical", choices=[0, 16, 25, 50]),  # 0: no character features
                "model.char_model": distribution("categorical", choices=["cnn", "rnn"]),
                "model.word_dropout": distribution("float", low=0.0, high=0.2),
                "model.output": distribution("categorical", choices=["softmax", "crf"])}

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)
