"""``rnnkit train voice-translate --out BUNDLE``: every stage trained through the registry, one bundle naming them.

::

    BUNDLE/asr/, mt/, tts/, direct/       runs of the asr, translate, tts and speech-translate tasks
    BUNDLE/lm/                            an English character n-gram (lm task, --model markov) on the English side
                                          the bundle has, for the recogniser's beam search (counted in seconds)
    BUNDLE/data/asr_train.jsonl, asr_test.jsonl, mt_train.tsv, lm_train.txt, test.jsonl
                                          what the stages trained on; test.jsonl: held-out sentences in held-out
                                          voices (audio, text, translation), never seen by any stage
    BUNDLE/bundle.json                    the stage runs, their shares of --max-time, their results
    BUNDLE/checkpoints/best.safetensors   no weights: the resolved config and the stage runs, so that
                                          `rnnkit evaluate` / `predict` find this task through the registry

``--max-time`` (``train.max_time``) is shared out by ``stages.shares``; each stage stops when its share of
training time is spent (or earlier, by its own early stopping). Synthesising the embedded sets, evaluating and
scoring are not counted (the trainer's ``max_time`` counts training only).
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

from rnnkit import config as C
from rnnkit.atomic import atomic_write_text
from rnnkit.data.phrase_grammar import grammar_pairs, sentence_key
from rnnkit.data.speech_parallel import ParallelConfig, SpokenPair, parallel_speech_set, read_translation_manifest
from rnnkit.metrics.asr import normalize_basic
from rnnkit.tasks.runs import write_json
from rnnkit.train.checkpoint import Checkpoint, CheckpointError, find_run_checkpoint, load_checkpoint, save_checkpoint

from .config import VoiceTranslateRunConfig

TASK = "voice-translate"
STAGE_TASKS = {"asr": "asr", "mt": "translate", "tts": "tts", "direct": "speech-translate", "lm": "lm"}
#: settings of each stage over its task's defaults (sizes come from the bundle's config)
LONG = 1000  # epochs: the time share, not the epoch count, ends a stage
#: the recogniser's augmentation: speed perturbation (which also moves pitch and formants, as another speaker's
#: voice does) and one SpecAugment mask in frequency and time; held-out voices are what it is scored on
ASR_AUGMENT = {"speed": "0.9,1.0,1.1", "freq_masks": 1, "time_masks": 1}
#: the English character language model fused into the recogniser's beam search: a Kneser-Ney n-gram of this order
#: (on the measured bundle's 8,396 English sentences, 1.015 bits/char on its validation end against 1.151 at 5)
LM_ORDER = 7


def embedded_rows(cfg: VoiceTranslateRunConfig) -> tuple[list[SpokenPair], list[SpokenPair]]:
    """(train, test) rows of the embedded parallel speech (the direct model builds the same set)."""
    s = cfg.stages
    manifest = parallel_speech_set(ParallelConfig(train_count=s.asr_count, test_fraction=s.test_fraction,
                                                  seed=s.data_seed, grammar=s.speech_grammar))
    rows = read_translation_manifest(manifest)
    return [r for r in rows if r.split != "test"], [r for r in rows if r.split == "test"]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def write_data(cfg: VoiceTranslateRunConfig, out: Path) -> dict:
    """The stages' data files under ``out/data``: what each stage trains on and the shared test set."""
    train, test = embedded_rows(cfg)
    files = {"test": _jsonl(out / "data" / "test.jsonl", [
        {"audio": str(r.audio.resolve()), "text": r.text, "translation": r.translation, "voice": r.voice}
        for r in test])}
    files["asr_train"] = _jsonl(out / "data" / "asr_train.jsonl", [
        {"audio_filepath": str(r.audio.resolve()), "text": r.text} for r in train])
    files["asr_test"] = _jsonl(out / "data" / "asr_test.jsonl", [
        {"audio_filepath": str(r.audio.resolve()), "text": r.text} for r in test])
    pairs = clean_pairs(cfg, train, test)
    files["mt_train"] = out / "data" / "mt_train.tsv"
    atomic_write_text(files["mt_train"], "".join(f"{en}\t{fr}\n" for en, fr in translator_pairs(cfg, pairs)))
    files["lm_train"] = out / "data" / "lm_train.txt"
    atomic_write_text(files["lm_train"], "".join(f"{line}\n" for line in lm_lines(cfg, pairs, train)))
    return {k: str(v) for k, v in files.items()}


