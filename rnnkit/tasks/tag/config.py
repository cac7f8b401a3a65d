"""The tag task's run config: ``model``, ``data`` and the generic ``train`` section."""
from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import ConfigError, TrainConfig, cell_names, opt
from rnnkit.data.embedded_tasks import TAG_SETS
from rnnkit.modules.char_words import CHAR_MODELS
from rnnkit.modules.encoders import ENCODERS

EMBEDDINGS_VOCABS = ("train", "file")


@dataclass
class TagModelConfig:
    model: str = opt("rnn", "encoder: bidirectional recurrent (rnn), time-delay (tdnn) or per-token MLP", ENCODERS)
    cell: str = opt("lstm", "recurrent cell (model=rnn)", cell_names)
    hidden: int = opt(128, "hidden units per direction")
    layers: int = opt(1, "stacked recurrent layers")
    embedding: int = opt(64, "word embedding size")
    char_hidden: int = opt(25, "character-level features per word: 2 x char_hidden (0 = none)")
    char_model: str = opt("rnn", "character features: bidirectional recurrent (rnn) or max-pooled convolution (cnn)",
                          CHAR_MODELS)
    output: str = opt("crf", "output layer", ("softmax", "crf"))
    dropout: float = opt(0.3, "dropout on the token features and before the output")
    word_dropout: float = opt(0.05, "training: chance that a word is replaced by <unk>")
    rare_word_dropout: float = opt(0.0, "training: chance that a word seen once in training is replaced by <unk> "
                                        "(teaches <unk> what new names look like; Lample et al. 2016)")
    embeddings: str = opt("", "pretrained word vectors that start the word embedding: a word2vec / GloVe / fastText "
                               "text file (.vec / .txt, optionally .gz); the run saves the weights, not the file")
    embeddings_vocab: str = opt("train", "the word embedding's words: the training data's (train), or those and "
                                         "the vector file's (file: words never seen in training keep their "
                                         "pretrained vector instead of becoming <unk>)", EMBEDDINGS_VOCABS)
    embeddings_limit: int = opt(0, "read only the first N vectors of --embeddings (the most frequent; 0 = all)")
    freeze_embeddings: bool = opt(False, "keep the pretrained vectors fixed in training (words without one, and "
                                         "<unk>, still learn)")
    window: int = opt(3, "TDNN: tokens each filter sees (odd)")
    engine: str = opt("auto", "recurrent engine (auto, reference, or a named engine)")

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "embedding", "window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.embeddings_limit < 0:
            raise ConfigError(f"embeddings_limit must be >= 0 (0 = all), got {self.embeddings_limit}")
        if not self.embeddings:
            for name, off in (("embeddings_vocab", "train"), ("embeddings_limit", 0), ("freeze_embeddings", False)):
                if getattr(self, name) != off:
                    raise ConfigError(f"{name}={getattr(self, name)!r} needs a vector file (--embeddings FILE)")
        if self.char_hidden < 0:
            raise ConfigError(f"char_hidden must be >= 0, got {self.char_hidden}")
        for name in ("dropout", "word_dropout", "rare_word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.window % 2 == 0:
            raise ConfigError(f"window must be odd, got {self.window}")
        for name, choices in (("model", ENCODERS), ("output", ("softmax", "crf")), ("char_model", CHAR_MODELS),
                              ("embeddings_vocab", EMBEDDINGS_VOCABS),
                              ("cell", cell_names())):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {', '.join(choices)}")


@dataclass
class TagDataConfig:
    data: str = opt("", "CoNLL / JSONL file, or a folder with train / dev / test files (empty = embedded)")
    dataset: str = opt("ner", "embedded set used without --data", TAG_SETS)
    val_data: str = opt("", "validation file (empty = dev file of the folder, or val_fraction of the data)")
    test_data: str = opt("", "test file (empty = test file of the folder, or test_fraction of the data)")
    tag_column: int = opt(-1, "CoNLL column holding the tag (0 is the token; -1 = last)")
    scheme: str = opt("auto", "tag encoding to train with (auto: bio for entity tags, none for e.g. POS)",
                      ("auto", "bio", "bioes", "none"))
    min_freq: int = opt(1, "words seen fewer times become <unk>")
    val_fraction: float = opt(0.1, "share held out for validation when there is no dev file")
    test_fraction: float = opt(0.1, "share held out for testing when there is no test file")

    def __post_init__(self) -> None:
        if self.min_freq < 1:
            raise ConfigError(f"min_freq must be >= 1, got {self.min_freq}")
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ConfigError(f"{name} must be in [0, 0.5), got {getattr(self, name)}")
        if self.tag_column == 0:
            raise ConfigError("tag_column 0 is the token column")


@dataclass
class TagRunConfig:
    model: TagModelConfig = field(default_factory=TagModelConfig)
    data: TagDataConfig = field(default_factory=TagDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


TRAIN_DEFAULTS = {"train": {"epochs": 20, "batch_size": 16, "lr": 3e-3, "warmup_steps": 0, "patience": 4,
                            "monitor": "val_f1", "monitor_mode": "max", "clip_norm": 5.0, "log_every": 50}}
