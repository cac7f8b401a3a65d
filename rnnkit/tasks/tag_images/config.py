"""The image-tagging task's run config: ``model`` (:class:`TagModelConfig`: the shared image model plus the
head), ``data`` (:class:`~rnnkit.tasks.vision.ImageDataConfig`) and the generic ``train`` section."""
from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import ConfigError, TrainConfig, check_choices, check_positive, opt
from rnnkit.tasks.vision import ImageDataConfig, ImageModelConfig

HEADS = ("rnn", "sigmoid")


@dataclass
class TagModelConfig(ImageModelConfig):
    """The CNN encoder and either a recurrent decoder emitting the tags in order of frequency (rnn) or a
    sigmoid per tag over the mean-pooled features (sigmoid)."""
    head: str = opt("rnn", "tags as a sequence by the recurrent decoder (CNN-RNN) or a sigmoid per tag", HEADS)
    threshold: float = opt(0.5, "sigmoid head: a tag is predicted when its probability is above this")
    max_tags: int = opt(12, "rnn head: the most tags emitted per image")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choices(self)
        check_positive("max_tags", self.max_tags)
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold!r}")


@dataclass
class TagRunConfig:
    """Everything `rnnkit train tag-images` needs; saved resolved in each checkpoint."""
    model: TagModelConfig = field(default_factory=TagModelConfig)
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


TRAIN_DEFAULTS = {"train": {"epochs": 15, "batch_size": 32, "lr": 2e-3, "optimizer": "adam", "weight_decay": 0.0,
                            "schedule": "constant", "warmup_steps": 20, "clip_norm": 5.0, "patience": 4,
                            "log_every": 20}}
