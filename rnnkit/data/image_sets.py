"""Image sets as the captioning and tagging tasks train on them: splits, the decoded images, batches.

    splits = load_image_splits(data="", kind="captions", ...)     # "" = the embedded synthetic scenes
    table = ImageTable.load(splits.train, spec, skip_bad)          # every image once, (N, 3, S, S) uint8
    batches = sequence_batches(table, targets, batch_size, pad_id) # dict batches of contiguous images

A batch holds ``images`` (B, 3, S, S) uint8 - a *view* of the table (the images of a batch are contiguous
rows), or ``features`` (B, S', C) of a frozen encoder, computed once per image - and one row per target
sequence: ``rows`` (N,) the image of each sequence within the batch, ``tokens_in`` (N, T) starting with
``<s>`` and ``tokens_out`` (N, T) ending with ``</s>``, padded with ``<pad>``. An image with several
captions is encoded once per batch and decoded once per caption.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from rnnkit.atomic import atomic_write_csv
from rnnkit.data.image_text import ImageText, Skipped, read_image_text
from rnnkit.data.images import ImageError, ImageSpec, load_image
from rnnkit.data.readers import DataError
from rnnkit.data.scenes import SceneSetSpec, scene_set

SCENES = "builtin:scenes"
KINDS = ("captions", "tags")


@dataclass
class ImageSplits:
    train: list[ImageText]
    val: list[ImageText]
    test: list[ImageText]
    source: str
    skipped: Skipped = field(default_factory=Skipped)


def split_items(items: list[ImageText], val_fraction: float, test_fraction: float, seed: int
                ) -> tuple[list[ImageText], list[ImageText], list[ImageText]]:
    """A seeded split by image (all captions of an image stay in one split)."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_val, n_test = round(val_fraction * len(items)), round(test_fraction * len(items))
    if len(items) - n_val - n_test < 1 or n_val < 1:
        raise DataError(f"{len(items)} images are too few to split with val_fraction={val_fraction}, "
                        f"test_fraction={test_fraction}")
    pick = [items[i] for i in order]
    return pick[n_val + n_test:], pick[:n_val], pick[n_val:n_val + n_test]


