"""What the image captioning and image tagging tasks share (task packages never import each other):

* :class:`ImageModelConfig` / :class:`ImageDataConfig` - their ``model`` and ``data`` config sections;
* :func:`build_decoder` - the CNN + recurrent decoder, with ``--encoder-weights`` loaded;
* :func:`prepare_tables` / :func:`batch_source` - decoded images per split and what batches carry
  (pixels, or a frozen encoder's features computed once per image);
* :func:`load_image_run` - a trained run's model, vocabulary and config; :func:`image_pixels` - image files
  as that run reads them.

Their training and evaluation loops are in :mod:`rnnkit.tasks.vision_pipeline`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from rnnkit.config import ConfigError, cell_names, check_choices, check_fraction, check_positive, opt
from rnnkit.data.image_sets import ImageSplits, ImageTable, encode_table, load_image_splits
from rnnkit.data.image_text import read_image_text
from rnnkit.data.images import FITS, ImageSpec, load_image
from rnnkit.data.readers import read_text, text_lines
from rnnkit.data.scenes import SceneSetSpec
from rnnkit.data.vocab import Vocabulary, vocabulary_from_dict
from rnnkit.modules.image_decoder import ATTENTIONS, POSITIONS, ImageDecoder, ImageDecoderConfig
from rnnkit.modules.image_encoders import ENCODERS, load_encoder_weights
from rnnkit.modules.scheduled_sampling import SCHEDULES
from rnnkit.tasks.runs import load_task_checkpoint
from rnnkit.train.checkpoint import find_run_checkpoint
from rnnkit.train.runtime import resolve_device


@dataclass
class ImageModelConfig:
    """A convolutional encoder and a recurrent decoder over its feature grid."""
    encoder: str = opt("small", "image encoder: a small CNN (small images) or a torchvision-layout "
                                "ResNet-18/34 / MobileNetV2", ENCODERS)
    encoder_weights: str = opt("", "a torchvision state_dict file (.pth / .safetensors) to initialise the "
                                   "encoder from (empty = trained from scratch; nothing is downloaded)")
    freeze_encoder: bool = opt(False, "keep the encoder fixed (its features are computed once per image)")
    cell: str = opt("lstm", "recurrent cell of the decoder", cell_names)
    embedding: int = opt(64, "word (tag) embedding size")
    hidden: int = opt(256, "decoder hidden units")
    layers: int = opt(1, "stacked decoder layers")
    attention: str = opt("soft", "soft attention over the feature grid (Show, Attend and Tell) or none "
                                 "(Show and Tell: the image is the first input)", ATTENTIONS)
    attention_size: int = opt(0, "hidden size of the additive attention (0 = hidden)")
    dropout: float = opt(0.3, "dropout on embeddings, between layers and before the output")
    doubly_stochastic: float = opt(1.0, "weight of the doubly stochastic attention regulariser (0 = off)")
    teacher_forcing: float = opt(1.0, "probability of feeding the gold previous token (the final value "
                                      "when a sampling schedule is set)")
    sampling_schedule: str = opt("constant", "scheduled sampling: how the teacher-forcing ratio decays "
                                             "from 1", SCHEDULES)
    sampling_steps: int = opt(5000, "updates over which the scheduled-sampling ratio decays")
    position: str = opt("learned", "soft attention: add a learned row + column embedding of each grid cell "
                                   "to its features, so the attended context says where (none = off)", POSITIONS)

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("embedding", "hidden", "layers", "sampling_steps"):
            check_positive(name, getattr(self, name))
        check_positive("attention_size", self.attention_size, allow_zero=True)
        check_positive("doubly_stochastic", self.doubly_stochastic, allow_zero=True)
        check_fraction("dropout", self.dropout)
        check_fraction("teacher_forcing", self.teacher_forcing, upper_open=False)
        if self.encoder_weights and self.encoder == "small":
            raise ConfigError("encoder_weights loads torchvision weights: choose --encoder resnet18, resnet34 "
                              "or mobilenet_v2")

    def decoder_config(self) -> ImageDecoderConfig:
        return ImageDecoderConfig(
            encoder=self.encoder, freeze_encoder=self.freeze_encoder, cell=self.cell, embedding=self.embedding,
            hidden=self.hidden, layers=self.layers, attention=self.attention, attention_size=self.attention_size,
            dropout=self.dropout, doubly_stochastic=self.doubly_stochastic, teacher_forcing=self.teacher_forcing,
            sampling_schedule=self.sampling_schedule, sampling_steps=self.sampling_steps, position=self.position)


@dataclass
class ImageDataConfig:
    """Where the images come from and how they are read."""
    data: str = opt("", "a Flickr8k/30k-style folder (captions.txt + Images/), a COCO captions .json or a .csv "
                        "(image,caption / image,tags); empty = the embedded synthetic scenes")
    images: str = opt("", "COCO .json: the folder of its images (default: looked up beside the file)")
    image_size: int = opt(64, "images are resized to this square size (224 for photographs)")
    fit: str = opt("pad", "keep the aspect ratio and pad, or crop the centre, or stretch", FITS)
    skip_bad: bool = opt(False, "skip (and count) unreadable images, missing images and empty captions "
                                "instead of stopping")
    val_fraction: float = opt(0.1, "your data: share of the images for validation")
    test_fraction: float = opt(0.1, "your data: share of the images for testing")
    split_seed: int = opt(13, "your data: seed of the split by image")
    scenes_train: int = opt(2000, "embedded scenes: training images")
    scenes_val: int = opt(200, "embedded scenes: validation images")
    scenes_test: int = opt(400, "embedded scenes: test images (unseen colour-shape combinations)")
    vocab_size: int = opt(10000, "largest word (tag) vocabulary")
    min_freq: int = opt(1, "rarer words (tags) become <unk>")

    def __post_init__(self) -> None:
        check_choices(self)
        if self.image_size < 16:
            raise ConfigError(f"image_size must be at least 16, got {self.image_size}")
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 < getattr(self, name) < 0.5:
                raise ConfigError(f"{name} must be in (0, 0.5), got {getattr(self, name)!r}")
        for name in ("scenes_train", "scenes_val", "scenes_test", "vocab_size", "min_freq"):
            check_positive(name, getattr(self, name))

    def image_spec(self) -> ImageSpec:
        return ImageSpec(size=self.image_size, fit=self.fit)

    def scene_spec(self) -> SceneSetSpec:
        return SceneSetSpec(train=self.scenes_train, val=self.scenes_val, test=self.scenes_test,
                            image_size=self.image_size)

    def splits(self, kind: str) -> ImageSplits:
        return load_image_splits(self.data, kind, images=self.images, skip_bad=self.skip_bad,
                                 val_fraction=self.val_fraction, test_fraction=self.test_fraction,
                                 seed=self.split_seed, scenes=self.scene_spec())


def build_decoder(cfg: ImageModelConfig, vocab_size: int, pad_id: int, log: Callable[[str], Any] | None = print
                  ) -> ImageDecoder:
    """The captioning model; ``log=None``: a saved run's (its checkpoint holds the encoder's weights, so
    ``--encoder-weights`` is not read again)."""
    model = ImageDecoder(cfg.decoder_config(), vocab_size, pad_id)
    if log is not None:
        load_weights(model.encoder.cnn, cfg, log)
    return model


def load_weights(cnn: torch.nn.Module, cfg: ImageModelConfig, log: Callable[[str], Any] = print) -> None:
    """``--encoder-weights`` into the encoder, or a note when a frozen encoder keeps random weights."""
    if cfg.encoder_weights:
        n = load_encoder_weights(cnn, cfg.encoder_weights, cfg.encoder)
        log(f"encoder {cfg.encoder}: {n} tensors loaded from {cfg.encoder_weights}")
    elif cfg.freeze_encoder:
        log(f"note: the {cfg.encoder} encoder is frozen with random weights (no --encoder-weights)")


@dataclass
class Tables:
    train: ImageTable
    val: ImageTable
    test: ImageTable
    bad: list = field(default_factory=list)


def prepare_tables(splits: ImageSplits, spec: ImageSpec, skip_bad: bool, log: Callable[[str], Any] = print
                   ) -> Tables:
    """Decoded images of each split; unreadable ones stop the run or (``skip_bad``) are counted."""
    tables = {name: ImageTable.load(getattr(splits, name), spec, skip_bad) for name in ("train", "val", "test")}
    bad = [b for t in tables.values() for b in t.bad]
    skipped = splits.skipped
    if skipped.total or bad:
        log(f"skipped: {skipped.counts | ({'bad_image': len(bad)} if bad else {})}; e.g. "
            f"{(skipped.examples + [m for _, m in bad])[:2]}")
    return Tables(**tables, bad=bad)


def batch_source(model: ImageDecoder | Any, table: ImageTable, frozen: bool) -> tuple[torch.Tensor, str]:
    """What batches carry for ``table``: a frozen encoder's features (computed once per image) or the pixels."""
    if frozen:
        return encode_table(model.encoder, table.pixels), "features"
    return table.pixels, "images"


