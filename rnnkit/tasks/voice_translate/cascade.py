"""The voice-translation cascade: recognise (or take the given transcript), translate, synthesise, match the voice.

::

    in.wav --read, mono, resampled--> wave --split at pauses (pieces <= max_seconds)-->
        each piece: recogniser run (CTC: greedy, or beam + LM) -> English text  (or --transcript)
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
from rnnkit.modules.voice import (VoiceError, VoiceMatch, check_speech, estimate_warp, f0_stats, match_voice,
                                  split_at_pauses)
from rnnkit.modules.world import WorldAnalysis, analyze_with_f0

from .config import VoiceMatchConfig

PIECE_PAUSE_S = 0.3    # silence between the synthesised pieces of a split input
#: ``synthesize(loaded_tts, text) -> (wave float32 (N,), sample_rate)``, the tts task's function
Synthesize = Callable[..., tuple]


@dataclass
class Stages:
    """The loaded runs of the cascade (``asr`` may be None when every call gives a transcript). ``decode``: the
    recogniser's decoding, frame scores (T', V) -> label ids (the asr task's ``decoder``: beam search with a
    language model fused); None = greedy."""
    asr: Any
    mt: Any
    tts: Any
    synthesize: Synthesize
    runs: dict = field(default_factory=dict)      # stage -> run directory, for the report
    decode: Callable[[torch.Tensor], list] | None = None
    decoding: str = "greedy"                      # how ``decode`` reads, for the report


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
    times: dict                                # stage -> wall seconds; "cpu": stage -> CPU seconds;
                                               # "cpu_share": stage -> its share of the total CPU seconds
    match: VoiceMatch | None
    output_warp: float                         # the output's envelope against the input's (1.0 = depth kept)
    output_f0: dict | None                     # None when the output has no voiced frame (warned)
    contours: dict = field(default_factory=dict)  # "input", "output": F0 (T,) Hz, 5 ms frames (the analyses')
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
def recognize(rec, wave: np.ndarray, decode: Callable[[torch.Tensor], list] | None = None) -> Heard:
    """The recogniser run's reading of a waveform at its sample rate: greedy, or by ``decode`` (frame scores
    (T', V) -> label ids). ``nll_per_char`` is the CTC likelihood of that reading."""
    feats, lengths = rec.extractor(torch.from_numpy(np.asarray(wave, dtype=np.float32)))   # (1, T, F), (1,)
    out = rec.model({"feats": feats, "lengths": lengths})
    logits = out.logits[0, : int(out.lengths[0])].float()                                   # (T', V)
    ids = greedy_decode(logits[None], out.lengths[:1])[0] if decode is None else decode(logits)
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
    """``fn(*args, **kw)``, its wall time added to ``times[stage]`` and its CPU time (this process, all
    threads) to ``times["cpu"][stage]``: on a busy machine the CPU time is what one idle thread would take."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    times[stage] = times.get(stage, 0.0) + time.perf_counter() - t0
    cpu = times.setdefault("cpu", {})
    cpu[stage] = cpu.get(stage, 0.0) + time.process_time() - c0
    return out


@dataclass
class English:
    texts: list                    # one per piece (recognised) or the one given transcript
    source: str                    # "recogniser" or "given"
    confidence: float | None       # of a given transcript under the recogniser
    warnings: list


def english_of(stages: Stages, wave: np.ndarray, sample_rate: int, pieces: list, transcript: str | None,
               cfg: VoiceMatchConfig, times: dict, what: str) -> English:
    """What the audio says: the recogniser's reading of each piece, or the given transcript (checked against
    the recogniser's frames when there is a recogniser)."""
    if transcript is not None and not transcript.strip():
        raise ConfigError("--transcript is empty; give the text the audio says, or leave it out")
    if transcript is None and stages.asr is None:
        raise ConfigError("no recogniser run: give --asr RUN (or a bundle with one), or --transcript TEXT")
    heard = []
    if stages.asr is not None:
        rate = stages.asr.model.features.sample_rate
        # a given transcript is only checked against the recogniser's frames: its greedy reading is the reference
        # the confidence was defined on, and the beam search with the language model would cost 60-170 ms more
        decode = stages.decode if transcript is None else None
        heard = [_timed(times, "recognition", recognize, stages.asr, resample(wave[a:b], sample_rate, rate),
                        decode) for a, b in pieces]
    if transcript is None:
        if not any(h.text for h in heard):
            raise ConfigError(f"{what}: the recogniser heard no words (is it English speech?)")
        return English([h.text for h in heard], "recogniser", None, [])
    if not heard:
        return English([transcript.strip()], "given", None, [])
    text = " ".join(h.text for h in heard)
    logits = torch.cat([h.logits for h in heard])                                       # (T', V)
    whole = Heard(text, _ctc_nll(logits, stages.asr.tokenizer.encode(text)) if text else 0.0, logits)
    confidence = transcript_confidence(stages.asr, whole, transcript)
    warnings = [] if confidence >= cfg.confidence else [
        f"the transcript does not seem to match the audio: the recogniser heard {text!r} (confidence in the "
        f"transcript {confidence:.2f} < {cfg.confidence})"]
    return English([transcript.strip()], "given", confidence, warnings)


def french_speech(stages: Stages, french: list, rate: int, times: dict) -> np.ndarray:
    """The synthesiser's speech of each French text at ``rate``, pieces joined by PIECE_PAUSE_S of silence."""
    waves = []
    for k, text in enumerate(t for t in french if t):
        if k:
            waves.append(np.zeros(int(PIECE_PAUSE_S * rate), np.float32))
        synth, synth_rate = _timed(times, "synthesis", stages.synthesize, stages.tts, text)
        waves.append(resample(synth, synth_rate, rate))
    return np.concatenate(waves)


def translate_voice(stages: Stages, wave: np.ndarray, sample_rate: int, cfg: VoiceMatchConfig, *,
                    transcript: str | None = None, what: str = "input audio") -> Translation:
    """Translate a mono waveform (N,) at ``sample_rate`` into French speech in the speaker's voice.

    ``times`` holds every stage up to the measured output: input_analysis (Harvest, CheapTrick, D4C of the
    speaker, and the bad-input checks), recognition, translation, synthesis, voice_matching (the synthesised
    speech's analysis, the warp search, mapping, WORLD synthesis, loudness) and output_analysis (the output's
    envelope, against the input's, for the report; its F0 is the contour it was synthesised on)."""
    times: dict = {}
    t_all, c_all = time.perf_counter(), time.process_time()
    rate = stages.tts.sample_rate
    speaker = resample(wave, sample_rate, rate)
    speaker_analysis = _timed(times, "input_analysis", check_speech, speaker, rate, what, f0_rate=cfg.input_f0_rate)
    pieces = split_at_pauses(wave, sample_rate, cfg.max_seconds, what=what)
    english = english_of(stages, wave, sample_rate, pieces, transcript, cfg, times, what)
    french = [_timed(times, "translation", stages.mt.translate, [t], beam=cfg.beam)[0][0].text if t else ""
              for t in english.texts]
    if not any(french):
        raise ConfigError(f"{what}: the translator produced no French for {' '.join(english.texts)!r} (is its run "
                          "trained?)")
    matched = _timed(times, "voice_matching", match_voice, french_speech(stages, french, rate, times), speaker,
                     rate, speaker_analysis=speaker_analysis, warp=cfg.warp, synth_f0=cfg.synth_f0,
                     synth_f0_rate=cfg.synth_f0_rate)
    # the output's F0 is the contour WORLD synthesised it on (not estimated again: Harvest would cost as much as the
    # input's analysis; bench/voice_translation.py checks it against Harvest); its envelope is measured
    out_analysis = _timed(times, "output_analysis", analyze_with_f0, matched.wave, rate, matched.f0,
                          aperiodicity=False)
    output_warp = _timed(times, "output_analysis", estimate_warp, speaker_analysis, out_analysis)
    times["total"] = time.perf_counter() - t_all
    times["cpu"]["total"] = time.process_time() - c_all
    times["cpu_share"] = {k: round(v / max(times["cpu"]["total"], 1e-9), 3) for k, v in times["cpu"].items()
                          if k != "total"}
    times["cpu"] = {k: round(v, 4) for k, v in times["cpu"].items()}
    spans = [(round(a / sample_rate, 3), round(b / sample_rate, 3)) for a, b in pieces]
    texts = zip(english.texts, french) if english.source == "recogniser" else [("", "")] * len(spans)
    return Translation(matched.wave, rate, " ".join(t for t in english.texts if t), " ".join(t for t in french if t),
                       english.source, {k: v if isinstance(v, dict) else round(v, 4) for k, v in times.items()},
                       matched, output_warp, output_f0(out_analysis, english.warnings),
                       {"input": speaker_analysis.f0, "output": out_analysis.f0},
                       [(a, b, en, fr) for (a, b), (en, fr) in zip(spans, texts)], english.warnings, english.confidence)


def output_f0(out: WorldAnalysis, warnings: list) -> dict | None:
    """F0 statistics of the output, or None (with a warning) when none of its frames is voiced."""
    try:
        return f0_stats(out.f0, "the output").to_dict()
    except VoiceError as err:
        warnings.append(f"{err} (the synthesiser's speech is not voiced enough to carry the speaker's pitch)")
        return None