def load_image_splits(data: str, kind: str, *, images: str = "", skip_bad: bool = False,
                      val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0,
                      scenes: SceneSetSpec = SceneSetSpec()) -> ImageSplits:
    """The user's data (a Flickr-style folder, a COCO ``.json``, a ``.csv``) split by image, or the
    embedded scenes (``data`` empty), whose test split holds the unseen colour-shape combinations."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not data or data == SCENES:
        folder = scene_set(scenes)
        suffix = "" if kind == "captions" else "_tags"
        parts = [read_image_text(folder / f"{split}{suffix}.csv")[0] for split in ("train", "val", "test")]
        return ImageSplits(*parts, source=SCENES)
    items, skipped = read_image_text(data, skip_bad=skip_bad, images=images or None)
    wanted = [it for it in items if (it.captions if kind == "captions" else it.tags)]
    if not wanted:
        raise DataError(f"{data}: no image has {kind} (a CSV needs a '{kind[:-1] if kind == 'captions' else 'tags'}' "
                        f"column)")
    return ImageSplits(*split_items(wanted, val_fraction, test_fraction, seed), source=str(data), skipped=skipped)


class ImageTable:
    """The decoded images of a split, one row each: ``pixels`` (N, 3, S, S) uint8 and ``items``."""

    def __init__(self, items: list[ImageText], pixels: torch.Tensor, bad: list[tuple[str, str]]):
        self.items, self.pixels, self.bad = items, pixels, bad

    @classmethod
    def load(cls, items: Sequence[ImageText], spec: ImageSpec, skip_bad: bool = False) -> "ImageTable":
        """Decode every item's image; with ``skip_bad`` an unreadable image drops its item (counted in
        ``bad``), else it raises :class:`ImageError` naming the file."""
        kept, rows, bad = [], [], []
        for it in items:
            try:
                rows.append((load_image(it.image, spec) * 255).round().to(torch.uint8))   # (3, S, S)
            except ImageError as err:
                if not skip_bad:
                    raise ImageError(f"{err} (pass --skip-bad to skip and count unreadable images)") from err
                bad.append((it.image, str(err)))
                continue
            kept.append(it)
        if not kept:
            raise DataError(f"none of the {len(items)} images could be read (first: {bad[0][1] if bad else '-'})")
        return cls(kept, torch.stack(rows), bad)

    def __len__(self) -> int:
        return len(self.items)


def pad_sequences(seqs: Sequence[Sequence[int]], bos: int, eos: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (tokens_in (N, T) = <s> + ids, tokens_out (N, T) = ids + </s>), padded."""
    T = max(len(s) for s in seqs) + 1
    tin = torch.full((len(seqs), T), pad, dtype=torch.long)
    tout = torch.full((len(seqs), T), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        tin[i, :len(s) + 1] = torch.tensor([bos, *s], dtype=torch.long)
        tout[i, :len(s) + 1] = torch.tensor([*s, eos], dtype=torch.long)
    return tin, tout


def sequence_batches(source: torch.Tensor, targets: Sequence[Sequence[Sequence[int]]], batch_size: int,
                     special: tuple[int, int, int], key: str = "images") -> list[dict]:
    """Batches of ``batch_size`` consecutive images of ``source`` (pixels or cached features, one row per
    image) with every target sequence of each image; ``targets[i]``: the token lists of image ``i``;
    ``special``: (bos, eos, pad)."""
    bos, eos, pad = special
    batches = []
    for a in range(0, source.shape[0], batch_size):
        b = min(a + batch_size, source.shape[0])
        rows = [i - a for i in range(a, b) for _ in targets[i]]
        seqs = [s for i in range(a, b) for s in targets[i]]
        if not seqs:
            continue
        tin, tout = pad_sequences(seqs, bos, eos, pad)
        batches.append(ImageBatch({key: source[a:b], "rows": torch.tensor(rows, dtype=torch.long),
                                   "tokens_in": tin, "tokens_out": tout}))
    return batches


class ImageBatch(dict):
    """One batch of :func:`sequence_batches`: images (or their features) with every target sequence of
    each. Its rows are the images, so several processes (rnnkit.train.distributed) split it by image,
    each keeping the sequences of its own images."""

    def batch_rows(self) -> int:
        return next(v for k, v in self.items() if k not in ("rows", "tokens_in", "tokens_out")).shape[0]

    def take_rows(self, start: int, stop: int) -> "ImageBatch":
        keep = (self["rows"] >= start) & (self["rows"] < stop)                   # (N,) sequences of these images
        out = {k: v[start:stop] for k, v in self.items() if k not in ("rows", "tokens_in", "tokens_out")}
        return ImageBatch(out, rows=self["rows"][keep] - start, tokens_in=self["tokens_in"][keep],
                          tokens_out=self["tokens_out"][keep])


@torch.no_grad()
def encode_table(encoder, pixels: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Features (N, S, C) of a frozen ``encoder`` for every image, computed once (the frozen-encoder cache)."""
    was = encoder.training
    encoder.eval()
    out = torch.cat([encoder(pixels[a:a + batch_size]) for a in range(0, pixels.shape[0], batch_size)])
    encoder.train(was)
    return out


def write_split_csv(items: Sequence[ImageText], path: Path, kind: str) -> None:
    """A split as a CSV the readers take back (``image,caption`` rows or ``image,tags``), absolute paths."""
    if kind == "captions":
        rows = [("image", "caption"), *((str(Path(it.image).resolve()), c) for it in items for c in it.captions)]
    else:
        rows = [("image", "tags"), *((str(Path(it.image).resolve()), "|".join(it.tags)) for it in items)]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(path, rows)
