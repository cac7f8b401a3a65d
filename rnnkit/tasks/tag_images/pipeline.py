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
from rnnkit.config import save_yaml, to_dict
from rnnkit.data.image_sets import ImageTable, sequence_batches, write_split_csv
from rnnkit.data.image_text import ImageText, read_image_text
from rnnkit.data.images import load_image
from rnnkit.data.tokenizers import SentenceTokenizer
from rnnkit.data.vocab import Vocabulary, vocabulary_from_dict
from rnnkit.metrics.captioning import tagging_scores
from rnnkit.tasks.runs import write_json
from rnnkit.tasks.vision import (LoadedImageRun, batch_source, build_decoder, load_image_run, load_weights,
                                 prepare_tables)
from rnnkit.train import ListData, Trainer, read_meta, seed_everything
from rnnkit.train.checkpoint import find_run_checkpoint

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


def train_tags(cfg: TagRunConfig, run_dir: str | Path, *, resume=False, log=print, callbacks=()) -> dict:
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    splits = cfg.data.splits("tags")
    if resume:
        meta = read_meta(find_run_checkpoint(run_dir, "last") if resume is True else resume)["metadata"]
        vocab = vocabulary_from_dict(meta["vocabulary"])
    else:
        vocab = build_tag_vocab(splits.train, cfg)
    tables = prepare_tables(splits, cfg.data.image_spec(), cfg.data.skip_bad, log)
    model = build_model(cfg, vocab, log)
    train, val = (tag_batches(cfg, model, getattr(tables, n), vocab) for n in ("train", "val"))
    log(f"{splits.source}: train {len(tables.train)} images, val {len(tables.val)}, test {len(tables.test)}; "
        f"{len(tag_index(vocab))} tags; head {cfg.model.head}")
    for name in ("train", "val", "test"):
        write_split_csv(getattr(tables, name).items, run_dir / "data" / f"{name}.csv", "tags")
    save_yaml(cfg, run_dir / "config.yaml")
    metadata = {"task": TASK, "vocabulary": vocab.to_dict(), "source": splits.source}
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=TagMeter, run_config=to_dict(cfg), metadata=metadata,
                      callbacks=callbacks)
    fit = trainer.fit(ListData(train, shuffle=True, seed=cfg.train.seed), ListData(val), resume=resume)
    scores = score_table(load_tag_run(run_dir), tables.test, run_dir / "eval" / "test.tags.jsonl")
    result = {"source": splits.source, "head": cfg.model.head, "train": len(tables.train), "val": len(tables.val),
              "test": len(tables.test), "tags": len(tag_index(vocab)), "skipped": splits.skipped.counts,
              "bad_images": len(tables.bad), "parameters": sum(p.numel() for p in model.parameters()),
              "steps": fit.steps, "elapsed_s": fit.elapsed_s, "stopped": fit.stopped, **fit.best_metrics,
              **{f"test_{k}": v for k, v in scores.items()}}
    write_json(run_dir / "result.json", result)
    return result


def load_tag_run(run: str | Path, which: str = "best", device: str = "cpu") -> LoadedImageRun:
    return load_image_run(run, which, device, TASK, TagRunConfig, lambda cfg, v: build_model(cfg, v, None))


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
    loaded = load_tag_run(run, which)
    items, skipped = read_image_text(data, skip_bad=skip_bad)
    items = [it for it in items if it.tags]
    table = ImageTable.load(items, loaded.config.data.image_spec(), skip_bad)
    out = out or loaded.run_dir / "eval" / f"{Path(data).stem}.tags.jsonl"
    known = set(tag_index(loaded.vocab))
    unknown = sorted({t for it in table.items for t in it.tags if t not in known})
    scores = score_table(loaded, table, out)
    return {"data": str(data), "images": len(table), "skipped": skipped.counts, "bad_images": len(table.bad),
            "unknown_tags": unknown, **scores, "tags_file": str(out)}


def predict_files(loaded: LoadedImageRun, paths: Sequence[str]) -> list[dict]:
    spec = loaded.config.data.image_spec()
    pixels = torch.stack([(load_image(p, spec) * 255).round().to(torch.uint8) for p in paths])
    pred = predict_pixels(loaded, pixels)
    tags = tag_index(loaded.vocab)
    return [{"image": p, "tags": [t for t, on in zip(tags, row) if on],
             "scores": {t: round(float(s), 4) for t, s in zip(tags, srow)}}
            for p, row, srow in zip(paths, pred.predicted.tolist(), pred.scores.tolist())]
