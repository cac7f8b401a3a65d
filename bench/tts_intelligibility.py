"""Intelligibility of the tts task: build a vocoder-robust judge recogniser and measure vocoders by copy synthesis.

    # 1. the judge's data: the embedded corpus minus the TTS run's held-out (val + test) sentences, read by
    #    four eSpeak NG voices, plus Griffin-Lim copy synthesis of a share of those recordings
    #    (--grammar N: also N sentences of the phrase grammar, for a judge that knows more words)
    python bench/tts_intelligibility.py judge-data --tts-run RUN --out DIR [--copy-share 1.0] [--grammar N]
    rnnkit train asr --data DIR/judge.jsonl ...                      # (the command docs/tts.md gives)
    # 2. a recogniser's CER on the TTS run's test recordings, as recorded and copy-synthesised per vocoder
    python bench/tts_intelligibility.py copy --tts-run RUN --asr ASR_RUN --out DIR \
        --variant gl32 --variant gl100:iterations=100 --variant world:method=world
    # 3. the synthesiser itself on its held-out test sentences, per vocoder setting (TTSSynthConfig fields);
    #    with one variant this is `rnnkit evaluate RUN --data RUN/data/test.jsonl --asr ASR_RUN`
    python bench/tts_intelligibility.py synth --tts-run RUN --asr ASR_RUN --out DIR --variant s1 \
        --variant s13:sharpen=1.3
    # 4. where the synthesiser's errors come from: CER by position in the sentence, by whether a word was in
    #    the training text, on training vs held-out sentences, teacher-forced vs free-running frames
    python bench/tts_intelligibility.py diagnose --tts-run RUN --asr ASR_RUN --out DIR [--train-sentences 30]
    # 5. how many of the test sentences' words the training text holds, and how many --grammar N would add
    python bench/tts_intelligibility.py coverage --tts-run RUN --grammar 1000

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

import jiwer
import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.data.audio import write_wav
from rnnkit.data.phrase_grammar import grammar_pairs, sentence_key
from rnnkit.data.speech_synth import texts_dataset
from rnnkit.data.speech_text import normalize_text
from rnnkit.metrics.asr import asr_scores, normalize_basic
from rnnkit.metrics.tts import mel_cepstral_distortion
from rnnkit.modules.vocoder import Vocoder, VocoderConfig
from rnnkit.tasks import TASKS
from rnnkit.tasks.tts.copy_synthesis import copy_manifest, read_rows
from rnnkit.tasks.tts.data import embedded_texts, encode, grammar_texts, load_mels, read_corpus, text_symbols
from rnnkit.tasks.tts.pipeline import load_tts, score, synthesize_sentences

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
    if args.grammar:  # more varied text, so the judge knows words the TTS corpus lacks (never a held-out sentence)
        side = 0 if lang == "en" else 1
        known = {sentence_key(t) for t in texts}
        texts += [p[side] for p in grammar_pairs(args.grammar, seed=args.grammar_seed, exclude=held)
                  if sentence_key(p[side]) not in known]
    rows = []
    for voice in JUDGE_VOICES[lang]:
        manifest = texts_dataset(texts, voice, rate=160)
        for row in read_rows(manifest):
            rows.append({**row, "text": normalize_text(row["text"], lang), "voice": voice, "source_text": row["text"]})
    out.mkdir(parents=True, exist_ok=True)
    clean = out / "clean.jsonl"
    atomic_write_text(clean, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = {"texts": len(texts), "grammar": args.grammar, "clean": len(rows), "held_out_texts": len(held)}
    all_rows = list(rows)
    if args.copy_share > 0:
        name, voc = vocoder_config(args.copy_vocoder)
        t0 = time.process_time()
        copies = read_rows(copy_manifest(clean, out / f"copies-{name}", loaded.features, voc, args.copy_share))
        result.update(copies=len(copies), copy_vocoder=name, copy_cpu_s=round(time.process_time() - t0, 1))
        all_rows += copies
    held_keys = {sentence_key(t) for t in held}
    leaked = {r["source_text"] for r in all_rows
              if r["source_text"] in held or sentence_key(r["source_text"]) in held_keys}
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


POSITION_BINS = 3  # first, middle and last third of each reference sentence


def errors_by_position(refs: list[str], hyps: list[str]) -> list[float]:
    """Character errors per reference character in each third of the sentence (insertions are charged to
    the reference character they follow), on the texts as the CER sees them (``normalize_basic``)."""
    errors, chars = [0.0] * POSITION_BINS, [0] * POSITION_BINS
    for ref, hyp in zip(map(normalize_basic, refs), map(normalize_basic, hyps)):
        bin_of = lambda i: min(POSITION_BINS - 1, POSITION_BINS * min(i, len(ref) - 1) // len(ref))  # noqa: E731
        for i in range(len(ref)):
            chars[bin_of(i)] += 1
        for chunk in jiwer.process_characters(ref, hyp or " ").alignments[0]:
            if chunk.type == "equal":
                continue
            if chunk.type == "insert":
                errors[bin_of(max(chunk.ref_start_idx - 1, 0))] += chunk.hyp_end_idx - chunk.hyp_start_idx
            else:
                for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                    errors[bin_of(i)] += 1
    return [round(100 * e / max(c, 1), 2) for e, c in zip(errors, chars)]


def words_by_training_count(refs: list[str], hyps: list[str], train_texts: list[str]) -> dict:
    """Share of reference words the recogniser got right (present in the hypothesis' aligned word), split
    by how often the word occurs in the synthesiser's training text (words as the WER sees them)."""
    counts: dict[str, int] = {}
    for t in train_texts:
        for w in normalize_basic(t).split():
            counts[w] = counts.get(w, 0) + 1
    buckets = {"unseen": [0, 0], "1-4": [0, 0], "5-49": [0, 0], "50+": [0, 0]}
    for ref, hyp in zip(map(normalize_basic, refs), map(normalize_basic, hyps)):
        words = ref.split()
        ok = [False] * len(words)
        for chunk in jiwer.process_words(ref, hyp or "-").alignments[0]:
            if chunk.type == "equal":
                for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                    ok[i] = True
        for w, good in zip(words, ok):
            n = counts.get(w, 0)
            key = "unseen" if n == 0 else "1-4" if n < 5 else "5-49" if n < 50 else "50+"
            buckets[key][0] += int(good)
            buckets[key][1] += 1
    return {k: {"words": n, "correct_pct": round(100 * c / max(n, 1), 1)} for k, (c, n) in buckets.items()}


@torch.no_grad()
def teacher_forced_mels(loaded, corpus) -> list[torch.Tensor]:
    """Each utterance's frames (T, M, denormalised) from teacher forcing: the prenet reads the recording's
    previous frames instead of the model's own."""
    model, d = loaded.model, loaded.config.data
    mels, _ = load_mels(corpus, loaded.features, d, check_length=False)
    out = []
    for text, mel in zip(corpus.normalised, mels):
        ids = encode(loaded.vocab, text_symbols(text, d.symbols, d.resolved_voice), text)
        r = model.reduction
        T = -(-len(mel) // r) * r
        target = torch.zeros(1, T, mel.shape[1])
        target[0, : len(mel)] = model.normalizer(mel[None])[0]
        o = model.tacotron(torch.tensor([ids]), torch.tensor([len(ids)]), target)
        out.append((o.mel_after[0, : len(mel)] * model.normalizer.std + model.normalizer.mean).cpu())
    return out


def diagnose(args) -> dict:
    run, out = Path(args.tts_run), Path(args.out)
    loaded = load_tts(run, args.checkpoint)
    lang = loaded.lang
    train_corpus = read_corpus(str(run / "data" / "train.jsonl"), lang, False)
    test_corpus = read_corpus(str(run / "data" / "test.jsonl"), lang, False)
    voc = Vocoder(loaded.features, loaded.config.synth.vocoder_config())
    result: dict = {"asr": args.asr, "checkpoint": args.checkpoint}
    picks = torch.randperm(len(train_corpus), generator=torch.Generator().manual_seed(0))[: args.train_sentences]
    sets = {"test": test_corpus, "train": train_corpus.subset(sorted(picks.tolist()))}
    for name, corpus in sets.items():
        refs = list(corpus.normalised)
        ref_mels, _ = load_mels(corpus, loaded.features, loaded.config.data, check_length=False)
        for mode in ("free", "forced"):
            folder = out / f"{name}-{mode}"
            folder.mkdir(parents=True, exist_ok=True)
            if mode == "free":
                mels, stops = [], []
                for k, text in enumerate(corpus.texts):
                    torch.manual_seed(k)
                    sentences = synthesize_sentences(loaded, text)
                    mels.append(torch.cat([s.mel for s in sentences]))
                    stops.append(all(s.stopped for s in sentences))
            else:
                torch.manual_seed(0)
                mels, stops = teacher_forced_mels(loaded, corpus), []
            wavs = [str(write_wav(folder / f"{k:03d}.wav", voc(m), loaded.sample_rate)) for k, m in enumerate(mels)]
            hyps = [p["text"] for p in TASKS["asr"].predict(args.asr, wavs, {})]
            s = asr_scores(refs, hyps, "basic")
            length_ratio = [len(m) / len(r) for m, r in zip(mels, ref_mels)]
            entry = {"cer": round(100 * s.cer, 2), "wer": round(100 * s.wer, 2),
                     "mcd": round(float(sum(mel_cepstral_distortion(r.numpy(), m.numpy(), 24)
                                            for r, m in zip(ref_mels, mels)) / len(mels)), 3),
                     "cer_by_third": errors_by_position(refs, hyps),
                     "words_by_training_count": words_by_training_count(refs, hyps, list(train_corpus.normalised)),
                     "length_ratio_mean": round(sum(length_ratio) / len(length_ratio), 3),
                     "length_ratio_min_max": [round(min(length_ratio), 3), round(max(length_ratio), 3)],
                     "hypotheses": [{"ref": r, "hyp": h} for r, h in zip(refs, hyps)]}
            if mode == "forced":
                entry["mel_l1"] = round(float(sum((m - r).abs().mean() for m, r in zip(mels, ref_mels)) / len(mels)), 4)
            else:
                entry["stopped"] = sum(stops)
            result[f"{name}_{mode}"] = entry
            print(f"{name} {mode}: CER {entry['cer']}% WER {entry['wer']}% MCD {entry['mcd']} by third "
                  f"{entry['cer_by_third']} words {entry['words_by_training_count']} length ratio "
                  f"{entry['length_ratio_mean']}", flush=True)
    return result


def coverage(args) -> dict:
    """Test-sentence words by their count in the run's training text, and in it plus ``--grammar`` sentences
    (the sentences ``rnnkit train tts --grammar N`` would add to a run of the same held-out split)."""
    run = Path(args.tts_run)
    lang = load_tts(run).lang
    split = {name: [r["text"] for r in read_rows(run / "data" / f"{name}.jsonl")] for name in ("train", "val", "test")}
    extra = grammar_texts(lang, args.grammar, split["val"] + split["test"], split["train"] + split["val"] + split["test"])
    words = lambda t: normalize_basic(normalize_text(t, lang)).split()  # noqa: E731

    def counts(texts):
        c: dict[str, int] = {}
        for t in texts:
            for w in words(t):
                c[w] = c.get(w, 0) + 1
        return c

    def buckets(c):
        b = {"unseen": 0, "1-4": 0, "5-49": 0, "50+": 0}
        for w in (w for t in split["test"] for w in words(t)):
            n = c.get(w, 0)
            b["unseen" if n == 0 else "1-4" if n < 5 else "5-49" if n < 50 else "50+"] += 1
        return b
    before, after = counts(split["train"]), counts(split["train"] + extra)
    unseen = sorted({w for t in split["test"] for w in words(t) if w not in before})
    return {"lang": lang, "extra_sentences": len(extra), "extra_mean_chars": round(sum(map(len, extra)) / len(extra), 1),
            "train_mean_chars": round(sum(map(len, split["train"])) / len(split["train"]), 1),
            "distinct_words_before": len(before), "distinct_words_after": len(after),
            "test_word_tokens_by_training_count_before": buckets(before), "after": buckets(after),
            "unseen_test_words": unseen, "unseen_now_covered": [w for w in unseen if w in after]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    j = sub.add_parser("judge-data", help="the judge recogniser's training manifest")
    j.add_argument("--tts-run", required=True)
    j.add_argument("--out", required=True)
    j.add_argument("--count", type=int, default=600, help="embedded corpus size (as the TTS run's --count)")
    j.add_argument("--grammar", type=int, default=0,
                   help="also this many sentences of rnnkit.data.phrase_grammar (more varied words)")
    j.add_argument("--grammar-seed", type=int, default=1)
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
    g = sub.add_parser("diagnose", help="where the synthesiser's errors are: position, word frequency, training "
                                        "vs held-out sentences, teacher forcing vs free running")
    g.add_argument("--tts-run", required=True)
    g.add_argument("--asr", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--checkpoint", default="best", choices=("best", "last"))
    g.add_argument("--train-sentences", type=int, default=30, help="training sentences also synthesised")
    v = sub.add_parser("coverage", help="test words by their count in the training text, without and with "
                                        "--grammar sentences")
    v.add_argument("--tts-run", required=True)
    v.add_argument("--grammar", type=int, default=1000)
    p.add_argument("--json", help="write the result here too")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    result = {"judge-data": judge_data, "copy": copy, "synth": synth, "diagnose": diagnose,
              "coverage": coverage}[args.command](args)
    print(json.dumps(result, indent=1))
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
