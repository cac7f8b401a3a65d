"""The language-model task's run config: ``model`` (:class:`LMModelConfig`), ``data``
(:class:`LMDataConfig`) and the generic ``train`` section (:class:`~rnnkit.config.TrainConfig`)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable

from rnnkit.config import ConfigError, TrainConfig, check_choices, check_fraction, check_positive, cell_names, opt
from rnnkit.engines.cpp.lstm import FUSED_INPUT_MIN_ROWS
from rnnkit.engines.policy import FUSED_MAX_HIDDEN, FUSED_MIN_STEPS

LM_MODELS = ("rnn", "markov")
MAX_ORDER = 10  # n-gram tables beyond this are all-but-empty on any corpus rnnkit trains on


@dataclass
class LMModelConfig:
    """Language model: embedding -> stacked recurrent layer -> projection, or an n-gram baseline."""
    model: str = opt("rnn", "recurrent network (rnn) or interpolated Kneser-Ney n-gram Markov model (markov)",
                     LM_MODELS)
    order: int = opt(5, "model=markov: n-gram order, i.e. each token is predicted from the order-1 before it")
    discount: float = opt(0.75, "model=markov: Kneser-Ney absolute discount, in (0, 1)")
    cell: str = opt("lstm", "recurrent cell", cell_names)
    hidden: int = opt(256, "hidden units per layer")
    layers: int = opt(2, "stacked recurrent layers")
    embedding: int = opt(0, "embedding size (0 = hidden)")
    dropout: float = opt(0.2, "dropout on embeddings, between layers and before the output")
    variational_dropout: float = opt(0.0, "same dropout mask at every time step on layer inputs")
    recurrent_dropout: float = opt(0.0, "dropout on the recurrent state (same mask per sequence)")
    dropconnect: float = opt(0.0, "DropConnect on the recurrent weights (AWD-LSTM)")
    zoneout: float = opt(0.0, "zoneout probability on the recurrent state")
    tie_weights: bool = opt(True, "share input embedding and output projection (needs embedding == hidden)")
    engine: str = opt("auto", "recurrent engine (auto, reference, or a named engine)")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("hidden", "layers"):
            check_positive(name, getattr(self, name))
        if isinstance(self.order, bool) or not isinstance(self.order, int) or not 1 <= self.order <= MAX_ORDER:
            raise ConfigError(f"order must be an integer from 1 to {MAX_ORDER} (n-gram order of model=markov), "
                              f"got {self.order!r}")
        if not 0.0 < self.discount < 1.0:
            raise ConfigError(f"discount must be in (0, 1), got {self.discount!r}")
        check_positive("embedding", self.embedding, allow_zero=True)
        for name in ("dropout", "variational_dropout", "recurrent_dropout", "dropconnect", "zoneout"):
            check_fraction(name, getattr(self, name))
        if self.tie_weights and self.embedding not in (0, self.hidden):
            raise ConfigError(f"tie_weights needs embedding == hidden ({self.hidden}), "
                              f"got embedding={self.embedding}; set tie_weights: false")

    @property
    def embedding_size(self) -> int:
        return self.embedding or self.hidden


@dataclass
class LMDataConfig:
    """Where the text comes from and how it becomes tokens."""
    data: str = opt("", "training text: a UTF-8 file or a directory of .txt files (empty = embedded corpus)")
    val_data: str = opt("", "validation text (empty = the last val_fraction of the training text)")
    val_fraction: float = opt(0.1, "share of the text held out for validation (its end)")
    tokenizer: str = opt("char", "vocabulary", ("char", "word", "subword"))
    vocab_size: int = opt(8000, "largest vocabulary for word / subword tokenizers")
    min_freq: int = opt(1, "tokens seen fewer times become <unk> (char / word)")
    max_chars: int = opt(0, "use only the first N characters of the corpus (0 = all)")
    max_carry: int = opt(16384, "training: reset each stream's recurrent state at least every N tokens (whole "
                               "--bptt chunks), staggered across the streams so every update holds states of "
                               "every age (0 = carry it through each stream's whole share of the text)")

    def __post_init__(self) -> None:
        check_choices(self)
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError(f"val_fraction must be in (0, 0.5), got {self.val_fraction!r}")
        check_positive("vocab_size", self.vocab_size)
        check_positive("min_freq", self.min_freq)
        check_positive("max_chars", self.max_chars, allow_zero=True)
        check_positive("max_carry", self.max_carry, allow_zero=True)


#: settings a run saved before they existed gets when resumed: the values that reproduce how it was trained
#: (its state was carried through each stream's whole share of the text).
LEGACY_DATA = {"max_carry": 0}


def upgrade_config(saved: dict) -> dict:
    """A saved run config with the data settings it predates filled in as :data:`LEGACY_DATA`."""
    data = saved.get("data", {})
    return {**saved, "data": {**{k: v for k, v in LEGACY_DATA.items() if k not in data}, **data}}


#: what `rnnkit train lm` starts from (``LMTask.train_defaults``) over the config classes' defaults: a model
#: and training sized for `rnnkit train lm --data FILE --max-time 900` on one CPU core (docs/lm.md, "A corpus
#: of plays"): a 2 x 384 LSTM over a 128-wide untied embedding (a third cheaper per character than a
#: 384-wide input), 32 streams x 128 steps per update, AdamW at 3e-3 decaying to 1e-5. The presets state
#: their own model settings in full.
TRAIN_DEFAULTS = {"model": {"hidden": 384, "layers": 2, "embedding": 128, "tie_weights": False, "dropout": 0.1},
                  "train": {"batch_size": 32, "bptt": 128, "lr": 3e-3, "min_lr": 1e-5, "warmup_steps": 100}}


@dataclass
class LMRunConfig:
    """Everything `rnnkit train lm` needs; saved resolved in each checkpoint."""
    model: LMModelConfig = field(default_factory=LMModelConfig)
    data: LMDataConfig = field(default_factory=LMDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


#: what a CPU with bfloat16 instructions trains an LSTM language model in unless the user chose a precision:
#: autocast, under which the cpp engine runs the whole-sequence products in bfloat16 and the recurrence in
#: float32 (``rnnkit.engines.cpp.lstm``); 1.53x the updates per CPU-second of float32 for the 2 x 384 defaults
#: (docs/lm.md, "Session 15")
CPU_BF16 = {"train": {"precision": "bf16"}}


def cpu_bf16_default(cfg: LMRunConfig, given: Iterable[tuple[str, str]] = (), *, on_cpu: bool,
                     bf16: bool) -> LMRunConfig:
    """``cfg`` with :data:`CPU_BF16` when the run trains a recurrent LSTM language model on a CPU that computes
    bfloat16 in hardware (``bf16``), in the shapes where the engine policy puts it on the cpp loop with
    bfloat16 products (row 'lstm-bf16-products': at least FUSED_INPUT_MIN_ROWS streams, bptt >= FUSED_MIN_STEPS,
    hidden <= FUSED_MAX_HIDDEN; elsewhere torch's LSTM would run every step in bfloat16), and no precision is the
    user's (``given``: the (section, field) pairs set by a flag or a --config file); otherwise ``cfg`` unchanged."""
    m, t = cfg.model, cfg.train
    if (not on_cpu or not bf16 or m.model != "rnn" or m.cell != "lstm" or ("train", "precision") in set(given)
            or t.batch_size < FUSED_INPUT_MIN_ROWS or t.bptt < FUSED_MIN_STEPS or m.hidden > FUSED_MAX_HIDDEN):
        return cfg
    return replace(cfg, train=replace(cfg.train, **CPU_BF16["train"]))


def epochs_follow_budget(cfg: LMRunConfig, given: Iterable[tuple[str, str]] = ()) -> LMRunConfig:
    """With a time budget (``--max-time``) and no epoch count of the user's (a flag or a --config key; a
    preset's is not the user's), the run has no epoch limit: it trains until the budget is spent
    (``epochs: 0``), its cosine decay ending there (:mod:`rnnkit.train.budget`)."""
    if cfg.train.max_time and cfg.train.epochs and ("train", "epochs") not in set(given):
        return replace(cfg, train=replace(cfg.train, epochs=0))
    return cfg
