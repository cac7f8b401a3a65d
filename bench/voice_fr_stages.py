"""Where the French recogniser's CER on the voice-translation output comes from: each step of voice matching alone.

For every held-out utterance of a bundle's test set, the French text (the bundle's translator on the true English
transcript) is spoken by eSpeak NG's French voice (as ``bench/voice_translation.py --synth espeak`` does) and
scored by a French recogniser (``--fr-asr``, CER against that French text) in these conditions:

* ``plain``: eSpeak NG's French as it comes (no WORLD);
* ``world``: WORLD analysis (Harvest, CheapTrick, D4C) and re-synthesis with nothing changed;
* ``world_cap``: the same with the voiced aperiodicity capped (``voice.VOICED_APERIODICITY``), as matching does;
* ``f0``: the F0 mapped onto the speaker's statistics only (cap kept, envelope unchanged);
* ``warp``: the envelope warped by the estimated factor only (cap kept, F0 unchanged);
* ``full``: both, what ``match_voice`` makes.

Every WORLD condition has its loudness matched to the speaker, as the cascade's output does. The numbers are given
overall and per held-out voice (``--per-voice``), with the decoding of ``--beam`` / ``--lm`` (the French
recogniser's own decode section otherwise).

    python bench/voice_fr_stages.py BUNDLE --fr-asr FR_ASR [--limit N] [--beam 4 --lm FR_LM] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.data.audio import read_audio, write_wav
from rnnkit.data.speech_parallel import read_translation_manifest
from rnnkit.data.speech_synth import synthesize as espeak
from rnnkit.metrics.asr import asr_scores
from rnnkit.modules import voice as V
from rnnkit.modules import world
from rnnkit.tasks import TASKS, task_of_run
from rnnkit.tasks.voice_translate.commands import load_stages

RATE = 16000
CONDITIONS = ("plain", "world", "world_cap", "f0", "warp", "full")


def variants(synth: np.ndarray, syn: world.WorldAnalysis, speaker: np.ndarray, spk: world.WorldAnalysis) -> dict:
    """Each condition's waveform (N,) of one synthesised utterance against one speaker."""
    spk_stats = V.f0_stats(spk.f0, "speaker")
    alpha = V.estimate_warp(syn, spk)
    mapped = V.map_f0(syn.f0, spk_stats)
    capped = lambda f0: np.where((f0 > 0)[:, None], np.minimum(syn.aperiodicity, V.VOICED_APERIODICITY),  # noqa: E731
                                 syn.aperiodicity)
    warped = V.warp_envelope(syn.envelope, alpha)
    analyses = {"world": syn,
                "world_cap": syn.with_(aperiodicity=capped(syn.f0)),
                "f0": syn.with_(f0=mapped, aperiodicity=capped(mapped)),
                "warp": syn.with_(envelope=warped, aperiodicity=capped(syn.f0)),
                "full": syn.with_(f0=mapped, envelope=warped, aperiodicity=capped(mapped))}
    out = {"plain": synth}
    for name, a in analyses.items():
        out[name] = V.match_loudness(world.resynthesize(a), speaker, RATE)[0]
    return out, alpha


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--fr-asr", required=True, help="the French recogniser run")
    ap.add_argument("--limit", type=int, default=0, help="test utterances used (0 = all)")
    ap.add_argument("--beam", type=int, default=None, help="the French recogniser's beam (default: its run's)")
    ap.add_argument("--lm", default=None, help="a French character LM run fused into the beam search")
    ap.add_argument("--wavs", default="", help="keep the condition wavs in this folder (default: a temporary one)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = TASKS["voice-translate"]
    stages = load_stages(args.bundle, {}, task.run_task, task.synthesize)
    rows = read_translation_manifest(Path(args.bundle) / "data" / "test.jsonl")
    rows = rows[: args.limit] if args.limit else rows
    wav_dir = Path(args.wavs or tempfile.mkdtemp(prefix="voice_fr_stages_"))
    wav_dir.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    items = []                                   # (row index, condition, wav path)
    meta = []
    for k, r in enumerate(rows):
        french = stages.mt.translate([r.text], beam=5)[0][0].text
        if french not in cache:
            synth = espeak(french, "fr", 160, 50, RATE)
            cache[french] = (synth, world.analyze(synth, RATE))
        synth, syn = cache[french]
        speaker = read_audio(r.audio, RATE)
        spk = world.analyze(speaker, RATE, aperiodicity=False)
        waves, alpha = variants(synth, syn, speaker, spk)
        for name, w in waves.items():
            items.append((k, name, str(write_wav(wav_dir / f"{k:03d}_{name}.wav", w, RATE))))
        meta.append({"voice": r.voice, "french": french, "warp": alpha,
                     "speaker_median_hz": V.f0_stats(spk.f0).median_hz})
    options = {k: v for k, v in (("beam", args.beam), ("lm", args.lm)) if v is not None}
    hyps = [p["text"] for p in task_of_run(args.fr_asr).predict(args.fr_asr, [p for _, _, p in items], options)]
    table = score(items, hyps, meta)
    summary = {"utterances": len(rows), "fr_asr": args.fr_asr, "decoding": options or "the run's own",
               "cer": table, "threads": torch.get_num_threads(), "load_average": list(os.getloadavg())}
    print(json.dumps(summary, indent=1))
    if args.out:
        per_row = [{**m, "heard": {c: h for (k2, c, _), h in zip(items, hyps) if k2 == k}} for k, m in enumerate(meta)]
        atomic_write_text(args.out, json.dumps({"summary": summary, "rows": per_row}, indent=1, ensure_ascii=False))


def score(items: list, hyps: list, meta: list) -> dict:
    """CER (and WER) per condition, overall and per voice."""
    table = {}
    voices = sorted({m["voice"] for m in meta})
    for cond in CONDITIONS:
        pick = [(meta[k], h) for (k, c, _), h in zip(items, hyps) if c == cond]
        s = asr_scores([m["french"] for m, _ in pick], [h for _, h in pick], "basic")
        entry = {"cer": round(s.cer, 4), "wer": round(s.wer, 4)}
        for v in voices:
            pv = [(m, h) for m, h in pick if m["voice"] == v]
            entry[v] = round(asr_scores([m["french"] for m, _ in pv], [h for _, h in pv], "basic").cer, 4)
        table[cond] = entry
    return table


if __name__ == "__main__":
    sys.exit(main())
