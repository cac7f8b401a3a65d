"""The captioning task's run config: ``model`` (:class:`~rnnkit.tasks.vision.ImageModelConfig`), ``data``
(:class:`~rnnkit.tasks.vision.ImageDataConfig`), ``decode`` (:class:`CaptionDecodeConfig`) and the generic
``train`` section."""
from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import ConfigError, TrainConfig, check_choices, check_positive, opt
from rnnkit.metrics.captioning import METEOR_MODES
from rnnkit.tasks.vision import ImageDataConfig, ImageModelConfig


@dataclass
class CaptionDecodeConfig:
    """How captions are generated at evaluation and captioning time."""
    beam: int = opt(5, "beam size (1 = greedy)")
    length_penalty: float = opt(1.0, "length normalisation: rank by log p / ((5 + len) / 6) ** alpha (0 = none)")
    max_len: int = opt(30, "longest caption generated, in words (</s> included)")
    meteor: str = opt("auto", "METEOR in the test scores: when java is found (auto), required (on) or "
                              "skipped (off)", METEOR_MODES)

    def __post_init__(self) -> None:
        check_choices(self)
        check_positive("beam", self.beam)
        check_positive("max_len", self.max_len)
        if not self.length_penalty >= 0:
            raise ConfigError(f"length_penalty must be >= 0, got {self.length_penalty!r}")


@dataclass
class CaptionRunConfig:
    """Everything `rnnkit train caption` needs; saved resolved in each checkpoint."""
    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    decode: CaptionDecodeConfig = field(default_factory=CaptionDecodeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# Adam at a constant rate after a short warm-up (as the Show, Attend and Tell recipes), best checkpoint on
# the validation loss; a batch is 32 images with all their captions
TRAIN_DEFAULTS = {"train": {"epochs": 20, "batch_size": 32, "lr": 2e-3, "optimizer": "adam", "weight_decay": 0.0,
                            "schedule": "constant", "warmup_steps": 20, "clip_norm": 5.0, "patience": 4,
                            "log_every": 20}}