def lm_lines(cfg: VoiceTranslateRunConfig, pairs: list[tuple[str, str]], train: list[SpokenPair]) -> list[str]:
    """The English side the bundle already has (the translator's clean English and the recogniser's
    transcripts, no held-out sentence), as the recogniser writes it (``normalize_basic``), each sentence once,
    one per line (how the language model's fusion starts an utterance), shuffled (seeded: the lm task validates
    on the end of its text)."""
    lines = sorted({normalize_basic(t) for t in [en for en, _ in pairs] + [r.text for r in train]} - {""})
    random.Random(cfg.stages.data_seed).shuffle(lines)
    return lines


def clean_pairs(cfg: VoiceTranslateRunConfig, train: list[SpokenPair], test: list[SpokenPair]
                ) -> list[tuple[str, str]]:
    """The phrase book's training pairs and ``stages.mt_generated`` pairs of the phrase grammar (no held-out
    sentence, in either language), as typed."""
    s = cfg.stages
    held = [t for r in test for t in (r.text, r.translation)]
    held_keys = {sentence_key(t) for t in held}
    book = {(r.text, r.translation) for r in train}
    book |= {(en, fr) for en, fr in ParallelConfig(test_fraction=s.test_fraction, seed=s.data_seed).pairs()[0]
             if sentence_key(en) not in held_keys}
    return sorted(book) + grammar_pairs(s.mt_generated, seed=s.data_seed, exclude=held)


