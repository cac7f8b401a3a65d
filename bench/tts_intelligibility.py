"""Intelligibility of the tts task: build a vocoder-robust judge recogniser and measure vocoders by copy synthesis.

    # 1. the judge's data: the embedded corpus minus the TTS run's held-out (val + test) sentences, read by
    #    four eSpeak NG voices, plus Griffin-Lim copy synthesis of a share of those recordings
    python bench/tts_intelligibility.py judge-data --tts-run RUN --out DIR [--copy-share 1.0]
    rnnkit train asr --data DIR/judge.jsonl ...                      # (the command docs/tts.md gives)
    # 2. a recogniser's CER on the TTS run's test recordings, as recorded and copy-synthesised per vocoder
    python bench/tts_intelligibility.py copy --tts-run RUN --asr ASR_RUN --out DIR \
        --variant gl32 --variant gl100:iterations=100 --variant world:method=world
    # 3. the synthesiser itself on its held-out test sentences, per vocoder setting (TTSSynthConfig fields);
    #    with one variant this is `rnnkit evaluate RUN --data RUN/data/test.jsonl --asr ASR_RUN`
    python bench/tts_intelligibility.py synth --tts-run RUN --asr ASR_RUN --out DIR --variant s1 \
        --variant s13:sharpen=1.3

The judge never hears a held-out sentence: its texts are filtered against RUN/data/{val,test}.jsonl before
any audio is made (checked again on the written manifest). Results are printed and written as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.data.speech_synth import texts_dataset
from rnnkit.data.speech_text import normalize_text
from rnnkit.metrics.asr import asr_scores
from rnnkit.modules.vocoder import VocoderConfig
from rnnkit.tasks import TASKS
from rnnkit.tasks.tts.copy_synthesis import copy_manifest, read_rows
from rnnkit.tasks.tts.data import embedded_texts, read_corpus
from rnnkit.tasks.tts.pipeline import load_tts, score

JUDGE_VOICES = {"en": ["en-us", "en", "en-gb-x-rp", "en-us+f2"], "fr": ["fr", "fr+f2", "fr-be", "fr+m3"]}


def held_out(run: Path) -> set[str]:
    return {json.loads(line)["text"] for split in ("val", "test")
            for line in (run / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()}


def vocoder_config(spec: str) -> tuple[str, VocoderConfig]:
    """``name[:key=value,...]`` -> (name, VocoderConfig); keys are VocoderConfig fields."""
    name, _, rest = spec.partition(":")
    kw = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        kw[key] = value if key == "method" else (int(value) if key in ("iterations", "refine") else float(value))
    return name, VocoderConfig(**kw)


def judge_data(args) -> dict:
    run, out = Path(args.tts_run), Path(args.out)
    loaded = load_tts(run)
    lang, held = loaded.lang, held_out(run)
    texts = [t for t in embedded_texts(lang, args.count) if t not in held]
    rows = []
    for voice in JUDGE_VOICES[lang]:
        manifest = texts_dataset(texts, voice, rate=160)
        for row in read_rows(manifest):
            rows.append({**row, "text": normalize_text(row["text"], lang), "voice": voice, "source_text": row["text"]})
    out.mkdir(parents=True, exist_ok=True)
    clean = out / "clean.jsonl"
    atomic_write_text(clean, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = {"texts": len(texts), "clean": len(rows), "held_out_texts": len(held)}
    all_rows = list(rows)
    if args.copy_share > 0:
        name, voc = vocoder_config(args.copy_vocoder)
        t0 = time.process_time()
        copies = read_rows(copy_manifest(clean, out / f"copies-{name}", loaded.features, voc, args.copy_share))
        result.update(copies=len(copies), copy_vocoder=name, copy_cpu_s=round(time.process_time() - t0, 1))
        all_rows += copies
    leaked = {r["source_text"] for r in all_rows} & held
    if leaked:
        raise SystemExit(f"held-out sentences in the judge's data: {sorted(leaked)[:3]}")
    judge = out / "judge.jsonl"
    atomic_write_text(judge, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in all_rows))
    result["judge_manifest"], result["utterances"] = str(judge), len(all_rows)
    return result


def cer_of(asr: str, wavs: list[str], refs: list[str]) -> dict:
    hyps = [p["text"] for p in TASKS["asr"].predict(asr, wavs, {})]
    s = asr_scores(refs, hyps, "basic")
    return {"cer": round(100 * s.cer, 2), "wer": round(100 * s.wer, 2)}


def copy(args) -> dict:
    run, out = Path(args.tts_run), Path(args.out)
    loaded = load_tts(run)
    test = run / "data" / "test.jsonl"
    rows = read_rows(test)
    refs = [normalize_text(r["text"], loaded.lang) for r in rows]
    result = {"asr": args.asr, "utterances": len(rows),
              "recordings": cer_of(args.asr, [r["audio_filepath"] for r in rows], refs)}
    print(f"recordings: {result['recordings']}", flush=True)
    for spec in args.variant or ["griffin_lim"]:
        name, voc = vocoder_config(spec)
        t0 = time.process_time()
        copies = read_rows(copy_manifest(test, out / name, loaded.features, voc))
        cpu = time.process_time() - t0
        result[name] = {**cer_of(args.asr, [r["audio_filepath"] for r in copies], refs),
                        "vocoder": voc.__dict__, "cpu_s": round(cpu, 1)}
        print(f"{name}: {result[name]}", flush=True)
    return result


def synth(args) -> dict:
    loaded = load_tts(Path(args.tts_run), args.checkpoint)
    base = loaded.config.synth
    corpus = read_corpus(str(Path(args.tts_run) / "data" / "test.jsonl"), loaded.lang, False)
    result = {"asr": args.asr, "checkpoint": args.checkpoint}
    for spec in args.variant or ["default"]:
        name, _, rest = spec.partition(":")
        kw = {k: (v if k == "vocoder" else float(v) if "." in v else int(v))
              for k, _, v in (item.partition("=") for item in filter(None, rest.split(",")))}
        # prenet_dropout: a diagnostic, the dropout the prenet keeps at synthesis (training's by default)
        loaded.model.tacotron.prenet.dropout = kw.pop("prenet_dropout", loaded.config.model.prenet_dropout)
        loaded.config.synth = replace(base, **kw)
        scores = score(loaded, corpus, Path(args.out) / name, asr=args.asr, transcriber=TASKS["tts"].transcriber)
        result[name] = {"synth": kw, "prenet_dropout": loaded.model.tacotron.prenet.dropout, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()}}
        print(f"{name}: CER {100 * scores['asr_cer']:.2f}% WER {100 * scores['asr_wer']:.2f}% MCD "
              f"{scores['mcd']:.2f} monotonic {scores['monotonic_rate']:.3f} cpu RTF "
              f"{scores['cpu_rtf_acoustic']:.3f} + {scores['cpu_rtf_vocoder']:.3f}", flush=True)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    j = sub.add_parser("judge-data", help="the judge recogniser's training manifest")
    j.add_argument("--tts-run", required=True)
    j.add_argument("--out", required=True)
    j.add_argument("--count", type=int, default=600, help="embedded corpus size (as the TTS run's --count)")
    j.add_argument("--copy-share", type=float, default=1.0, help="share of the recordings also copy-synthesised")
    j.add_argument("--copy-vocoder", default="griffin_lim", help="name[:VocoderConfig field=value,...]")
    c = sub.add_parser("copy", help="a recogniser's CER on recordings and their copy synthesis")
    c.add_argument("--tts-run", required=True)
    c.add_argument("--asr", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--variant", action="append", help="name[:VocoderConfig field=value,...] (repeatable)")
    s = sub.add_parser("synth", help="a recogniser's CER on the synthesiser's test sentences, per vocoder setting")
    s.add_argument("--tts-run", required=True)
    s.add_argument("--asr", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--checkpoint", default="best", choices=("best", "last"))
    s.add_argument("--variant", action="append", help="name[:TTSSynthConfig field=value,...] (repeatable)")
    p.add_argument("--json", help="write the result here too")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    result = {"judge-data": judge_data, "copy": copy, "synth": synth}[args.command](args)
    print(json.dumps(result, indent=1))
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
