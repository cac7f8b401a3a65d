"""Training and scoring: ``rnnkit train tag-images``, ``rnnkit evaluate`` / ``predict`` on its runs.

Pipeline: images + tags (an ``image,tags`` CSV with tags separated by ``|``, or the embedded scenes'
tags) -> split by image -> tag vocabulary of the training split, most frequent first -> decoded images
(or a frozen encoder's features) -> batches -> :class:`rnnkit.train.Trainer` -> mAP, micro / macro F1 and
F1 per tag on the test split.

Run directory::

    RUN/checkpoints/{best,last}.safetensors   weights, resolved config, tag vocabulary
    RUN/data/{train,val,test}.csv             the split (image,tags; absolute image paths)
    RUN/eval/test.tags.jsonl, result.json     predicted tags of the test images and the scores
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.data.image_sets import ImageTable, sequence_batches
from rnnkit.data.image_text import ImageText
from rnnkit.data.tokenizers import SentenceTokenizer
from rnnkit.data.vocab import Vocabulary
from rnnkit.metrics.captioning import tagging_scores
from rnnkit.tasks.runs import write_json
from rnnkit.tasks.vision import LoadedImageRun, Tables, batch_source, build_decoder, image_pixels, load_weights
from rnnkit.tasks.vision_pipeline import ImageTextKind, evaluate_image_text, train_image_text

from .config import TagRunConfig
from .model import SigmoidTagger, TagMeter, TagPredictions, decode_tags, sigmoid_tags, tag_index

TASK = "tag-images"


def build_tag_vocab(items: Sequence[ImageText], cfg: TagRunConfig) -> Vocabulary:
    """The tags of the training images, most frequent first (the order the rnn head emits them in)."""
    table = SentenceTokenizer.build_tokens((it.tags for it in items), cfg.data.min_freq, cfg.data.vocab_size + 1)
    return Vocabulary(table)


def build_model(cfg: TagRunConfig, vocab: Vocabulary, log: Callable[[str], Any] | None = print) -> torch.nn.Module:
    """The model to train (``log``: where notes on ``--encoder-weights`` go) or, ``log=None``, to load a run into."""
    m = cfg.model
    if m.head == "rnn":
        return build_decoder(m, vocab.size, vocab.pad_id, log)
    model = SigmoidTagger(m.encoder, m.freeze_encoder, len(tag_index(vocab)), m.dropout)
    if log is not None:
        load_weights(model.encoder.cnn, m, log)
    return model


def multi_hot(items: Sequence[ImageText], vocab: Vocabulary) -> torch.Tensor:
    """(N, K) 0/1 of each image's known tags (tags outside the vocabulary are left out)."""
    col = {t: k for k, t in enumerate(tag_index(vocab))}
    out = torch.zeros(len(items), len(col))
    for i, it in enumerate(items):
        for t in it.tags:
            if t in col:
                out[i, col[t]] = 1.0
    return out


def tag_batches(cfg: TagRunConfig, model, table: ImageTable, vocab: Vocabulary) -> list[dict]:
    source, key = batch_source(model, table, cfg.model.freeze_encoder)
    if cfg.model.head == "rnn":
        order = {t: k for k, t in enumerate(tag_index(vocab))}
        targets = [[sorted(vocab.encode_tokens([t for t in it.tags if t in order]))] for it in table.items]
        return sequence_batches(source, targets, cfg.train.batch_size, (vocab.bos_id, vocab.eos_id, vocab.pad_id),
                                key)
    hot = multi_hot(table.items, vocab)
    bs = cfg.train.batch_size
    return [{key: source[a:a + bs], "targets": hot[a:a + bs]} for a in range(0, len(table), bs)]