@dataclass
class LoadedImageRun:
    """A trained captioning / tagging run: the model (eval mode), its vocabulary and config."""
    model: torch.nn.Module
    vocab: Vocabulary
    config: Any
    run_dir: Path
    device: torch.device
    meta: dict


def upgrade_image_config(saved: dict) -> dict:
    """A saved run config with the settings it predates filled in as they were: runs from before the
    learned grid position had none."""
    model = saved.get("model", {})
    return {**saved, "model": {"position": "none", **model}}


def load_image_run(run: str | Path, which: str, device: str, task: str, run_cls: type,
                   build: Callable[[Any, Vocabulary], torch.nn.Module]) -> LoadedImageRun:
    """``build(config, vocab)`` makes the untrained model the checkpoint's weights load into."""
    ck, cfg, meta = load_task_checkpoint(find_run_checkpoint(run, which), task, run_cls, upgrade_image_config)
    vocab = vocabulary_from_dict(meta["vocabulary"])
    model = build(cfg, vocab)
    model.load_state_dict(ck.group("model"))
    dev = resolve_device(device)
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent.parent
    return LoadedImageRun(model.to(dev).eval(), vocab, cfg, run_dir, dev, meta)


def image_pixels(loaded: LoadedImageRun, paths: Sequence[str | Path]) -> torch.Tensor:
    """The images at ``paths`` as the run reads them: (N, 3, S, S) uint8."""
    spec = loaded.config.data.image_spec()
    return torch.stack([(load_image(p, spec) * 255).round().to(torch.uint8) for p in paths])


def image_paths(inputs: list[str], file: str | None) -> list[str]:
    """Images given on the command line, plus those of ``--file``: the ``image`` column of a CSV, or one
    path per line of a text file."""
    paths = list(inputs)
    if file:
        if Path(file).suffix.lower() == ".csv":
            paths += [it.image for it in read_image_text(file)[0]]
        else:
            paths += [line.strip() for line in text_lines(read_text(file)) if line.strip()]
    if not paths:
        raise ConfigError("give image files (or --file with one path per line, or a CSV with an image column)")
    return paths
