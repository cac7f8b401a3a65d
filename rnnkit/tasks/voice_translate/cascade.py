"""The voice-translation cascade: recognise (or take the given transcript), translate, synthesise, match the voice.

::

    in.wav --read, mono, resampled--> wave --split at pauses (pieces <= max_seconds)-->
        each piece: recogniser run (CTC, greedy)            -> English text     (or --transcript)
                    translation run (beam search)            -> French text
                    synthesiser run (synthesize)             -> French speech
        the pieces' speech joined -> voice matching on the whole input (F0 statistics, envelope warp,
        loudness; rnnkit.modules.voice) -> out wave

Each stage is a loaded run of another task, handed in (:class:`Stages`); this module reads them through
their attributes only: the recogniser's ``model``, ``extractor``, ``tokenizer``, ``symbols`` and ``config``;
the translator's ``translate``; the synthesiser through the ``synthesize`` function the registry hands over.

A transcript given with the audio is checked against the recogniser: its per-character CTC likelihood over
the recogniser's own reading, ``exp(-(nll_given - nll_heard))`` (1 when they agree), below
``match.confidence`` adds a warning to the report (the transcript is still used: the user knows the text).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from rnnkit.config import ConfigError
from rnnkit.data.audio import resample
from rnnkit.metrics.asr import NORMALIZERS
from rnnkit.modules.ctc import greedy_decode
from rnnkit.modules.voice import VoiceMatch, check_speech, estimate_warp, f0_stats, match_voice, split_at_pauses
from rnnkit.modules.world import analyze

from .config import VoiceMatchConfig

PIECE_PAUSE_S = 0.3    # silence between the synthesised pieces of a split input
#: ``synthesize(loaded_tts, text) -> (wave float32 (N,), sample_rate)``, the tts task's function
Synthesize = Callable[..., tuple]


@dataclass
class Stages:
    """The loaded runs of the cascade (``asr`` may be None when every call gives a transcript)."""
    asr: Any
    mt: Any
    tts: Any
    synthesize: Synthesize
    runs: dict = field(default_factory=dict)      # stage -> run directory, for the report


@dataclass
class Heard:
    text: str
    nll_per_char: float          # the recogniser's own reading: CTC negative log-likelihood per character
    logits: torch.Tensor         # (T', V)


@dataclass
class Translation:
    """What the cascade produced for one input, and what it measured."""
    wave: np.ndarray
    sample_rate: int
    english: str
    french: str
    transcript_source: str                     # "recogniser" or "given"
    times: dict                                # stage -> seconds
    match: VoiceMatch | None
    output_warp: float                         # the output's envelope against the input's (1.0 = depth kept)
    output_f0: dict
    pieces: list = field(default_factory=list)  # [(start_s, end_s, english, french)]
    warnings: list = field(default_factory=list)
    confidence: float | None = None            # of a given transcript


# -------------------------------------------------------------- recognition

def _ctc_nll(logits: torch.Tensor, labels: list[int]) -> float:
    """Per-character CTC negative log-likelihood of ``labels`` under frame scores (T', V)."""
    if not labels:
        return float("inf")
    logp = torch.log_softmax(logits.double(), -1)[:, None]                     # (T', 1, V)
    loss = F.ctc_loss(logp, torch.tensor([labels]), torch.tensor([logp.shape[0]]), torch.tensor([len(labels)]),
                      blank=0, reduction="sum", zero_infinity=False)
    return float(loss) / len(labels)


@torch.no_grad()
def recognize(rec, wave: np.ndarray) -> Heard:
    """The recogniser run's greedy reading of a waveform at its sample rate."""
    feats, lengths = rec.extractor(torch.from_numpy(np.asarray(wave, dtype=np.float32)))   # (1, T, F), (1,)
    out = rec.model({"feats": feats, "lengths": lengths})
    logits = out.logits[0, : int(out.lengths[0])].float()                                   # (T', V)
    ids = greedy_decode(logits[None], out.lengths[:1])[0]
    text = rec.text(ids).strip()
    return Heard(text, _ctc_nll(logits, ids), logits)


def transcript_confidence(rec, heard: Heard, transcript: str) -> float:
    """How well ``transcript`` fits the audio relative to the recogniser's own reading (0..1)."""
    normalised = NORMALIZERS[rec.config.data.normalizer](transcript)
    labels = rec.tokenizer.encode(normalised)
    nll = _ctc_nll(heard.logits, labels)
    if not np.isfinite(nll):
        return 0.0
    return float(np.exp(-max(0.0, nll - heard.nll_per_char)))


# ---------------------------------------------------------------- cascade

def _timed(times: dict, stage: str, fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    times[stage] = times.get(stage, 0.0) + time.perf_counter() - t0
    return out


def translate_voice(stages: Stages, wave: np.ndarray, sample_rate: int, cfg: VoiceMatchConfig, *,
                    transcript: str | None = None, what: str = "input audio") -> Translation:
    """Translate a mono waveform (N,) at ``sample_rate`` into French speech in the speaker's voice."""
    times: dict = {}
    t_all = time.perf_counter()
    tts_rate = stages.tts.sample_rate
    speaker = resample(wave, sample_rate, tts_rate)
    speaker_analysis = _timed(times, "voice_matching", check_speech, speaker, tts_rate, what)
    pieces = split_at_pauses(wave, sample_rate, cfg.max_seconds, what=what)
    if transcript is not None and not transcript.strip():
        raise ConfigError("--transcript is empty; give the text the audio says, or leave it out")
    if transcript is None and stages.asr is None:
        raise ConfigError("no recogniser run: give --asr RUN (or a bundle with one), or --transcript TEXT")
    warnings, confidence, english = [], None, []
    asr_rate = stages.asr.model.features.sample_rate if stages.asr is not None else sample_rate
    heard_all = []
    if stages.asr is not None:
        for start, end in pieces:
            piece = resample(wave[start:end], sample_rate, asr_rate)
            heard_all.append(_timed(times, "recognition", recognize, stages.asr, piece))
    if transcript is None:
        english = [h.text for h in heard_all]
        if not any(english):
            raise ConfigError(f"{what}: the recogniser heard no words (is it English speech?)")
        source = "recogniser"
    else:
        english, source = [transcript.strip()], "given"
        if heard_all:
            heard = Heard(" ".join(h.text for h in heard_all), 0.0, torch.cat([h.logits for h in heard_all]))
            heard.nll_per_char = _ctc_nll(heard.logits, stages.asr.tokenizer.encode(heard.text)) if heard.text else 0.0
            confidence = transcript_confidence(stages.asr, heard, transcript)
            if confidence < cfg.confidence:
                warnings.append(f"the transcript does not seem to match the audio: the recogniser heard "
                                f"{heard.text!r} (confidence in the transcript {confidence:.2f} < {cfg.confidence})")
    french = []
    for text in english:
        if not text:
            french.append("")
            continue
        result = _timed(times, "translation", stages.mt.translate, [text], beam=cfg.beam)
        french.append(result[0][0].text)
    if not any(french):
        raise ConfigError(f"{what}: the translator produced no French for {' '.join(english)!r} (is its run "
                          "trained?)")
    waves = []
    for k, text in enumerate(t for t in french if t):
        if k:
            waves.append(np.zeros(int(PIECE_PAUSE_S * tts_rate), np.float32))
        synth, rate = _timed(times, "synthesis", stages.synthesize, stages.tts, text)
        waves.append(resample(synth, rate, tts_rate))
    synth = np.concatenate(waves)
    matched = _timed(times, "voice_matching", match_voice, synth, speaker, tts_rate,
                     speaker_analysis=speaker_analysis, warp=cfg.warp)
    times["total"] = time.perf_counter() - t_all
    out_analysis = analyze(matched.wave, tts_rate)
    out_f0 = f0_stats(out_analysis.f0, "the output").to_dict()
    spans = [(round(s / sample_rate, 3), round(e / sample_rate, 3)) for s, e in pieces]
    return Translation(matched.wave, tts_rate, " ".join(t for t in english if t), " ".join(t for t in french if t),
                       source, {k: round(v, 4) for k, v in times.items()}, matched,
                       estimate_warp(speaker_analysis, out_analysis), out_f0,
                       [(s, e, en, fr) for (s, e), en, fr in zip(spans, english, french)] if source == "recogniser"
                       else [(s, e, "", "") for s, e in spans], warnings, confidence)
