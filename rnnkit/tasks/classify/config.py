"""The classify task's run config: ``model``, ``data`` and the generic ``train`` section."""
from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from rnnkit.config import ConfigError, TrainConfig, cell_names, opt
from rnnkit.data.embedded_tasks import CLASSIFY_SETS
from rnnkit.modules.audio_features import FEATURE_KINDS, FeatureConfig
from rnnkit.modules.char_words import CHAR_MODELS
from rnnkit.modules.encoders import ENCODERS, POOLINGS

TEXT_UNITS = ("word", "char", "bpe", "unigram")
SPOKEN_DIGITS = "spoken-digits"   # eSpeak NG isolated digits, held-out voices for test
DATASETS = CLASSIFY_SETS + (SPOKEN_DIGITS,)


@dataclass
class ClassifyModelConfig:
    model: str = opt("rnn", "encoder: recurrent (rnn), time-delay network (tdnn) or per-step MLP (mlp)", ENCODERS)
    cell: str = opt("lstm", "recurrent cell (model=rnn)", cell_names)
    hidden: int = opt(128, "hidden units per layer (per direction)")
    layers: int = opt(1, "stacked recurrent layers")
    bidirectional: bool = opt(True, "run a second layer right to left")
    embedding: int = opt(64, "token embedding size, or projection size of numeric steps (0 = raw features)")
    pooling: str = opt("auto", "sequence summary fed to the classifier (auto: last for rnn, max-over-time for "
                       "tdnn, mean for mlp; concat: last, max and mean side by side)", ("auto",) + POOLINGS)
    dropout: float = opt(0.2, "dropout on embeddings, between layers and before the classifier")
    embed_dropout: float = opt(0.0, "text: drop whole words (rows of the embedding matrix) while training")
    locked_dropout: float = opt(0.0, "model=rnn: one dropout mask per sequence on each layer's input")
    weight_drop: float = opt(0.0, "model=rnn: DropConnect on the hidden-to-hidden weights (AWD-LSTM)")
    char_hidden: int = opt(0, "text, --tokenizer word: character features of each word (2 x char_hidden) beside its "
                              "embedding, so unseen words keep their spelling (0 = none; no effect on numeric or "
                              "audio examples)")
    char_model: str = opt("cnn", "character features: max-pooled convolution (cnn) or bidirectional recurrent (rnn)",
                          CHAR_MODELS)
    nbsvm: int = opt(2, "text: an NBSVM over word 1..N-grams (Wang & Manning 2012) fitted on the training split, "
                        "its scores added to the network's logits with a weight (and a class bias) chosen on the "
                        "validation split (Mesnil et al. 2015; 0 = off; no effect on numeric or audio examples)")
    nbsvm_chars: int = opt(5, "text, with --nbsvm: a second NBSVM over the character 2..N-grams of each word (the "
                              "word padded with a space each side), so unseen words keep their spelling; its "
                              "scores get a weight of their own (0 = off)")
    window: int = opt(3, "TDNN: steps each filter sees (odd)")
    class_weights: str = opt("none", "weight the loss by inverse class frequency", ("none", "balanced"))
    engine: str = opt("auto", "recurrent engine (auto, reference, or a named engine)")

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.embedding < 0 or self.char_hidden < 0:
            raise ConfigError(f"embedding and char_hidden must be >= 0, got {self.embedding}, {self.char_hidden}")
        for name in ("dropout", "embed_dropout", "locked_dropout", "weight_drop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.nbsvm <= 3:
            raise ConfigError(f"nbsvm is the largest n-gram order of the NBSVM, 0 (off) to 3, got {self.nbsvm}")
        if self.nbsvm_chars and not 2 <= self.nbsvm_chars <= 6:
            raise ConfigError(f"nbsvm_chars is the longest character n-gram of the second NBSVM, 0 (off) or 2 to 6, "
                              f"got {self.nbsvm_chars}")
        if self.window % 2 == 0:
            raise ConfigError(f"window must be odd, got {self.window}")
        for name, choices in (("model", ENCODERS), ("pooling", ("auto",) + POOLINGS), ("cell", cell_names()),
                              ("class_weights", ("none", "balanced")), ("char_model", CHAR_MODELS)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {', '.join(choices)}")


@dataclass
class ClassifyDataConfig:
    data: str = opt("", "CSV / TSV / JSONL file or a folder per class (empty = embedded --dataset)")
    dataset: str = opt("digits", "embedded set used without --data (spoken-digits: synthesised speech)", DATASETS)
    val_data: str = opt("", "validation file (empty = a random val_fraction of --data)")
    test_data: str = opt("", "test file (empty = a random test_fraction of --data)")
    encoding: str = opt("utf-8", "text encoding of the --data, --val-data and --test-data files (e.g. cp1252 for "
                        "files saved on Windows, as the MR sentence polarity files are)")
    text_column: str = opt("text", "column with the text or numeric sequence")
    label_column: str = opt("label", "column with the class label")
    input: str = opt("auto", "what the examples are (audio: an 'audio' column of sound files, or a folder of them)",
                     ("auto", "text", "numeric", "audio"))
    label_pattern: str = opt("", "audio folder: labels from file names, e.g. '{label}_{speaker}_{index}.wav' "
                                 "(empty = one sub-folder per class)")
    skip_bad: bool = opt(False, "skip (and count) missing or unreadable audio files instead of stopping")
    features: str = opt("logmel", "audio frames: log-mel filterbank or MFCC", FEATURE_KINDS)
    sample_rate: int = opt(16000, "audio is resampled to this rate (Hz)")
    n_mels: int = opt(40, "mel filters per frame")
    n_mfcc: int = opt(13, "cepstral coefficients kept (features=mfcc)")
    deltas: int = opt(0, "append deltas (1) or deltas and delta-deltas (2) to each frame")
    freq_masks: int = opt(0, "SpecAugment: frequency bands masked per training clip")
    time_masks: int = opt(0, "SpecAugment: time spans masked per training clip")
    tokenizer: str = opt("word", "text units: words, characters, or subwords learnt on the training texts (bpe, "
                         "unigram; unseen words still split into known pieces)", TEXT_UNITS)
    lowercase: bool = opt(True, "lower-case text before tokenising")
    min_freq: int = opt(1, "tokens seen fewer times in training become <unk>")
    max_vocab: int = opt(30000, "largest vocabulary (0 = no limit)")
    max_len: int = opt(0, "truncate sequences to this many steps (0 = no limit)")
    val_fraction: float = opt(0.1, "share of the examples held out for validation")
    test_fraction: float = opt(0.1, "share of the examples held out for testing")
    folds: int = opt(0, "k-fold cross-validation: the test split is fold --fold of this many (0 = off)")
    fold: int = opt(0, "with --folds: which fold (0 .. folds-1) is the test split")

    def __post_init__(self) -> None:
        if self.folds == 1 or self.folds < 0:
            raise ConfigError(f"folds must be 0 (off) or >= 2, got {self.folds}")
        if self.folds and not 0 <= self.fold < self.folds:
            raise ConfigError(f"fold must be in 0 .. {self.folds - 1} with folds={self.folds}, got {self.fold}")
        if self.folds and self.test_data:
            raise ConfigError("folds and test_data exclude each other: cross-validation picks its own test folds")
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ConfigError(f"{name} must be in [0, 0.5), got {getattr(self, name)}")
        for name in ("min_freq",):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_vocab < 0 or self.max_len < 0:
            raise ConfigError("max_vocab and max_len must be >= 0")
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset={self.dataset!r} is not one of {', '.join(DATASETS)}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(f"encoding={self.encoding!r} is not a text encoding Python knows (e.g. utf-8, "
                              "cp1252, latin-1)") from None
        try:
            self.feature_config()
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def feature_config(self) -> FeatureConfig:
        """The audio feature pipeline these options describe (SpecAugment masks included)."""
        return FeatureConfig(sample_rate=self.sample_rate, n_fft=self.sample_rate // 40,
                             hop_length=self.sample_rate // 100, n_mels=self.n_mels, kind=self.features,
                             n_mfcc=self.n_mfcc, deltas=self.deltas, freq_masks=self.freq_masks,
                             time_masks=self.time_masks)


@dataclass
class ClassifyPretrainConfig:
    """Transfer learning for text (ULMFiT, Howard & Ruder 2018): the embedding and recurrent encoder are first
    trained as a language model, then the classifier is fine-tuned from them (see docs/classify.md)."""
    pretrain_epochs: int = opt(0, "text, model=rnn: epochs of language-model pretraining of the embedding and "
                                  "encoder on the training texts (and --unlabelled) before the classifier trains "
                                  "(0 = off)")
    pretrain_lr: float = opt(3e-3, "peak learning rate of the language-model pretraining (slanted triangular)")
    unlabelled: str = opt("", "UTF-8 text file, one text per line, added to the pretraining texts and the "
                              "vocabulary (needs --pretrain-epochs)")
    init_from: str = opt("", "an `rnnkit train lm` run whose embedding and recurrent layers start the encoder: "
                             "its vocabulary, cell and sizes are used (flags that disagree are an error)")

    def __post_init__(self) -> None:
        if self.pretrain_epochs < 0:
            raise ConfigError(f"pretrain_epochs must be >= 0, got {self.pretrain_epochs}")
        if not self.pretrain_lr > 0:
            raise ConfigError(f"pretrain_lr must be positive, got {self.pretrain_lr}")
        if self.unlabelled and not self.pretrain_epochs:
            raise ConfigError("unlabelled text is read by the pretraining only: give --pretrain-epochs N (N > 0) "
                              "with --unlabelled")

    @property
    def active(self) -> bool:
        return bool(self.pretrain_epochs or self.init_from)


@dataclass
class ClassifyRunConfig:
    model: ClassifyModelConfig = field(default_factory=ClassifyModelConfig)
    data: ClassifyDataConfig = field(default_factory=ClassifyDataConfig)
    pretrain: ClassifyPretrainConfig = field(default_factory=ClassifyPretrainConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


TRAIN_DEFAULTS = {"train": {"epochs": 15, "batch_size": 32, "lr": 3e-3, "warmup_steps": 0, "patience": 4,
                            "monitor": "val_accuracy", "monitor_mode": "max", "log_every": 50}}


def upgrade_config(saved: dict) -> dict:
    """A saved run's config with the settings it predates set to what it was trained with: runs saved before
    ``nbsvm`` existed have no NBSVM expert, those saved before ``nbsvm_chars`` no character n-gram one."""
    model = dict(saved.get("model") or {})
    model.setdefault("nbsvm", 0)
    model.setdefault("nbsvm_chars", 0)
    return {**saved, "model": model}
