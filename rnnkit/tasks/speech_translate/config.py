"""The speech-translate run config: ``model``, ``data``, ``decode`` and ``train``."""
from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import ConfigError, TrainConfig, cell_names, check_choices, check_fraction, check_positive, opt
from rnnkit.modules.audio_features import FeatureConfig


@dataclass
class SpeechTranslateModelConfig:
    """Acoustic encoder (frame stacking, pyramidal and stacked bidirectional layers) -> attention decoder."""
    cell: str = opt("lstm", "recurrent cell of encoder and decoder", cell_names)
    hidden: int = opt(128, "encoder hidden units per direction")
    layers: int = opt(2, "stacked bidirectional encoder layers (after the pyramid)")
    stack_frames: int = opt(2, "concatenate this many consecutive feature frames (subsampling)")
    pyramid_layers: int = opt(1, "pyramidal BiRNN layers, each halving time (Listen, Attend and Spell)")
    decoder_hidden: int = opt(128, "decoder hidden units")
    decoder_layers: int = opt(1, "stacked decoder layers")
    embedding: int = opt(64, "target word embedding size")
    attention: str = opt("general", "attention scorer", ("dot", "general", "bahdanau"))
    dropout: float = opt(0.1, "dropout between layers, on embeddings and on the attentional vector")
    ctc_weight: float = opt(0.3, "weight of an auxiliary CTC loss on the English transcript over the encoder "
                                 "(multi-task, as Weiss et al.'s recognition decoder; 0 = off)")
    label_smoothing: float = opt(0.1, "label smoothing of the translation loss")
    engine: str = opt("auto", "recurrent engine of the encoder (auto, reference, or a named engine)")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("hidden", "layers", "stack_frames", "decoder_hidden", "decoder_layers", "embedding"):
            check_positive(name, getattr(self, name))
        check_positive("pyramid_layers", self.pyramid_layers, allow_zero=True)
        check_positive("ctc_weight", self.ctc_weight, allow_zero=True)
        check_fraction("dropout", self.dropout)
        check_fraction("label_smoothing", self.label_smoothing)


@dataclass
class SpeechTranslateDataConfig:
    data: str = opt("", "manifest (JSONL, CSV or TSV) with audio, text (English) and translation (French) "
                        "columns (empty = the embedded eSpeak NG phrase book)")
    test_data: str = opt("", "test manifest (empty = the manifest's split column, else held-out sentences)")
    count: int = opt(1200, "embedded set: training utterances (training voices)")
    grammar: int = opt(0, "embedded set: phrase-grammar sentences added to the phrase book's training sentences")
    test_fraction: float = opt(0.1, "share of the distinct English sentences held out for testing")
    val_fraction: float = opt(0.1, "share of the training utterances held out for validation")
    split_seed: int = opt(0, "seed of the sentence split and of the embedded set")
    lowercase: bool = opt(True, "lower-case the French side")
    sample_rate: int = opt(16000, "audio is resampled to this rate (Hz)")
    n_mels: int = opt(40, "log-mel filters")

    def __post_init__(self) -> None:
        check_positive("count", self.count)
        if not isinstance(self.grammar, int) or self.grammar < 0:
            raise ConfigError(f"grammar must be an integer >= 0, got {self.grammar!r}")
        check_positive("sample_rate", self.sample_rate)
        check_positive("n_mels", self.n_mels)
        for name in ("test_fraction", "val_fraction"):
            if not 0.0 < getattr(self, name) < 0.5:
                raise ConfigError(f"{name} must be in (0, 0.5), got {getattr(self, name)!r}")

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(sample_rate=self.sample_rate, n_mels=self.n_mels)


@dataclass
class SpeechTranslateDecodeConfig:
    beam: int = opt(5, "beam size (1 = greedy)")
    max_len: int = opt(40, "longest translation in tokens (</s> included)")
    length_penalty: float = opt(0.6, "GNMT length penalty alpha (0 = none)")

    def __post_init__(self) -> None:
        check_positive("beam", self.beam)
        check_positive("max_len", self.max_len)
        check_positive("length_penalty", self.length_penalty, allow_zero=True)


@dataclass
class SpeechTranslateRunConfig:
    model: SpeechTranslateModelConfig = field(default_factory=SpeechTranslateModelConfig)
    data: SpeechTranslateDataConfig = field(default_factory=SpeechTranslateDataConfig)
    decode: SpeechTranslateDecodeConfig = field(default_factory=SpeechTranslateDecodeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


TRAIN_DEFAULTS = {"train": {"epochs": 40, "batch_size": 16, "lr": 2e-3, "warmup_steps": 20, "patience": 6,
                            "weight_decay": 0.0, "clip_norm": 5.0, "monitor": "val_loss", "log_every": 20}}
