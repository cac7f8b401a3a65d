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
from rnnkit.data.image_sets import ImageTable, sequence_batches
from rnnkit.data.image_text import ImageText
from rnnkit.data.scenes import attribute_accuracy
from rnnkit.data.vocab import Vocabulary
from rnnkit.metrics.captioning import caption_scores, normalize_caption
from rnnkit.modules.image_decoder import DecoderOutput, ImageDecoder
from rnnkit.modules.search import SpecialIds, beam_search, greedy_search
from rnnkit.tasks.runs import write_json
from rnnkit.tasks.vision import LoadedImageRun, Tables, batch_source, build_decoder, image_pixels
from rnnkit.tasks.vision_pipeline import ImageTextKind, evaluate_image_text, train_image_text

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


class Captioning(ImageTextKind):
    """Captioning in the shared image-to-text loops: a word vocabulary, every caption of an image a target."""
    task, field, run_config = TASK, "captions", CaptionRunConfig

    def vocabulary(self, cfg: CaptionRunConfig, train: Sequence[ImageText]) -> Vocabulary:
        words = [normalize_caption(c) for it in train for c in it.captions]
        return Vocabulary.build("words", words, cfg.data.vocab_size, cfg.data.min_freq)

    def model(self, cfg: CaptionRunConfig, vocab: Vocabulary, log: Callable[[str], Any] | None = print
              ) -> ImageDecoder:
        return build_model(cfg, vocab, log)

    def batches(self, cfg: CaptionRunConfig, model, table: ImageTable, vocab: Vocabulary) -> tuple[list[dict], int]:
        targets, cut = caption_targets(table.items, vocab, cfg.decode.max_len)
        source, key = batch_source(model, table, cfg.model.freeze_encoder)
        return sequence_batches(source, targets, cfg.train.batch_size, special_ids(vocab), key), cut

    def meter(self, vocab: Vocabulary) -> Callable[[], CaptionMeter]:
        return lambda: CaptionMeter(vocab.pad_id)

    def summary(self, cfg: CaptionRunConfig, vocab: Vocabulary, tables: Tables, cut: int) -> tuple[str, str]:
        n_caps = sum(len(it.captions) for it in tables.train.items)
        return (f" ({n_caps} captions)",
                f"{vocab.size} words" + (f"; {cut} captions cut to {cfg.decode.max_len - 1} words" if cut else ""))

    def result_fields(self, cfg: CaptionRunConfig, vocab: Vocabulary) -> dict:
        return {}

    def score(self, loaded: LoadedImageRun, table: ImageTable, out: Path | None = None, meteor: str | None = None,
              **overrides) -> dict:
        return score_table(loaded, table, out, meteor or loaded.config.decode.meteor, **overrides)


CAPTIONING = Captioning()


def train_caption(cfg: CaptionRunConfig, run_dir: str | Path, *, resume=False, log=print, callbacks=()) -> dict:
    return train_image_text(CAPTIONING, cfg, run_dir, resume=resume, log=log, callbacks=callbacks)


def load_caption_run(run: str | Path, which: str = "best", device: str = "cpu") -> LoadedImageRun:
    return CAPTIONING.load(run, which, device)


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
    return caption_pixels(loaded, image_pixels(loaded, paths), decode_settings(loaded, **overrides))


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
    """Captions and scores of a run on ``data`` (``skip_bad``, ``meteor`` None: the run's settings)."""
    return evaluate_image_text(CAPTIONING, run, data, which=which, skip_bad=skip_bad, out=out, images=images,
                               meteor=meteor, **overrides)
