"""The voice-translate config: ``stages`` (each stage's data and size, how the time is shared), ``match``
(voice matching and input limits) and ``train`` (``max_time`` is shared out over the stages)."""
from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import ConfigError, TrainConfig, check_choices, check_positive, opt
from rnnkit.modules.world import F0_METHODS


@dataclass
class VoiceStagesConfig:
    """What each stage trains on; every stage is a run of its own task (asr, translate, tts, speech-translate)."""
    asr_data: str = opt("", "English speech manifest for the recogniser (empty = the embedded phrase-book speech, "
                            "held-out sentences and voices left out)")
    mt_data: str = opt("", "English<TAB>French TSV for the translator (empty = the phrase book less the held-out "
                           "sentences)")
    tts_data: str = opt("", "French speech manifest for the synthesiser (empty = its embedded eSpeak NG corpus)")
    asr_count: int = opt(2400, "embedded English utterances for the recogniser (and the direct model)")
    speech_grammar: int = opt(3000, "phrase-grammar sentences among those the embedded English speech says "
                                    "(beside the phrase book's training sentences; 0 = the phrase book only)")
    mt_generated: int = opt(8000, "phrase-grammar sentence pairs added to the translator's phrase-book text "
                                  "(held-out sentences never generated; 0 = the phrase book only)")
    mt_noise: float = opt(0.0, "share of the characters of a third copy of each English sentence dropped, "
                               "replaced or doubled, for a translator that reads a recogniser's errors (0 = no "
                               "such copy; 0.08 lowered the cascade's BLEU in the same time, docs/voice-translation.md)")
    tts_count: int = opt(600, "embedded French utterances for the synthesiser")
    test_fraction: float = opt(0.1, "share of the distinct phrase-book sentences held out for testing")
    shares: str = opt("asr:0.3,mt:0.15,tts:0.4,direct:0.15", "how --max-time is shared out over the stages")
    direct: bool = opt(True, "also train the direct speech-translate model (for `rnnkit compare voice-translate`)")
    asr_hidden: int = opt(128, "recogniser: hidden units per direction")
    mt_hidden: int = opt(128, "translator: hidden units")
    tts_preset: str = opt("fr", "synthesiser: preset of the tts task", ("fr", "tiny"))
    data_seed: int = opt(0, "seed of the embedded parallel speech and of its sentence split")

    def __post_init__(self) -> None:
        check_positive("asr_count", self.asr_count)
        check_positive("tts_count", self.tts_count)
        for name in ("mt_generated", "speech_grammar"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
        check_positive("asr_hidden", self.asr_hidden)
        check_positive("mt_hidden", self.mt_hidden)
        if not 0.0 <= self.mt_noise < 0.5:
            raise ConfigError(f"mt_noise must be in [0, 0.5), got {self.mt_noise!r}")
        if not 0.0 < self.test_fraction < 0.5:
            raise ConfigError(f"test_fraction must be in (0, 0.5), got {self.test_fraction!r}")
        self.share_of("asr")  # parses and checks

    def share_of(self, stage: str) -> float:
        """The share of the time budget for ``stage`` (asr, mt, tts, direct), the shares normalised to 1."""
        shares = {}
        for item in self.shares.split(","):
            name, _, value = item.partition(":")
            try:
                shares[name.strip()] = float(value)
            except ValueError:
                raise ConfigError(f"shares must read like 'asr:0.3,mt:0.15,tts:0.4,direct:0.15', got {self.shares!r}")
        unknown = set(shares) - {"asr", "mt", "tts", "direct"}
        if unknown or any(v < 0 for v in shares.values()) or not {"asr", "mt", "tts"} <= set(shares):
            raise ConfigError(f"shares must give asr, mt and tts (and optionally direct) non-negative values, "
                              f"got {self.shares!r}")
        used = {k: v for k, v in shares.items() if k != "direct" or self.direct}
        total = sum(used.values())
        if total <= 0:
            raise ConfigError(f"shares must not all be 0, got {self.shares!r}")
        return used.get(stage, 0.0) / total


@dataclass
class VoiceMatchConfig:
    """Voice matching and what the cascade accepts."""
    warp: bool = opt(True, "warp the synthesiser's spectral envelope onto the speaker's vocal tract length")
    max_seconds: float = opt(20.0, "longer input is split at pauses into pieces of at most this (never cut)")
    beam: int = opt(5, "beam of the translation stage")
    confidence: float = opt(0.3, "a given --transcript whose per-character likelihood under the recogniser is "
                                 "below this share of the recogniser's own reading is reported as not matching")
    asr_beam: int = opt(4, "CTC prefix beam of the recogniser (1 = greedy); with a language model (the bundle's "
                           "`lm` run or --lm RUN) fused into it. On the 153 held-out utterances the cascade's BLEU "
                           "was 33.8 greedy, 35.7 at beam 8, 43.4 at beam 4 and 43.0 at beam 8 with the bundle's "
                           "7-gram; beam 4 costs ~60 ms per 3 s utterance, beam 8 ~110-170 (docs/voice-translation.md)")
    asr_lm_weight: float = opt(0.5, "weight of the language model's log-probability in the recogniser's beam search")
    asr_insertion_bonus: float = opt(1.0, "score per character the recogniser's beam search writes (offsets the "
                                          "language model's cost)")
    synth_f0: str = opt("harvest", "F0 estimator of the synthesised speech and of the output (the input's is always "
                                   "Harvest): harvest, or dio (DIO + StoneMask, ~25x faster)", F0_METHODS)
    synth_f0_rate: int = opt(4000, "Hz: the synthesised speech's F0 is estimated on it resampled to this rate (0 = "
                                   "its own): Harvest costs half at 4 kHz. The input's F0 is always estimated at full "
                                   "rate: on a high held-out voice 4 kHz read 5 of 26 medians 0.5 st or more away "
                                   "from the full rate's, one an octave (docs/voice-translation.md)")

    input_f0_rate: int = opt(0, "Hz: the input's F0 is estimated on it resampled to this rate (0 = full rate, the "
                                "judge's): 4000 takes ~0.25 s off a 3 s input, but reads a voice Harvest finds "
                                "ambiguous differently (docs/voice-translation.md)")

    def __post_init__(self) -> None:
        check_choices(self)
        check_positive("max_seconds", self.max_seconds)
        check_positive("input_f0_rate", self.input_f0_rate, allow_zero=True)
        check_positive("beam", self.beam)
        check_positive("asr_beam", self.asr_beam)
        check_positive("asr_lm_weight", self.asr_lm_weight, allow_zero=True)
        check_positive("synth_f0_rate", self.synth_f0_rate, allow_zero=True)
        if not 0.0 <= self.confidence <= 1.0:
            raise ConfigError(f"confidence must be in [0, 1], got {self.confidence!r}")


@dataclass
class VoiceTranslateRunConfig:
    stages: VoiceStagesConfig = field(default_factory=VoiceStagesConfig)
    match: VoiceMatchConfig = field(default_factory=VoiceMatchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


TRAIN_DEFAULTS = {"train": {"max_time": 1800.0, "progress": "plain"}}
