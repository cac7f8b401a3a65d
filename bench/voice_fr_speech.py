"""French speech for the "understood" benchmark: the French side of the phrase book and of the command
sentences spoken by eSpeak NG's French voices (male and female variants, several pitches and rates), as a
NeMo-style manifest to train a French recogniser with ``rnnkit train asr --data``.

    python bench/voice_fr_speech.py OUT_DIR [--count 1500]     # writes OUT_DIR/train.jsonl
    rnnkit train asr --data OUT_DIR/train.jsonl --out FR_ASR --max-time 900
    python bench/voice_translation.py BUNDLE --fr-asr FR_ASR
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from rnnkit.data.audio import write_wav
from rnnkit.data.speech_parallel import command_pairs, phrasebook_pairs
from rnnkit.data.speech_synth import synthesize

VOICES = ("fr", "fr-be")
VARIANTS = ("", "m1", "m3", "f2", "f4")
PITCHES = (20, 35, 50, 65, 80)
RATES = (140, 165, 190)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    french = sorted({fr for _, fr in phrasebook_pairs() + command_pairs()})
    lines = []
    for i in range(args.count):
        text = french[i % len(french)] if i < len(french) else rng.choice(french)
        variant = rng.choice(VARIANTS)
        voice = rng.choice(VOICES) + (f"+{variant}" if variant else "")
        wave = synthesize(text, voice, rng.choice(RATES), rng.choice(PITCHES), 16000)
        path = write_wav(out / f"{i:05d}.wav", wave, 16000)
        lines.append(json.dumps({"audio_filepath": str(path.resolve()), "text": text, "voice": voice},
                                ensure_ascii=False))
    (out / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} utterances in {out / 'train.jsonl'}")


if __name__ == "__main__":
    main()
