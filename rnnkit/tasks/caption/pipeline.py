"""Training, captioning and scoring: ``rnnkit train caption``, ``rnnkit caption``, ``rnnkit evaluate``.

Pipeline: images + captions (a Flickr-style folder, COCO JSON, CSV or the embedded scenes) -> split by
image -> word vocabulary of the training captions -> decoded images (or a frozen encoder's features, once
per image) -> batches of images with all their captions -> :class:`rnnkit.train.Trainer` -> captions of
the test split by beam search -> BLEU-1..4, CIDEr-D (METEOR with java) and, on the scenes, attribute
accuracy on the unseen combinations.

Run directory::

    RUN/checkpoints/{best,last}.safetensors   weights, resolved config, vocabulary
    RUN/data/{train,val,test}.csv             the split (image,caption; absolute image paths)
    RUN/eval/test.captions.jsonl, result.json captions of the test images and the scores
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch.nn import functional as F

from rnnkit.atomic import atomic_write_text
from rnnkit.config import save_yaml, to_dict
from rnnkit.data.image_sets import ImageTable, sequence_batches, write_split_csv
from rnnkit.data.image_text import ImageText, read_image_text
from rnnkit.data.images import load_image
from rnnkit.data.scenes import attribute_accuracy
from rnnkit.data.vocab import Vocabulary, vocabulary_from_dict
from rnnkit.metrics.captioning import caption_scores, normalize_caption
from rnnkit.modules.image_decoder import DecoderOutput, ImageDecoder
from rnnkit.modules.search import SpecialIds, beam_search, greedy_search
from rnnkit.tasks.runs import write_json
from rnnkit.tasks.vision import LoadedImageRun, batch_source, build_decoder, load_image_run, prepare_tables
from rnnkit.train import ListData, Trainer, read_meta, seed_everything
from rnnkit.train.checkpoint import find_run_checkpoint

from .config import CaptionDecodeConfig, CaptionRunConfig

TASK = "caption"


class CaptionMeter:
    """Validation loss (what training minimises: cross-entropy per word + the attention regulariser), the
    cross-entropy alone with its perplexity, and word accuracy."""

    def __init__(self, pad_id: int):
        self.pad_id, self.loss, self.ce, self.n, self.correct = pad_id, 0.0, 0.0, 0, 0

    def update(self, out: DecoderOutput, batch: dict) -> None:
        target = batch["tokens_out"]
        self.loss += float(out.loss) * out.n
        self.ce += float(F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]).float(), target.reshape(-1),
                                         ignore_index=self.pad_id, reduction="sum"))
        self.n += out.n
        self.correct += int(((out.logits.argmax(-1) == target) & (target != self.pad_id)).sum())

    def compute(self) -> dict:
        n = max(self.n, 1)
        return {"loss": self.loss / n, "ce": self.ce / n, "ppl": math.exp(min(self.ce / n, 50.0)),
                "word_acc": self.correct / n}


def caption_targets(items: Sequence[ImageText], vocab: Vocabulary, max_len: int) -> tuple[list, int]:
    """Token lists of every caption of every image (at most ``max_len - 1`` words; the rest cut, counted)."""
    targets, cut = [], 0
    for it in items:
        seqs = []
        for c in it.captions:
            ids = vocab.encode(normalize_caption(c))
            cut += len(ids) > max_len - 1
            seqs.append(ids[:max_len - 1])
        targets.append(seqs)
    return targets, cut


def special_ids(vocab: Vocabulary) -> tuple[int, int, int]:
    return vocab.bos_id, vocab.eos_id, vocab.pad_id


def build_model(cfg: CaptionRunConfig, vocab: Vocabulary, log: Callable[[str], Any] | None = print) -> ImageDecoder:
    """The model to train (``log``: where notes on ``--encoder-weights`` go) or, ``log=None``, to load a run into."""
    return build_decoder(cfg.model, vocab.size, vocab.pad_id, log)


def train_caption(cfg: CaptionRunConfig, run_dir: str | Path, *, resume=False, log=print, callbacks=()) -> dict:
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    splits = cfg.data.splits("captions")
    if resume:
        meta = read_meta(find_run_checkpoint(run_dir, "last") if resume is True else resume)["metadata"]
        vocab = vocabulary_from_dict(meta["vocabulary"])
    else:
        words = [normalize_caption(c) for it in splits.train for c in it.captions]
        vocab = Vocabulary.build("words", words, cfg.data.vocab_size, cfg.data.min_freq)
    tables = prepare_tables(splits, cfg.data.image_spec(), cfg.data.skip_bad, log)
    model = build_model(cfg, vocab, log)
    special = special_ids(vocab)
    batches, cut = {}, 0
    for name in ("train", "val"):
        table = getattr(tables, name)
        targets, n_cut = caption_targets(table.items, vocab, cfg.decode.max_len)
        cut += n_cut
        source, key = batch_source(model, table, cfg.model.freeze_encoder)
        batches[name] = sequence_batches(source, targets, cfg.train.batch_size, special, key)
    n_caps = sum(len(it.captions) for it in tables.train.items)
    log(f"{splits.source}: train {len(tables.train)} images ({n_caps} captions), val {len(tables.val)}, "
        f"test {len(tables.test)}; {vocab.size} words" + (f"; {cut} captions cut to {cfg.decode.max_len - 1} words"
                                                           if cut else ""))
    for name in ("train", "val", "test"):
        write_split_csv(getattr(tables, name).items, run_dir / "data" / f"{name}.csv", "captions")
    save_yaml(cfg, run_dir / "config.yaml")
    metadata = {"task": TASK, "vocabulary": vocab.to_dict(), "source": splits.source}
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=lambda: CaptionMeter(vocab.pad_id),
                      run_config=to_dict(cfg), metadata=metadata, callbacks=callbacks)
    fit = trainer.fit(ListData(batches["train"], shuffle=True, seed=cfg.train.seed), ListData(batches["val"]),
                      resume=resume)
    loaded = load_caption_run(run_dir)
    scores = score_table(loaded, tables.test, run_dir / "eval" / "test.captions.jsonl", cfg.decode.meteor)
    result = {"source": splits.source, "train": len(tables.train), "val": len(tables.val), "test": len(tables.test),
              "skipped": splits.skipped.counts, "bad_images": len(tables.bad),
              "parameters": sum(p.numel() for p in model.parameters()), "steps": fit.steps,
              "elapsed_s": fit.elapsed_s, "stopped": fit.stopped, **fit.best_metrics,
              **{f"test_{k}": v for k, v in scores.items()}}
    write_json(run_dir / "result.json", result)
    return result


def load_caption_run(run: str | Path, which: str = "best", device: str = "cpu") -> LoadedImageRun:
    return load_image_run(run, which, device, TASK, CaptionRunConfig, lambda cfg, v: build_model(cfg, v, None))


# ------------------------------------------------------------------------------------- captioning

@dataclass
class Caption:
    text: str
    score: float                    # log p / length penalty (beam ranking)
    log_prob: float
    words: list[str]                # the generated words, "</s>" last
    attention: Optional[torch.Tensor]   # (len(words), S) weights over the feature grid, or None


@torch.no_grad()
def caption_pixels(loaded: LoadedImageRun, pixels: torch.Tensor, decode: CaptionDecodeConfig,
                   batch_size: int = 32) -> list[Caption]:
    """The best caption of each image of ``pixels`` (N, 3, S, S) uint8."""
    model, vocab = loaded.model, loaded.vocab
    special = SpecialIds.of(vocab)
    out: list[Caption] = []
    for a in range(0, pixels.shape[0], batch_size):
        feats = model.features(pixels[a:a + batch_size].to(loaded.device))                # (B, S, C)
        B, S = feats.shape[:2]
        lengths, limits = torch.full((B,), S), [decode.max_len] * B
        if decode.beam == 1:
            hyps = greedy_search(model, feats, lengths, limits, special=special)
        else:
            hyps = beam_search(model, feats, lengths, limits, decode.beam, 1, decode.length_penalty,
                               special=special)
        for (h,) in hyps:
            words = vocab.pieces(h.tokens) + ["</s>"]
            out.append(Caption(vocab.decode(h.tokens), h.score, h.log_prob, words, h.attention))
    return out


def decode_settings(loaded: LoadedImageRun, **overrides) -> CaptionDecodeConfig:
    d = loaded.config.decode
    return CaptionDecodeConfig(**{**vars(d), **{k: v for k, v in overrides.items() if v is not None}})


def caption_files(loaded: LoadedImageRun, paths: Sequence[str], **overrides) -> list[Caption]:
    spec = loaded.config.data.image_spec()
    pixels = torch.stack([(load_image(p, spec) * 255).round().to(torch.uint8) for p in paths])
    return caption_pixels(loaded, pixels, decode_settings(loaded, **overrides))


def score_table(loaded: LoadedImageRun, table: ImageTable, out: Path | None = None, meteor: str = "auto",
                **overrides) -> dict:
    """Caption every image of ``table`` and score against its references; the captions go to ``out``."""
    caps = caption_pixels(loaded, table.pixels, decode_settings(loaded, **overrides))
    hyps = [c.text for c in caps]
    refs = [it.captions for it in table.items]
    scores = caption_scores(hyps, refs, meteor=meteor)
    attrs = attribute_accuracy(hyps, [r[0] for r in refs])
    if attrs.get("scored"):
        scores.update({f"attr_{k}": v for k, v in attrs.items() if k != "scored"})
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, "".join(json.dumps({"image": it.image, "caption": h, "references": it.captions},
                                                  ensure_ascii=False) + "\n" for it, h in zip(table.items, hyps)))
        write_json(out.with_name(out.name.replace(".captions.jsonl", "_scores.json")), scores)
    return scores


def evaluate_caption_run(run: str | Path, data: str, *, which: str = "best", skip_bad: bool | None = None,
                         meteor: str | None = None, out: Path | None = None, images: str | None = None,
                         **overrides) -> dict:
    loaded = load_caption_run(run, which)
    d = loaded.config.data
    skip = d.skip_bad if skip_bad is None else skip_bad
    items, skipped = read_image_text(data, skip_bad=skip, images=images)
    items = [it for it in items if it.captions]
    table = ImageTable.load(items, d.image_spec(), skip)
    out = out or loaded.run_dir / "eval" / f"{Path(data).stem}.captions.jsonl"
    scores = score_table(loaded, table, out, meteor or loaded.config.decode.meteor, **overrides)
    return {"data": str(data), "images": len(table), "skipped": skipped.counts, "bad_images": len(table.bad),
            **scores, "captions_file": str(out)}
