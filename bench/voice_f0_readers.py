"""How well each F0 reader of rnnkit.modules.world reads contours that are known (docs/voice-translation.md).

The voice-translation benchmark judges pitch by reading the input and the output with one estimator; this measures
that estimator where the answer is known:

* ``tone``: WORLD-synthesised harmonic signals on one vowel envelope (the mean envelope of a held-out utterance),
  aperiodicity 0.001 voiced / 0.999 unvoiced, on a known contour: median 55-300 Hz, spread 0.5-4 st (two sines of
  1.5-4 Hz and a declination), voiced stretches of 0.25-0.5 s between 0.1 s unvoiced gaps; 1.5 s each.
* ``espeak``: eSpeak NG's held-out English voices of a bundle's test split (every third sentence, all three
  voices) re-synthesised by WORLD with their own envelope and aperiodicity (capped at VOICED_APERIODICITY on
  voiced frames, as voice matching does) on a known contour of the same shape laid over their voiced frames,
  at their own median and a spread of 0.5, 1, 2 or 4 st.

Per reader and group: voicing recall and false voicing (share of the frames read voiced that are not), gross errors
(frames read more than 1 st off), the median absolute error of the others (cents), and per signal the read median
(within 1 st) and spread (ratio to the truth's, within 10% and 25%), with the statistics of rnnkit.modules.voice.

    python bench/voice_f0_readers.py BUNDLE [--readers harvest,harvest+d4c,...] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from rnnkit.data.audio import read_audio
from rnnkit.data.speech_parallel import read_translation_manifest
from rnnkit.modules import voice, world

FS = 16000
FRAME_S = world.FRAME_MS / 1000


def reader(method: str, voicing: str, f0_rate: int = 0):
    return lambda x: world.analyze(x, FS, f0_method=method, voicing=voicing, aperiodicity=False, f0_rate=f0_rate).f0


READERS = {"harvest": reader("harvest", "tracker"), "harvest+d4c": reader("harvest", "d4c"),
           "harvest@4k": reader("harvest", "tracker", 4000), "harvest@4k+d4c": reader("harvest", "d4c", 4000),
           "dio": reader("dio", "tracker"), "dio+d4c": reader("dio", "d4c")}


def contour(rng, median_hz: float, spread_st: float, voiced: np.ndarray) -> np.ndarray:
    """A known F0 contour (T,) on ``voiced`` frames: two sines and a declination, scaled to ``spread_st``."""
    t = np.arange(len(voiced)) * FRAME_S
    rate = rng.uniform(1.5, 4.0)
    d = np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)) + 0.3 * np.sin(2 * np.pi * 0.7 * rate * t)
    d -= np.linspace(-0.5, 0.5, len(voiced))
    d = d[voiced]
    d -= np.median(d)
    d *= spread_st / (1.4826 * np.median(np.abs(d)))
    f0 = np.zeros(len(voiced))
    f0[voiced] = voice.semitones_to_hz(voice.hz_to_semitones(median_hz) + d)
    return f0


def tone_voicing(rng, frames: int) -> np.ndarray:
    v, i = np.zeros(frames, bool), 10
    while i < frames - 10:
        n = int(rng.uniform(0.25, 0.5) / FRAME_S)
        v[i: min(i + n, frames - 10)] = True
        i += n + int(0.1 / FRAME_S)
    return v


def signals(bundle: str, rng) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """``[(kind, group, truth F0 (T,), waveform (N,))]``."""
    w = world.pyworld_module()
    rows = read_translation_manifest(Path(bundle) / "data" / "test.jsonl")
    a0 = world.analyze(read_audio(rows[3].audio, FS), FS)
    vowel = a0.envelope[a0.voiced].mean(axis=0)                                          # (K,)
    out = []
    for med in (55, 65, 75, 90, 110, 150, 200, 250, 300):
        for sp in (0.5, 1.0, 2.0, 4.0):
            f0 = contour(rng, med, sp, tone_voicing(rng, 300))
            ap = np.where((f0 > 0)[:, None], 0.001, 0.999) * np.ones((len(f0), len(vowel)))
            out.append(("tone", f"{med} Hz", f0, w.synthesize(f0, np.tile(vowel, (len(f0), 1)), ap, FS,
                                                               world.FRAME_MS)))
    for k, r in enumerate(rows):
        if (k // 3) % 3:
            continue
        a = world.analyze(read_audio(r.audio, FS), FS)
        if a.voiced.sum() < 20:
            continue
        f0 = contour(rng, voice.f0_stats(a.f0).median_hz, float(rng.choice([0.5, 1.0, 2.0, 4.0])), a.voiced)
        ap = np.where((f0 > 0)[:, None], np.minimum(a.aperiodicity, voice.VOICED_APERIODICITY), a.aperiodicity)
        out.append(("espeak", r.voice, f0, w.synthesize(f0, a.envelope, ap, FS, world.FRAME_MS)))
    return out


def score(truth: np.ndarray, read: np.ndarray) -> dict:
    tv, rv = truth > 0, read > 0
    both = tv & rv
    err = voice.hz_to_semitones(read[both]) - voice.hz_to_semitones(truth[both])
    gross = np.abs(err) > 1.0
    s = {"recall": both.sum() / max(tv.sum(), 1), "false_voiced": (rv & ~tv).sum() / max(rv.sum(), 1),
         "gross": float(gross.mean()) if both.any() else 1.0,
         "fine_cents": float(np.median(np.abs(err[~gross])) * 100) if (~gross).any() else np.nan}
    try:
        st, sr = voice.f0_stats(truth), voice.f0_stats(read)
        s.update(median_diff=sr.median_semitones - st.median_semitones,
                 spread_ratio=sr.spread_semitones / st.spread_semitones)
    except voice.VoiceError:
        s.update(median_diff=np.nan, spread_ratio=np.nan)
    return s


def aggregate(rows: list[dict]) -> dict:
    sr = np.array([r["spread_ratio"] for r in rows])
    md = np.array([r["median_diff"] for r in rows])
    mean = lambda k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    return {"signals": len(rows), "recall": mean("recall"), "false_voiced": mean("false_voiced"),
            "gross": mean("gross"), "fine_cents": float(np.nanmedian([r["fine_cents"] for r in rows])),
            "median_within_1st": int(np.sum(np.abs(md) < 1)), "median_abs_diff_st": float(np.nanmedian(np.abs(md))),
            "spread_ratio_median": float(np.nanmedian(sr)), "spread_within_10pct": int(np.sum(np.abs(sr - 1) <= 0.10)),
            "spread_within_25pct": int(np.sum(np.abs(sr - 1) <= 0.25))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--readers", default=",".join(READERS), help=f"comma-separated, of {', '.join(READERS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    names = args.readers.split(",")
    unknown = [n for n in names if n not in READERS]
    if unknown:
        ap.error(f"unknown readers {unknown}; expected some of {', '.join(READERS)}")
    sigs = signals(args.bundle, np.random.default_rng(args.seed))
    seconds = sum(len(y) / FS for *_, y in sigs)
    summary = {}
    for name in names:
        per, cpu = {}, 0.0
        for kind, group, truth, y in sigs:
            c = time.process_time()
            read = READERS[name](np.asarray(y, dtype=np.float64))
            cpu += time.process_time() - c
            read = np.pad(read, (0, max(0, len(truth) - len(read))))[: len(truth)]
            per.setdefault(kind, {}).setdefault(group, []).append(score(truth, read))
        summary[name] = {kind: {"all": aggregate([r for g in groups.values() for r in g]),
                                **{g: aggregate(v) for g, v in groups.items()}} for kind, groups in per.items()}
        summary[name]["cpu_s_per_audio_s"] = cpu / seconds
        print(name, json.dumps({k: v["all"] if isinstance(v, dict) else v for k, v in summary[name].items()}),
              flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"bundle": args.bundle, "seed": args.seed, "audio_seconds": seconds,
                                              "readers": summary}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
