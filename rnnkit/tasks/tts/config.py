"""The tts task's run config: ``model`` (the Tacotron 2 family network and its losses), ``data`` (text,
audio and mel frames), ``synth`` (how waveforms are made) and ``train``."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from rnnkit.config import ConfigError, TrainConfig, cell_names, check_choices, check_fraction, check_positive, opt
from rnnkit.data.speech_text import LANGUAGES
from rnnkit.modules.audio_features import FeatureConfig
from rnnkit.modules.tacotron import TacotronConfig
from rnnkit.modules.vocoder import VOCODERS, VocoderConfig

SYMBOLS = ("chars", "phonemes")
#: the eSpeak NG voice of the embedded corpus of each language (``--voice`` picks another)
DEFAULT_VOICES = {"en": "en-us", "fr": "fr"}


@dataclass
class TTSModelConfig:
    """Character (or phoneme) embedding -> conv + bidirectional encoder -> location-sensitive attention ->
    autoregressive decoder of ``reduction`` frames per step with a stop token -> post-net."""
    cell: str = opt("lstm", "recurrent cell of the encoder, attention and decoder cells", cell_names)
    embedding: int = opt(128, "symbol embedding and encoder convolution channels")
    encoder_hidden: int = opt(64, "encoder units per direction")
    attention_size: int = opt(64, "attention energy size")
    prenet: int = opt(96, "prenet width")
    attention_hidden: int = opt(192, "attention cell units")
    decoder_hidden: int = opt(192, "decoder cell units")
    reduction: int = opt(3, "mel frames predicted per decoder step")
    postnet_channels: int = opt(96, "post-net channels")
    postnet_layers: int = opt(5, "post-net convolutions")
    dropout: float = opt(0.5, "dropout of the encoder and post-net convolutions")
    prenet_dropout: float = opt(0.5, "prenet dropout (on in training and synthesis, as in Tacotron 2)")
    scheduled_sampling: float = opt(0.0, "training: chance per step that the prenet reads the model's own last "
                                         "frame instead of the recording's (0 = teacher forcing only)")
    guided_attention: float = opt(2.0, "weight of the guided-attention loss (0 = off)")
    guided_sigma: float = opt(0.2, "width of the guided-attention diagonal band")
    stop_weight: float = opt(5.0, "positive-class weight of the stop-token loss (one stop step per utterance)")
    engine: str = opt("auto", "recurrent engine of the encoder (auto, reference, or a named engine)")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("embedding", "encoder_hidden", "attention_size", "prenet", "attention_hidden",
                     "decoder_hidden", "reduction", "postnet_channels", "postnet_layers", "guided_sigma",
                     "stop_weight"):
            check_positive(name, getattr(self, name))
        check_positive("guided_attention", self.guided_attention, allow_zero=True)
        check_fraction("dropout", self.dropout)
        check_fraction("prenet_dropout", self.prenet_dropout)
        check_fraction("scheduled_sampling", self.scheduled_sampling, upper_open=False)
        if self.reduction > 8:
            raise ConfigError(f"reduction must be 1-8 frames per decoder step, got {self.reduction}")

    def tacotron(self, vocab_size: int, n_mels: int, pad_id: int) -> TacotronConfig:
        return TacotronConfig(vocab_size=vocab_size, n_mels=n_mels, embedding=self.embedding,
                              encoder_hidden=self.encoder_hidden, attention_size=self.attention_size,
                              prenet=self.prenet, attention_hidden=self.attention_hidden,
                              decoder_hidden=self.decoder_hidden, reduction=self.reduction,
                              postnet_channels=self.postnet_channels, postnet_layers=self.postnet_layers,
                              cell=self.cell, dropout=self.dropout, prenet_dropout=self.prenet_dropout,
                              scheduled_sampling=self.scheduled_sampling, pad_id=pad_id, engine=self.engine)


@dataclass
class TTSDataConfig:
    """Where text and audio come from, how text becomes symbols and audio becomes mel frames."""
    data: str = opt("", "speech manifest (NeMo JSONL, CSV/TSV with audio,text) or an LJSpeech folder "
                        "(metadata.csv + wavs/); empty = the embedded eSpeak NG corpus of --lang")
    val_data: str = opt("", "validation manifest (empty = a random val_fraction of the training data)")
    test_data: str = opt("", "test manifest (empty = a random test_fraction of the data)")
    lang: str = opt("en", "language of the text front end (numbers, abbreviations) and of the embedded corpus",
                    LANGUAGES)
    voice: str = opt("", "eSpeak NG voice of the embedded corpus (empty = en-us for en, fr for fr)")
    count: int = opt(600, "embedded corpus: utterances (phrase book sentences first, then generated ones)")
    grammar: int = opt(0, "embedded corpus: also this many phrase-grammar sentences (more varied words), read by "
                          "the same voice, in the training split only (never a validation or test sentence; the "
                          "held-out splits are those of --count alone)")
    val_fraction: float = opt(0.05, "share of the utterances held out for validation")
    test_fraction: float = opt(0.05, "share of the utterances held out for testing (without --test-data)")
    symbols: str = opt("chars", "model input: characters of the normalised text, or eSpeak NG IPA phonemes",
                       SYMBOLS)
    max_chars: int = opt(150, "longest text read at once; longer text is split into sentences, then clauses")
    max_seconds: float = opt(15.0, "training utterances longer than this are an error (or skipped with "
                                   "skip_bad)")
    skip_bad: bool = opt(False, "skip bad manifest entries and unreadable or too long audio (counted)")
    sample_rate: int = opt(16000, "audio is resampled to this rate (Hz)")
    n_fft: int = opt(1024, "STFT size")
    hop_length: int = opt(256, "STFT hop (samples per mel frame)")
    n_mels: int = opt(80, "mel bins")
    trim_db: float = opt(40.0, "leading and trailing frames this far below the loudest are trimmed (0 = off)")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("count", "max_chars", "max_seconds", "sample_rate", "n_fft", "hop_length", "n_mels"):
            check_positive(name, getattr(self, name))
        check_positive("trim_db", self.trim_db, allow_zero=True)
        check_positive("grammar", self.grammar, allow_zero=True)
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ConfigError(f"{name} must be in [0, 0.5), got {getattr(self, name)!r}")
        try:
            self.features()
        except ValueError as err:
            raise ConfigError(f"data: {err}") from err

    def without_unused_grammar(self, explicit: bool) -> tuple["TTSDataConfig", str | None]:
        """(config, note): phrase-grammar sentences are added to the embedded corpus only. With ``data``, a
        ``grammar`` the user set (``explicit``) is an error; one that came with a preset is set to 0, with a note
        saying so (the run's saved config then says what it trained on)."""
        if not (self.data and self.grammar):
            return self, None
        if explicit:
            raise ConfigError(f"grammar={self.grammar} adds sentences to the embedded corpus only; with "
                              f"data={self.data!r} leave it out (put more sentences in the manifest instead)")
        return replace(self, grammar=0), (f"grammar {self.grammar} (from the preset) adds to the embedded corpus "
                                          f"only: not used with data={self.data!r}")

    @property
    def resolved_voice(self) -> str:
        return self.voice or DEFAULT_VOICES[self.lang]

    def features(self) -> FeatureConfig:
        return FeatureConfig(sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length,
                             n_mels=self.n_mels, mel_scale="slaney", log_floor=1e-5)


@dataclass
class TTSSynthConfig:
    """How text becomes a waveform at synthesis (``rnnkit speak``, evaluate, predict)."""
    vocoder: str = opt("griffin_lim", "waveform generator: Griffin-Lim, or WORLD re-synthesis of it", VOCODERS)
    iterations: int = opt(32, "Griffin-Lim iterations")
    gl_momentum: float = opt(0.99, "fast Griffin-Lim momentum (0 = the original algorithm)")
    sharpen: float = opt(1.0, "exponent on the Griffin-Lim magnitudes (> 1 deepens valleys; 1.3 cost a recogniser "
                              "26 points of CER in copy synthesis, docs/tts.md)")
    contrast: float = opt(1.0, "scale of each mel band's deviation from its utterance mean before vocoding "
                               "(a global-variance postfilter against over-smoothing; 1 = none)")
    stop_threshold: float = opt(0.5, "stop-token probability that ends a sentence")
    max_frames_per_symbol: float = opt(12.0, "decoder frame limit per input symbol (a sentence that reaches it "
                                             "is reported as not stopped)")
    pause: float = opt(0.25, "silence between sentences (seconds)")

    def __post_init__(self) -> None:
        check_choices(self)
        check_positive("iterations", self.iterations)
        check_positive("sharpen", self.sharpen)
        if not 0.5 <= self.contrast <= 3.0:
            raise ConfigError(f"contrast must be in [0.5, 3], got {self.contrast!r}")
        if not 0.0 <= self.gl_momentum < 1.0:
            raise ConfigError(f"gl_momentum must be in [0, 1), got {self.gl_momentum!r}")
        check_positive("max_frames_per_symbol", self.max_frames_per_symbol)
        check_positive("pause", self.pause, allow_zero=True)
        if not 0.0 < self.stop_threshold < 1.0:
            raise ConfigError(f"stop_threshold must be in (0, 1), got {self.stop_threshold!r}")

    def vocoder_config(self, method: str | None = None) -> VocoderConfig:
        return VocoderConfig(method=method or self.vocoder, iterations=self.iterations, momentum=self.gl_momentum,
                             sharpen=self.sharpen, contrast=self.contrast)


@dataclass
class TTSRunConfig:
    model: TTSModelConfig = field(default_factory=TTSModelConfig)
    data: TTSDataConfig = field(default_factory=TTSDataConfig)
    synth: TTSSynthConfig = field(default_factory=TTSSynthConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


#: ``best`` is the checkpoint with the lowest validation mel loss (``val_mel``: L1 before + after the post-net).
#: The full ``val_loss`` adds the stop-token BCE, which rises as training goes on (en preset: 0.04 at update
#: 6,086, 0.17 at 13,463, while the mel loss fell from 0.474 to 0.463) and so picked early checkpoints that
#: are heard worse (18.2% against 16.5% CER; docs/tts.md, "Which checkpoint is best").
TRAIN_DEFAULTS = {"train": {"epochs": 60, "batch_size": 16, "lr": 2e-3, "warmup_steps": 50, "patience": 0,
                            "weight_decay": 1e-6, "clip_norm": 1.0, "monitor": "val_mel", "log_every": 20,
                            "threads": 1}}
