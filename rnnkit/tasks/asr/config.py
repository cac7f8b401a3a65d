"""The asr task's run config: ``model``, ``data`` (with features and augmentation), ``decode`` and ``train``.

The audio feature and augmentation settings of ``data`` become a
:class:`~rnnkit.modules.audio_features.FeatureConfig` (:func:`feature_config`), which is saved in the
checkpoint with the rest of the resolved config.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import ConfigError, TrainConfig, cell_names, check_choices, check_fraction, check_positive, opt
from rnnkit.metrics.asr import NORMALIZERS
from rnnkit.modules.audio_features import FEATURE_KINDS, MEL_SCALES, FeatureConfig

EMBEDDED_SETS = ("digit_strings", "sentences", "mixed")  # what `rnnkit train asr` speaks without --data
DECODERS = ("ctc", "attention")
ATTENTIONS = ("dot", "general", "bahdanau")
HEADS = ("auto", "ctc", "attention")


@dataclass
class ASRModelConfig:
    """Frame stacking -> optional pyramidal BiRNN -> stacked bidirectional recurrent layer -> CTC head, and with
    ``decoder=attention`` an attention decoder over the same encoder (Listen, Attend and Spell, Chan et al. 2016)
    trained with the joint loss ``ctc_weight * CTC + (1 - ctc_weight) * cross-entropy`` (Kim et al. 2017)."""
    cell: str = opt("lstm", "recurrent cell", cell_names)
    hidden: int = opt(128, "hidden units per direction")
    layers: int = opt(2, "stacked bidirectional layers (after the pyramid)")
    stack_frames: int = opt(3, "concatenate this many consecutive feature frames (subsampling)")
    pyramid_layers: int = opt(0, "pyramidal BiRNN layers before the encoder, each halving time")
    dropout: float = opt(0.1, "dropout between layers and before the output")
    zero_infinity: bool = opt(False, "zero the loss of utterances too short for their transcript "
                                     "instead of stopping with their names")
    engine: str = opt("auto", "recurrent engine (auto, reference, or a named engine)")
    decoder: str = opt("ctc", "output: ctc (per-frame labels) or attention (Listen, Attend and Spell: an "
                              "attention LSTM/GRU decoder over the encoder, with the CTC head as auxiliary loss)",
                       DECODERS)
    ctc_weight: float = opt(0.3, "decoder=attention: weight of the CTC loss in the joint loss (0 = attention only)")
    decoder_hidden: int = opt(128, "decoder=attention: hidden units of the decoder")
    decoder_embedding: int = opt(32, "decoder=attention: character embedding size of the decoder")
    attention: str = opt("general", "decoder=attention: attention scorer", ATTENTIONS)

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("hidden", "layers", "stack_frames", "decoder_hidden", "decoder_embedding"):
            check_positive(name, getattr(self, name))
        check_positive("pyramid_layers", self.pyramid_layers, allow_zero=True)
        check_fraction("dropout", self.dropout)
        if not 0.0 <= self.ctc_weight < 1.0:
            raise ConfigError(f"ctc_weight must be in [0, 1) (the attention loss keeps the rest), "
                              f"got {self.ctc_weight!r}")


@dataclass
class ASRDataConfig:
    """Where the audio comes from, how transcripts become labels and audio becomes features."""
    data: str = opt("", "speech manifest: NeMo JSONL, CSV/TSV with audio,text columns, a LibriSpeech folder "
                        "(empty = the embedded eSpeak NG set)")
    val_data: str = opt("", "validation manifest (empty = a random val_fraction of the training data)")
    test_data: str = opt("", "test manifest (empty = held-out voices for the embedded set, else a random "
                             "test_fraction of --data)")
    dataset: str = opt("digit_strings", "embedded set spoken by eSpeak NG without --data", EMBEDDED_SETS)
    count: int = opt(800, "embedded set: training + validation utterances (training voices)")
    test_count: int = opt(100, "embedded set: test utterances (held-out voices)")
    val_fraction: float = opt(0.1, "share of the training utterances held out for validation")
    test_fraction: float = opt(0.1, "share of --data held out for testing (without --test-data)")
    skip_bad: bool = opt(False, "skip bad manifest entries and unreadable audio (counted) instead of stopping")
    normalizer: str = opt("basic", "transcript normaliser before labelling and scoring (basic: casefold, "
                                   "punctuation removed; none: whitespace only)", tuple(NORMALIZERS))
    sample_rate: int = opt(16000, "audio is resampled to this rate (Hz)")
    features: str = opt("logmel", "log-mel filterbanks or MFCCs", FEATURE_KINDS)
    n_mels: int = opt(40, "mel filters")
    n_mfcc: int = opt(13, "cepstral coefficients kept (features=mfcc)")
    deltas: int = opt(0, "append deltas (1) and delta-deltas (2)")
    mel_scale: str = opt("htk", "mel scale", MEL_SCALES)
    freq_masks: int = opt(0, "SpecAugment: frequency masks per training utterance")
    freq_mask_width: int = opt(8, "SpecAugment: widest frequency mask (filters)")
    time_masks: int = opt(0, "SpecAugment: time masks per training utterance")
    time_mask_width: int = opt(20, "SpecAugment: widest time mask (frames)")
    speed: str = opt("", "speed perturbation factors drawn per training utterance, e.g. '0.9,1.0,1.1' "
                         "(empty = off)")
    noise_snr_db: float = opt(0.0, "add white noise to training audio at an SNR drawn up to this (dB, 0 = off)")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("count", "test_count", "sample_rate", "n_mels", "n_mfcc"):
            check_positive(name, getattr(self, name))
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ConfigError(f"{name} must be in [0, 0.5), got {getattr(self, name)!r}")
        if self.noise_snr_db < 0:
            raise ConfigError(f"noise_snr_db must be >= 0 (0 = off), got {self.noise_snr_db!r}")
        self.speed_factors  # parses and checks the factors
        try:
            self.feature_config()
        except ValueError as err:
            raise ConfigError(f"data: {err}") from err

    @property
    def speed_factors(self) -> tuple[float, ...]:
        if not self.speed.strip():
            return ()
        try:
            factors = tuple(float(s) for s in self.speed.split(","))
        except ValueError:
            raise ConfigError(f"speed must be comma-separated numbers such as '0.9,1.0,1.1', got {self.speed!r}")
        if any(not 0.5 <= f <= 2.0 for f in factors):
            raise ConfigError(f"speed factors must lie in [0.5, 2], got {self.speed!r}")
        return factors

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(sample_rate=self.sample_rate, n_mels=self.n_mels, mel_scale=self.mel_scale,
                             kind=self.features, n_mfcc=self.n_mfcc, deltas=self.deltas,
                             freq_masks=self.freq_masks, freq_mask_width=self.freq_mask_width,
                             time_masks=self.time_masks, time_mask_width=self.time_mask_width,
                             speed_factors=self.speed_factors,
                             noise_snr_db=self.noise_snr_db if self.noise_snr_db > 0 else None)


@dataclass
class ASRDecodeConfig:
    """How transcripts are decoded from the CTC outputs (evaluate, predict, transcribe)."""
    beam: int = opt(1, "CTC prefix beam width (1 = greedy)")
    lm: str = opt("", "language-model run (`rnnkit train lm`, character tokens; an RNN or --model markov) "
                      "for shallow fusion in the beam search (empty = none)")
    lm_weight: float = opt(0.5, "weight alpha of the LM log-probability in the fused score")
    insertion_bonus: float = opt(1.0, "beta: score added per emitted character (offsets the LM's cost)")
    head: str = opt("auto", "which output decodes: ctc, attention (a run trained with --decoder attention), or "
                            "auto (attention when the run has an attention decoder)", HEADS)

    def __post_init__(self) -> None:
        check_choices(self)
        check_positive("beam", self.beam)
        check_positive("lm_weight", self.lm_weight, allow_zero=True)


@dataclass
class ASRRunConfig:
    model: ASRModelConfig = field(default_factory=ASRModelConfig)
    data: ASRDataConfig = field(default_factory=ASRDataConfig)
    decode: ASRDecodeConfig = field(default_factory=ASRDecodeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


TRAIN_DEFAULTS = {"train": {"epochs": 30, "batch_size": 16, "lr": 3e-3, "warmup_steps": 20, "patience": 5,
                            "weight_decay": 0.0, "clip_norm": 5.0, "monitor": "val_loss", "log_every": 20}}