class Tagging(ImageTextKind):
    """Image tagging in the shared image-to-text loops: a tag vocabulary, the rnn or sigmoid head."""
    task, field, run_config = TASK, "tags", TagRunConfig

    def vocabulary(self, cfg: TagRunConfig, train: Sequence[ImageText]) -> Vocabulary:
        return build_tag_vocab(train, cfg)

    def model(self, cfg: TagRunConfig, vocab: Vocabulary, log: Callable[[str], Any] | None = print
              ) -> torch.nn.Module:
        return build_model(cfg, vocab, log)

    def batches(self, cfg: TagRunConfig, model, table: ImageTable, vocab: Vocabulary) -> tuple[list[dict], int]:
        return tag_batches(cfg, model, table, vocab), 0

    def meter(self, vocab: Vocabulary) -> Callable[[], TagMeter]:
        return TagMeter

    def summary(self, cfg: TagRunConfig, vocab: Vocabulary, tables: Tables, cut: int) -> tuple[str, str]:
        return "", f"{len(tag_index(vocab))} tags; head {cfg.model.head}"

    def result_fields(self, cfg: TagRunConfig, vocab: Vocabulary) -> dict:
        return {"head": cfg.model.head, "tags": len(tag_index(vocab))}

    def score(self, loaded: LoadedImageRun, table: ImageTable, out: Path | None = None) -> dict:
        return score_table(loaded, table, out)

    def evaluation_fields(self, loaded: LoadedImageRun, table: ImageTable) -> dict:
        known = set(tag_index(loaded.vocab))
        return {"unknown_tags": sorted({t for it in table.items for t in it.tags if t not in known})}


TAGGING = Tagging()


def train_tags(cfg: TagRunConfig, run_dir: str | Path, *, resume=False, log=print, callbacks=()) -> dict:
    return train_image_text(TAGGING, cfg, run_dir, resume=resume, log=log, callbacks=callbacks)


def load_tag_run(run: str | Path, which: str = "best", device: str = "cpu") -> LoadedImageRun:
    return TAGGING.load(run, which, device)


@torch.no_grad()
def predict_pixels(loaded: LoadedImageRun, pixels: torch.Tensor, batch_size: int = 64) -> TagPredictions:
    """Tag scores and predicted sets of images (N, 3, S, S) uint8."""
    model, m = loaded.model, loaded.config.model
    parts = []
    for a in range(0, pixels.shape[0], batch_size):
        feats = model.features(pixels[a:a + batch_size].to(loaded.device))                # (B, S, C)
        parts.append(decode_tags(model, feats, loaded.vocab, m.max_tags) if m.head == "rnn"
                     else sigmoid_tags(model, feats, m.threshold))
    return TagPredictions(torch.cat([p.scores for p in parts]), torch.cat([p.predicted for p in parts]))


def score_table(loaded: LoadedImageRun, table: ImageTable, out: Path | None = None) -> dict:
    pred = predict_pixels(loaded, table.pixels)
    tags = tag_index(loaded.vocab)
    scores = tagging_scores(multi_hot(table.items, loaded.vocab).numpy(), pred.scores.numpy(),
                            pred.predicted.numpy(), tags)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"image": it.image, "tags": [t for t, on in zip(tags, row) if on], "truth": it.tags})
                 for it, row in zip(table.items, pred.predicted.tolist())]
        atomic_write_text(out, "".join(line + "\n" for line in lines))
        write_json(out.with_name(out.name.replace(".tags.jsonl", "_scores.json")), scores)
    return scores


def evaluate_tag_run(run: str | Path, data: str, *, which: str = "best", skip_bad: bool = False,
                     out: Path | None = None) -> dict:
    """Predicted tags and scores of a run on ``data``, and the tags there the run does not know."""
    return evaluate_image_text(TAGGING, run, data, which=which, skip_bad=skip_bad, out=out)


def predict_files(loaded: LoadedImageRun, paths: Sequence[str]) -> list[dict]:
    pred = predict_pixels(loaded, image_pixels(loaded, paths))
    tags = tag_index(loaded.vocab)
    return [{"image": p, "tags": [t for t, on in zip(tags, row) if on],
             "scores": {t: round(float(s), 4) for t, s in zip(tags, srow)}}
            for p, row, srow in zip(paths, pred.predicted.tolist(), pred.scores.tolist())]
