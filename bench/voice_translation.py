"""The voice-translation benchmarks: pitch kept, depth kept, understood, latency (docs/voice-translation.md).

Runs the cascade of a bundle (``rnnkit train voice-translate --out BUNDLE``) on the bundle's held-out test set
(held-out sentences spoken by held-out voices, median F0 about 70-240 Hz) and measures, per utterance:

* pitch: the output's median F0 against the input's (semitones) and its spread against the input's (ratio);
* depth: the warping factor estimated on the output against the input (1.0 = the same vocal tract);
* understood: sacreBLEU of the cascade's French text; with ``--fr-asr RUN`` (a French recogniser, `rnnkit train
  asr` on French speech) the CER of its transcripts of the output audio against the French text;
* latency: each stage's time on one CPU thread, for utterances of about ``--latency-seconds``.

``--synth espeak`` replaces the bundle's synthesiser by eSpeak NG's French voice, which measures the voice
matching (pitch, depth) apart from how well the tts run speaks. ``--synth-f0 dio`` has the cascade estimate the
F0 of the synthesised speech and of its output by DIO + StoneMask instead of Harvest. Pitch and depth are judged
on analyses of the input and of the output made here by one reader, ``world.analyze``'s default (Harvest with its
own voicing; compared with other readers on known contours by bench/voice_f0_readers.py), whatever estimator the
cascade used (its own readings of the output are kept beside them, ``report_*``).

    python bench/voice_translation.py BUNDLE [--fr-asr RUN [--fr-beam 4 --fr-lm LM]] [--limit 30]
        [--synth bundle|espeak]
        [--synth-f0 harvest|dio] [--synth-f0-rate HZ] [--input-f0-rate HZ] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from rnnkit.config import ConfigError
from rnnkit.data.audio import read_audio, write_wav
from rnnkit.data.readers import DataError
from rnnkit.data.speech_parallel import read_translation_manifest
from rnnkit.data.speech_synth import synthesize as espeak
from rnnkit.metrics.asr import asr_scores
from rnnkit.metrics.translation import corpus_scores
from rnnkit.modules import world
from rnnkit.modules.voice import VoiceError, estimate_warp, f0_stats
from rnnkit.tasks import TASKS, task_of_run
from rnnkit.tasks.voice_translate.cascade import translate_voice
from rnnkit.tasks.voice_translate.commands import load_stages
from rnnkit.tasks.voice_translate.config import VoiceMatchConfig


def espeak_french(loaded, text):
    return espeak(text, "fr", 160, 50, loaded.sample_rate), loaded.sample_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--fr-asr", default="", help="a French recogniser run, to score the output audio by CER")
    ap.add_argument("--fr-beam", type=int, default=None, help="the French recogniser's beam (default: its run's)")
    ap.add_argument("--fr-lm", default=None, help="a French character LM run fused into that beam search")
    ap.add_argument("--limit", type=int, default=0, help="test utterances used (0 = all): the first, each sentence "
                    "in every held-out voice")
    ap.add_argument("--synth", choices=("bundle", "espeak"), default="bundle")
    ap.add_argument("--tts", default="", help="a tts run to synthesise with instead of the bundle's (--synth bundle)")
    ap.add_argument("--transcript", action="store_true", help="give the true transcript instead of recognising")
    ap.add_argument("--out", default="", help="write the per-utterance rows and the summary as JSON")
    ap.add_argument("--wav-dir", default="", help="where the outputs are written for --fr-asr (default: BUNDLE/bench)")
    ap.add_argument("--latency", default="", metavar="WAV", help="only time the cascade on this file (--repeat times; "
                    "the first run, with its one-off imports, is left out)")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--latency-text", default=ENGLISH_3S, help="what the --latency file says (given with --transcript)")
    ap.add_argument("--synth-f0", choices=world.F0_METHODS, default=VoiceMatchConfig().synth_f0,
                    help="the cascade's F0 estimator for the synthesised speech and the output")
    ap.add_argument("--dio-allowed-range", type=float, default=world.DIO_ALLOWED_RANGE,
                    help="DIO's allowed_range (with --synth-f0 dio)")
    ap.add_argument("--synth-f0-rate", type=int, default=VoiceMatchConfig().synth_f0_rate,
                    help="Hz: the cascade estimates the synthesised speech's F0 on it resampled to this (0 = its rate)")
    ap.add_argument("--input-f0-rate", type=int, default=VoiceMatchConfig().input_f0_rate,
                    help="Hz: the cascade estimates the input's F0 on it resampled to this (0 = full rate)")
    args = ap.parse_args()
    world.DIO_ALLOWED_RANGE = args.dio_allowed_range
    match = VoiceMatchConfig(synth_f0=args.synth_f0, synth_f0_rate=args.synth_f0_rate,
                             input_f0_rate=args.input_f0_rate)
    torch.set_num_threads(1)
    task = TASKS["voice-translate"]
    stages = load_stages(args.bundle, {"tts": args.tts}, task.run_task, task.synthesize)
    if args.synth == "espeak":
        stages.synthesize, stages.runs["tts"] = espeak_french, "eSpeak NG fr"
    if args.latency:
        return latency(stages, args.latency, args.repeat, args.latency_text if args.transcript else None, match)
    rows = read_translation_manifest(Path(args.bundle) / "data" / "test.jsonl")
    if args.limit:  # the first sentences, each in every held-out voice (the manifest lists them so)
        rows = rows[: args.limit]
    rate = stages.tts.sample_rate
    fr_asr = task_of_run(args.fr_asr) if args.fr_asr else None
    out, failed, wav_dir = [], [], Path(args.wav_dir or Path(args.bundle) / "bench")
    wav_dir.mkdir(exist_ok=True)
    for k, r in enumerate(rows):
        wave = read_audio(r.audio, rate)
        try:
            t = translate_voice(stages, wave, rate, match, transcript=r.text if args.transcript else None)
        except (ConfigError, DataError) as err:  # counted in the summary as failed, with the reason
            failed.append({"audio": str(r.audio), "voice": r.voice, "error": str(err)})
            print(f"failed: {err}", file=sys.stderr)
            continue
        judge_in, judge_out = world.analyze(wave, rate), world.analyze(t.wave, rate)     # the judge
        try:
            inp, outp = f0_stats(judge_in.f0), f0_stats(judge_out.f0, "the output")
        except VoiceError as err:
            failed.append({"audio": str(r.audio), "voice": r.voice, "error": f"{err}; {'; '.join(t.warnings)}"})
            continue
        rep = t.output_f0 or {}
        row = {"voice": r.voice, "english": t.english, "reference": r.translation, "french": t.french,
               "seconds": len(wave) / rate, "input_median_hz": inp.median_hz, "output_median_hz": outp.median_hz,
               "median_st_diff": outp.median_semitones - inp.median_semitones,
               "spread_ratio": outp.spread_semitones / max(inp.spread_semitones, 1e-9), "warp": t.match.warp,
               "output_warp": estimate_warp(judge_in, judge_out), "report_output_median_hz": rep.get("median_hz"),
               "report_spread_ratio": rep["spread_semitones"] / max(t.match.speaker.spread_semitones, 1e-9)
               if rep else None, "report_output_warp": t.output_warp,
               "input_spread_st": inp.spread_semitones, "synth_spread_st": t.match.synthesised.spread_semitones,
               "times": t.times}
        if fr_asr is not None:
            row["wav"] = str(write_wav(wav_dir / f"{k:03d}.wav", t.wave, rate))
        out.append(row)
        print(json.dumps({k2: (round(v, 3) if isinstance(v, float) else v) for k2, v in row.items() if k2 != "times"},
                         ensure_ascii=False), flush=True)
    summary = {**summarise(out, stages, args.synth_f0), "synth_f0_rate": args.synth_f0_rate,
               "input_f0_rate": args.input_f0_rate, "failed": len(failed), "failures": failed[:5]}
    if fr_asr is not None:
        decoding = {k: v for k, v in (("beam", args.fr_beam), ("lm", args.fr_lm)) if v is not None}
        hyps = [p["text"] for p in fr_asr.predict(args.fr_asr, [r["wav"] for r in out], decoding)]
        s = asr_scores([r["french"] for r in out], hyps, "basic")
        summary.update(fr_asr_cer=s.cer, fr_asr_wer=s.wer, fr_asr=args.fr_asr, fr_asr_decoding=decoding or "its own")
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "rows": out, "failed": failed}, indent=1,
                                             ensure_ascii=False))


def latency(stages, wav: str, repeat: int, transcript: str | None, match: VoiceMatchConfig) -> None:
    """Wall and CPU seconds per stage on one file, averaged over the runs after the first, and each stage's share
    of the CPU seconds."""
    rate = stages.tts.sample_rate
    wave = read_audio(wav, rate)
    runs = [translate_voice(stages, wave, rate, match, transcript=transcript)
            for _ in range(repeat)][1:]
    cpu = {k: float(np.mean([r.times["cpu"].get(k, 0.0) for r in runs])) for k in STAGES}
    print(json.dumps({"seconds": len(wave) / rate, "output_seconds": len(runs[-1].wave) / rate,
                      "english": runs[-1].english, "french": runs[-1].french, "synth_f0": match.synth_f0,
                      "synth_f0_rate": match.synth_f0_rate, "input_f0_rate": match.input_f0_rate,
                      "recognition_decoding": stages.decoding,
                      "wall": {k: float(np.mean([r.times.get(k, 0.0) for r in runs])) for k in STAGES},
                      "cpu": cpu, "cpu_share": {k: cpu[k] / cpu["total"] for k in STAGES if k != "total"},
                      "threads": torch.get_num_threads(), "load_average": list(os.getloadavg())},
                     indent=1, ensure_ascii=False))


ENGLISH_3S = "Where is the train station? I would like a coffee."   # the latency recording of docs/voice-translation.md
STAGES = ("input_analysis", "recognition", "translation", "synthesis", "voice_matching", "output_analysis", "total")


def summarise(rows: list[dict], stages, synth_f0: str) -> dict:
    st = np.array([abs(r["median_st_diff"]) for r in rows])
    spread = np.array([r["spread_ratio"] for r in rows])
    warp = np.array([r["output_warp"] for r in rows])
    med = np.array([r["input_median_hz"] for r in rows])
    ref = [stages.mt.normalize(r["reference"]) for r in rows]
    bleu = corpus_scores([r["french"] for r in rows], ref)
    stages_named = STAGES
    stage_s = {k: float(np.mean([r["times"].get(k, 0.0) for r in rows])) for k in stages_named}
    stage_cpu = {k: float(np.mean([r["times"]["cpu"].get(k, 0.0) for r in rows])) for k in stages_named}
    near3 = [r for r in rows if 2.5 <= r["seconds"] <= 3.5]
    cpu3 = {k: float(np.mean([r["times"]["cpu"].get(k, 0.0) for r in near3])) for k in stages_named} if near3 else {}
    report_spread = np.array([r["report_spread_ratio"] for r in rows if r["report_spread_ratio"] is not None])
    return {"utterances": len(rows), "input_median_hz_range": [float(med.min()), float(med.max())],
            "input_span_semitones": float(12 * np.log2(med.max() / med.min())),
            "pitch_within_1st": float(np.mean(st < 1.0)), "median_abs_st_diff": float(np.median(st)),
            "max_abs_st_diff": float(st.max()),
            "spread_within_25pct": float(np.mean(np.abs(spread - 1) <= 0.25)),
            "depth_within_5pct": float(np.mean(np.abs(warp - 1) <= 0.05)),
            "output_warp_median": float(np.median(warp)),
            "report_spread_within_25pct": float(np.mean(np.abs(report_spread - 1) <= 0.25)),
            "report_output_warp_within_5pct": float(np.mean([abs(r["report_output_warp"] - 1) <= 0.05 for r in rows])),
            "bleu": bleu["bleu"], "chrf": bleu["chrf"],
            "mean_seconds": float(np.mean([r["seconds"] for r in rows])), "mean_stage_s": stage_s,
            "mean_stage_cpu_s": stage_cpu, "utterances_2.5_to_3.5_s": len(near3), "their_mean_stage_cpu_s": cpu3,
            "per_voice": per_voice(rows), "runs": stages.runs, "synth_f0": synth_f0, "threads": torch.get_num_threads(),
            "load_average": list(os.getloadavg())}


def per_voice(rows: list[dict]) -> dict:
    """Per held-out voice: input median F0 and how many utterances keep pitch, spread and depth."""
    out = {}
    for voice in sorted({r["voice"] for r in rows}):
        rr = [r for r in rows if r["voice"] == voice]
        st = np.array([abs(r["median_st_diff"]) for r in rr])
        spread = np.array([r["spread_ratio"] for r in rr])
        warp = np.array([r["output_warp"] for r in rr])
        out[voice] = {"utterances": len(rr), "input_median_hz": float(np.median([r["input_median_hz"] for r in rr])),
                      "pitch_within_1st": int(np.sum(st < 1.0)), "median_abs_st_diff": float(np.median(st)),
                      "spread_within_25pct": int(np.sum(np.abs(spread - 1) <= 0.25)),
                      "spread_ratio_median": float(np.median(spread)),
                      "depth_within_5pct": int(np.sum(np.abs(warp - 1) <= 0.05)),
                      "warp_median": float(np.median([r["warp"] for r in rr]))}
    return out


if __name__ == "__main__":
    sys.exit(main())