def translator_pairs(cfg: VoiceTranslateRunConfig, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The translator's training text: the :func:`clean_pairs`, each English side also as the recogniser writes
    it (lower case, no punctuation: ``i m tired``), so the translator reads recognised and typed English alike,
    and once more with recogniser-like errors (``stages.mt_noise`` of its characters, :func:`recogniser_noise`).
    Shuffled (seeded): the translate task splits its validation and test pairs off in file order."""
    s = cfg.stages
    spoken = [(normalize_basic(en), fr) for en, fr in pairs]
    rng = random.Random(s.data_seed)
    misheard = [(recogniser_noise(en, rng, s.mt_noise), fr) for en, fr in spoken] if s.mt_noise > 0 else []
    both = sorted(set(pairs) | {(en, fr) for en, fr in spoken + misheard if en})
    rng.shuffle(both)
    return both


LETTERS = "abcdefghijklmnopqrstuvwxyz"


def recogniser_noise(text: str, rng: random.Random, rate: float) -> str:
    """``text`` with about ``rate`` of its characters dropped, replaced or doubled (and a space now and then
    dropped or added), as a character recogniser's errors on unheard voices look ("where es the tain station")."""
    out = []
    for ch in text:
        r = rng.random()
        if r < rate / 3:
            continue                                                         # dropped
        if r < 2 * rate / 3:
            out.append(rng.choice(LETTERS + " ") if ch != " " else "")         # replaced (a space: dropped)
        elif r < rate:
            out.extend([ch, ch if ch != " " else rng.choice(LETTERS)])       # doubled (or a letter after a space)
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def stage_settings(cfg: VoiceTranslateRunConfig, stage: str, files: dict) -> dict:
    """The settings of one stage's run over its task's defaults."""
    s, t = cfg.stages, cfg.train
    train = {"max_time": round(t.max_time * s.share_of(stage), 1), "epochs": LONG, "seed": t.seed,
             "threads": t.threads, "progress": t.progress, "tensorboard": t.tensorboard}
    if t.max_steps:
        train["max_steps"] = t.max_steps
    if stage == "asr":
        return {"model": {"hidden": s.asr_hidden},
                "data": {"data": s.asr_data or files["asr_train"], "test_data": "" if s.asr_data else files["asr_test"],
                         **ASR_AUGMENT},
                "train": train}
    if stage == "mt":
        # with the noisy copy, a misheard word seen once becomes <unk>, as unseen words do at test time
        return {"model": {"hidden": s.mt_hidden, "embedding": s.mt_hidden},
                "data": {"data": s.mt_data or files["mt_train"], "min_freq": 2 if s.mt_noise > 0 else 1},
                "train": train}
    if stage == "tts":
        data = {"data": s.tts_data} if s.tts_data else {"lang": "fr", "count": s.tts_count}
        return {"data": data, "train": train}
    if stage == "lm":  # counted, not trained: no time share, no training settings
        return {"data": {"data": files["lm_train"], "tokenizer": "char"},
                "model": {"model": "markov", "order": LM_ORDER}}
    return {"data": {"count": s.asr_count, "grammar": s.speech_grammar, "test_fraction": s.test_fraction,
                     "split_seed": s.data_seed}, "train": train}


def stage_summary(result: Any) -> dict:
    """The numbers of a stage's training result: a dict (asr, tts, speech-translate), translate's
    ``(FitResult, test scores)`` or lm's run (``result``: its fit, ``metrics``), as ``elapsed_s``, ``steps`` and
    ``test_*`` / ``val_*``."""
    if hasattr(result, "metrics") and hasattr(result, "result"):
        return {"elapsed_s": result.result.elapsed_s, **{k: v for k, v in result.metrics.items()
                                                          if isinstance(v, (int, float, str))}}
    if isinstance(result, tuple):
        fit, scores = result
        out = {"elapsed_s": fit.elapsed_s, "steps": fit.steps, "stopped": fit.stopped}
        out.update({f"test_{k}": v for k, v in (scores or {}).items() if k in ("bleu", "chrf", "exact")})
        return out
    return {k: v for k, v in result.items() if isinstance(v, (int, float, str))}


def train_bundle(cfg: VoiceTranslateRunConfig, out: Path, get_task: Callable[[str], Any], log=print) -> dict:
    """Train every stage into ``out/<stage>`` and write the bundle; returns what ``bundle.json`` holds."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = write_data(cfg, out)
    stages = [st for st in ("asr", "mt", "tts", "direct", "lm") if st != "direct" or cfg.stages.direct]
    results = {}
    for stage in stages:
        task = get_task(STAGE_TASKS[stage])
        base = C.merge(dict(task.train_defaults), task.load_preset(cfg.stages.tts_preset) if stage == "tts" else {})
        stage_cfg = C.from_dict(task.run_config, C.merge(base, stage_settings(cfg, stage, files)))
        log(f"== {stage}: rnnkit train {task.name} --out {out / stage} "
            f"(max {stage_cfg.train.max_time:.0f} s of training)", flush=True)
        result = task.train(stage_cfg, out / stage)
        results[stage] = stage_summary(result)
    info = {"task": TASK, "runs": {st: st for st in stages}, "data": files, "results": results,
            "shares": {st: cfg.stages.share_of(st) for st in stages}}
    write_json(out / "bundle.json", info)
    meta = {"config": C.to_dict(cfg), "metadata": {"task": TASK, "runs": info["runs"]}}
    (out / "checkpoints").mkdir(exist_ok=True)
    save_checkpoint(out / "checkpoints" / "best.safetensors", Checkpoint({}, meta))
    return info


def bundle_runs(bundle: str | Path) -> dict[str, Path]:
    """stage -> run directory of a bundle (checked to exist)."""
    bundle = Path(bundle)
    ck = load_checkpoint(find_run_checkpoint(bundle))
    meta = ck.meta.get("metadata", {})
    if meta.get("task") != TASK:
        raise CheckpointError(f"{bundle}: not a voice-translate bundle (task {meta.get('task')!r}); "
                              "train one with `rnnkit train voice-translate --out BUNDLE`")
    root = bundle if bundle.is_dir() else bundle.parent.parent
    runs = {stage: root / rel for stage, rel in meta["runs"].items()}
    missing = [f"{stage} ({p})" for stage, p in runs.items() if not p.is_dir()]
    if missing:
        raise CheckpointError(f"{bundle}: the bundle names runs that are missing: {', '.join(missing)}")
    return runs


def bundle_config(bundle: str | Path) -> VoiceTranslateRunConfig:
    return C.from_dict(VoiceTranslateRunConfig, load_checkpoint(find_run_checkpoint(bundle)).meta["config"])
