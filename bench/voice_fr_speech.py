"""French speech for the "understood" benchmark: French sentences spoken by eSpeak NG's French voices (male and
female variants, pitches, rates), most of them re-voiced by WORLD onto another speaker's pitch and vocal tract,
as a NeMo-style manifest to train the French recogniser that judges the voice-translation output
(``rnnkit train asr --data``).

The judge has to read French in *any* speaker's pitch and vocal-tract length, as voice matching makes it: eSpeak
NG's French voices alone span a narrow band of both (a recogniser trained on them read plain eSpeak French at 8%
CER, the same re-synthesised by WORLD unchanged at 14% and warped onto the held-out speakers' vocal tracts at 22%,
docs/voice-translation.md). So ``--revoice`` (share) of the utterances are analysed by WORLD (DIO + StoneMask,
which agrees with Harvest on eSpeak NG's French) and re-synthesised by :func:`rnnkit.modules.voice.revoice`
with a median F0 drawn log-uniformly from ``--f0-range`` Hz, a spread from ``--spread-range`` semitones and a
vocal-tract factor from ``--warp-range`` (vocal-tract length perturbation, Jaitly & Hinton 2013), the other
utterances kept as eSpeak NG makes them; every utterance gets a random level (peak 20 dB below full scale to
0.99).

Sentences: the French side of the phrase book and of the command sentences and ``--grammar`` phrase-grammar
sentences; ``--exclude MANIFEST`` (a bundle's ``data/test.jsonl``) leaves out every sentence whose French or
English is in it (compared as the phrase grammar compares them), so the judge never trains on the held-out
sentences it scores.

    python bench/voice_fr_speech.py OUT_DIR [--count 3000] [--grammar 1500] [--exclude BUNDLE/data/test.jsonl]
    rnnkit train asr --data OUT_DIR/train.jsonl --out FR_ASR --freq-masks 1 --time-masks 1 --zero-infinity \
        --max-time 660 --clock cpu --threads 1
    rnnkit train lm --data OUT_DIR/lm_train.txt --model markov --order 7 --tokenizer char --out FR_LM
    python bench/voice_translation.py BUNDLE --fr-asr FR_ASR            # the judge greedy
    python bench/voice_fr_stages.py BUNDLE --fr-asr FR_ASR --beam 4 --lm FR_LM   # each step of matching alone
"""
from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

import numpy as np

from rnnkit.atomic import atomic_write_text
from rnnkit.data.audio import write_wav
from rnnkit.data.phrase_grammar import grammar_pairs, sentence_key
from rnnkit.data.speech_parallel import command_pairs, phrasebook_pairs, read_translation_manifest
from rnnkit.data.speech_synth import synthesize
from rnnkit.metrics.asr import normalize_basic
from rnnkit.modules import world
from rnnkit.modules.voice import F0Stats, VoiceError, f0_stats, hz_to_semitones, revoice, semitones_to_hz

VOICES = ("fr", "fr-be")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
PITCHES = (10, 20, 35, 50, 65, 80, 90)
RATES = (130, 150, 170, 190, 210)
RATE = 16000


def french_sentences(grammar: int, exclude: list, seed: int) -> list[str]:
    """The distinct French sentences spoken: phrase book, commands and grammar, none of ``exclude``."""
    banned = {sentence_key(t) for t in exclude}
    pairs = phrasebook_pairs() + command_pairs() + grammar_pairs(grammar, seed, exclude)
    return sorted({fr for en, fr in pairs if sentence_key(en) not in banned and sentence_key(fr) not in banned})


def random_voice(rng: random.Random, args) -> tuple[F0Stats, float]:
    """A speaker to re-voice onto: F0 statistics and the vocal-tract factor."""
    lo, hi = args.f0_range
    median_st = float(hz_to_semitones(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
    spread = rng.uniform(*args.spread_range)
    alpha = math.exp(rng.uniform(math.log(args.warp_range[0]), math.log(args.warp_range[1])))
    return F0Stats(float(semitones_to_hz(median_st)), median_st, spread, 0), alpha


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--grammar", type=int, default=1500, help="phrase-grammar sentences among those spoken")
    ap.add_argument("--exclude", default="", help="a manifest (text, translation) whose sentences are never spoken")
    ap.add_argument("--revoice", type=float, default=0.7, help="share of the utterances re-voiced by WORLD")
    ap.add_argument("--f0-range", type=float, nargs=2, default=(60.0, 320.0), help="Hz, median F0 of re-voicing")
    ap.add_argument("--spread-range", type=float, nargs=2, default=(0.5, 4.0), help="semitones, F0 spread")
    ap.add_argument("--warp-range", type=float, nargs=2, default=(0.8, 1.35), help="vocal-tract factors")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    exclude = []
    if args.exclude:
        exclude = [t for r in read_translation_manifest(args.exclude) for t in (r.text, r.translation)]
    french = french_sentences(args.grammar, exclude, args.seed)
    lines, unvoiced = [], 0
    for i in range(args.count):
        text = french[i % len(french)] if i < len(french) else rng.choice(french)
        variant = rng.choice(VARIANTS)
        voice = rng.choice(VOICES) + (f"+{variant}" if variant else "")
        pitch, rate = rng.choice(PITCHES), rng.choice(RATES)
        wave = synthesize(text, voice, rate, pitch, RATE)
        row = {"text": text, "voice": voice, "pitch": pitch, "rate": rate}
        if rng.random() < args.revoice:
            a = world.analyze(wave, RATE, f0_method="dio")
            try:
                f0_stats(a.f0, text)                 # raises when DIO found no voiced frame
            except VoiceError:                       # kept as eSpeak NG made it, and counted
                unvoiced += 1
            else:
                target, alpha = random_voice(rng, args)
                wave, _ = revoice(a, target, alpha)
                row["revoiced"] = {"median_hz": round(target.median_hz, 1),
                                   "spread_st": round(target.spread_semitones, 2), "warp": round(alpha, 3)}
        peak = float(np.abs(wave).max())
        level = 0.99 * 10 ** (rng.uniform(-20.0, 0.0) / 20)
        wave = (wave * (level / max(peak, 1e-9))).astype(np.float32)
        path = write_wav(out / f"{i:05d}.wav", wave, RATE)
        lines.append(json.dumps({"audio_filepath": str(path.resolve()), **row}, ensure_ascii=False))
    atomic_write_text(out / "train.jsonl", "\n".join(lines) + "\n")
    # the French recogniser's language model: the same sentences as the recogniser writes them (its normaliser)
    lm_lines = sorted({normalize_basic(t) for t in french} - {""})
    atomic_write_text(out / "lm_train.txt", "".join(f"{line}\n" for line in lm_lines))
    print(f"{len(lines)} utterances of {len(french)} sentences in {out / 'train.jsonl'} "
          f"({unvoiced} left unrevoiced: no voiced frame found by DIO); LM text {out / 'lm_train.txt'}")


if __name__ == "__main__":
    main()
