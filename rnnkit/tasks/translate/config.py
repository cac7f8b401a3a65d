"""Typed configuration of sequence-to-sequence runs (translation, the dates task).

The sections follow :mod:`rnnkit.config`: ``model`` (:class:`Seq2SeqModelConfig`), ``data``
(:class:`PairDataConfig`), ``decode`` (:class:`DecodeConfig`) and ``train`` (the shared
:class:`~rnnkit.config.TrainConfig`); the CLI flags are generated from these fields and the
resolved :class:`TranslateRunConfig` is stored in every checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import ConfigError, TrainConfig, cell_names, check_choices, from_dict, merge, opt, to_dict

ATTENTIONS = ("bahdanau", "dot", "general", "none")
BRIDGES = ("dense", "zero")
SCHEDULES = ("constant", "linear", "exponential", "inverse_sigmoid")
TOKENIZERS = ("char", "word", "bpe", "unigram")
NORMALIZATIONS = ("none", "NFC", "NFKC", "NFD", "NFKD")
EMBEDDING_INITS = ("unit", "scaled")


def _int_at_least(obj, low: int, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def _unit(obj, *names: str, closed: bool = False) -> None:
    for name in names:
        value = getattr(obj, name)
        ok = isinstance(value, (int, float)) and (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0)
        if not ok:
            raise ConfigError(f"{name} must be in [0, 1{']' if closed else ')'}, got {value!r}")


@dataclass
class Seq2SeqModelConfig:
    """Encoder-decoder with attention (Bahdanau et al. 2015; Luong et al. 2015)."""
    cell: str = opt("lstm", "recurrent cell of encoder and decoder", cell_names)
    embedding: int = opt(256, "source and target embedding size")
    hidden: int = opt(256, "hidden units per layer (encoder: per direction)")
    encoder_layers: int = opt(2, "stacked encoder layers")
    decoder_layers: int = opt(2, "stacked decoder layers")
    bidirectional: bool = opt(True, "bidirectional encoder")
    attention: str = opt("general", "attention: bahdanau (additive), dot or general (Luong), none", ATTENTIONS)
    attention_size: int = opt(0, "hidden size of additive attention (0 = hidden)")
    input_feed: bool = opt(True, "feed the previous attentional vector into the decoder input (Luong)")
    bridge: str = opt("dense", "decoder initial state: dense map of the encoder's final state, or zeros",
                      BRIDGES)
    dropout: float = opt(0.2, "dropout on embeddings, between layers and on the attentional vector")
    tie_embeddings: bool = opt(True, "share the target embedding with the output projection")
    embedding_init: str = opt("unit", "embedding initialisation: unit = torch's N(0, 1); scaled = N(0, 1/embedding) "
                                      "as fairseq (tied to the output layer, unit rows give a first loss far above "
                                      "log V)", EMBEDDING_INITS)
    label_smoothing: float = opt(0.1, "label smoothing of the training loss")
    teacher_forcing: float = opt(1.0, "probability of feeding the gold previous token (final value "
                                      "when a sampling schedule is set)")
    sampling_schedule: str = opt("constant", "scheduled sampling (Bengio et al. 2015): how the "
                                             "teacher-forcing ratio decays from 1", SCHEDULES)
    sampling_steps: int = opt(10000, "updates over which the scheduled-sampling ratio decays")
    engine: str = opt("auto", "recurrent engine (auto, reference, or a named engine)")

    def __post_init__(self) -> None:
        check_choices(self)
        _int_at_least(self, 1, "embedding", "hidden", "encoder_layers", "decoder_layers", "sampling_steps")
        _int_at_least(self, 0, "attention_size")
        _unit(self, "dropout", "label_smoothing")
        _unit(self, "teacher_forcing", closed=True)
        if self.attention == "none" and self.input_feed:
            raise ConfigError("input_feed needs an attention mechanism (attention=none has no "
                              "attentional vector); set input_feed: false")


@dataclass
class PairDataConfig:
    """Parallel text: where it comes from, how it is filtered, split and tokenised."""
    data: str = opt("", "TSV of source<TAB>target[<TAB>...] pairs (empty = the embedded English-French "
                        "phrase book)")
    source: str = opt("", "source side as a file of lines (with --target, instead of --data)")
    target: str = opt("", "target side as a file of lines aligned with --source")
    reverse: bool = opt(False, "swap the columns: translate the second column into the first")
    bad_lines: str = opt("error", "a line without source<TAB>target: stop with its line number, or "
                                  "skip it with a warning", ("error", "skip"))
    val_fraction: float = opt(0.1, "share of the pairs held out for validation")
    test_fraction: float = opt(0.1, "share of the pairs held out for testing")
    split_seed: int = opt(13, "seed of the train / validation / test split")
    max_source_len: int = opt(50, "drop pairs whose source has more tokens (0 = no limit)")
    max_target_len: int = opt(50, "drop pairs whose target has more tokens (0 = no limit)")
    max_words: int = opt(0, "drop pairs with more whitespace-separated words on either side, before the "
                            "split: every split holds such sentences only (0 = no limit)")
    max_pairs: int = opt(0, "use only the first N pairs (0 = all)")
    tokenizer: str = opt("word", "tokenisation of both sides", TOKENIZERS)
    vocab_size: int = opt(8000, "largest vocabulary per side (word, bpe, unigram)")
    min_freq: int = opt(1, "rarer tokens become <unk> (char, word) or are not merged (bpe)")
    lowercase: bool = opt(False, "lower-case both sides")
    normalize: str = opt("NFC", "Unicode normalisation of both sides", NORMALIZATIONS)

    def __post_init__(self) -> None:
        check_choices(self)
        if self.data and (self.source or self.target):
            raise ConfigError("give either data (a TSV) or source + target (two files), not both")
        if bool(self.source) != bool(self.target):
            raise ConfigError("source and target files go together; give both")
        _unit(self, "val_fraction", "test_fraction")
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ConfigError(f"val_fraction + test_fraction must leave pairs to train on, got "
                              f"{self.val_fraction} + {self.test_fraction}")
        _int_at_least(self, 0, "max_source_len", "max_target_len", "max_words", "max_pairs", "split_seed")
        _int_at_least(self, 1, "vocab_size", "min_freq")


@dataclass
class DecodeConfig:
    """How hypotheses are produced at evaluation and translation time."""
    beam: int = opt(5, "beam size (1 = greedy)")
    nbest: int = opt(1, "hypotheses returned per sentence (<= beam)")
    length_penalty: float = opt(0.6, "GNMT length penalty alpha ((5+len)/6)^alpha (0 = none)")
    max_len_a: float = opt(1.5, "maximum output length = a * source length + b")
    max_len_b: int = opt(10, "maximum output length = a * source length + b")
    batch_size: int = opt(64, "sentences decoded together", cli="decode-batch-size")
    replace_unk: bool = opt(False, "replace each unknown output token by the source token it attends to most")

    def __post_init__(self) -> None:
        _int_at_least(self, 1, "beam", "nbest", "batch_size")
        _int_at_least(self, 0, "max_len_b")
        if self.nbest > self.beam:
            raise ConfigError(f"nbest ({self.nbest}) cannot exceed beam ({self.beam})")
        if not self.length_penalty >= 0:
            raise ConfigError(f"length_penalty must be >= 0, got {self.length_penalty!r}")
        if not self.max_len_a >= 0 or (self.max_len_a == 0 and self.max_len_b == 0):
            raise ConfigError("max_len_a * source length + max_len_b must allow at least one token")


@dataclass
class Seq2SeqTrainConfig(TrainConfig):
    """The shared trainer settings with defaults that suit sentence-pair batches."""
    epochs: int = opt(30, "passes over the training data")
    batch_size: int = opt(64, "sentence pairs per batch")
    warmup_steps: int = opt(50, "linear warm-up updates before the schedule")
    weight_decay: float = opt(0.0, "weight decay (decoupled for AdamW)")
    patience: int = opt(5, "early stopping: evaluations without improvement (0 = off)")
    average: int = opt(0, "at the end, average the weights saved at the last N evaluations; the average "
                          "becomes the best checkpoint when its validation score is better (0 or 1 = off)")

    def __post_init__(self) -> None:
        super().__post_init__()
        _int_at_least(self, 0, "average")


# Settings for a short CPU run, used when --max-time is at most CPU_BUDGET_S on the CPU and the user did not
# set them: the fast decoder path (no input feeding: the decoder layer runs over the whole target at once),
# one GRU layer each side, frequent evaluations to average, BPE subwords, embeddings at N(0, 1/E) (on Tatoeba
# English-German the validation loss after 200 updates was 4.54 with them and 5.75 with N(0, 1)); bf16
# autocast where the CPU has bfloat16 instructions (CPU_BF16: 1.3-1.7x faster updates of this model on one
# thread, the same losses over the first 80 updates to 0.01). Measured in docs/translate.md ("Results").
CPU_BUDGET_S = 3600.0
CPU_BUDGET_PROFILE = {
    "model": {"cell": "gru", "embedding": 256, "hidden": 256, "encoder_layers": 1, "decoder_layers": 1,
              "input_feed": False, "dropout": 0.1, "embedding_init": "scaled"},
    "data": {"tokenizer": "bpe"},
    "train": {"lr": 3e-3, "eval_every": 300, "average": 3, "batch_size": 64},
}
CPU_BF16 = {"train": {"precision": "bf16"}}


@dataclass
class TranslateRunConfig:
    """Everything ``rnnkit train translate`` needs; saved resolved in each checkpoint."""
    model: Seq2SeqModelConfig = field(default_factory=Seq2SeqModelConfig)
    data: PairDataConfig = field(default_factory=PairDataConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    train: Seq2SeqTrainConfig = field(default_factory=Seq2SeqTrainConfig)


def budget_profile(cfg: TranslateRunConfig, given: frozenset = frozenset(), on_cpu: bool = True,
                   bf16: bool = False) -> TranslateRunConfig:
    """``cfg`` with :data:`CPU_BUDGET_PROFILE` (and :data:`CPU_BF16` when ``bf16``: the CPU has bfloat16
    instructions) filled in where the user set nothing (``given``: the (section, field) pairs set on the
    command line or in a --config file), when the run is a short CPU run: ``--max-time`` of at most
    :data:`CPU_BUDGET_S` seconds on the CPU. Otherwise ``cfg`` unchanged."""
    if not on_cpu or not 0 < cfg.train.max_time <= CPU_BUDGET_S:
        return cfg
    profile = merge(CPU_BUDGET_PROFILE, CPU_BF16) if bf16 else CPU_BUDGET_PROFILE
    fill = {section: {k: v for k, v in fields.items() if (section, k) not in given}
            for section, fields in profile.items()}
    return from_dict(TranslateRunConfig, merge(to_dict(cfg), fill))
