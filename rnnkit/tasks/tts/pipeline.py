"""Training, loading, synthesis and scoring of text-to-speech runs (``rnnkit train tts`` and friends).

Pipeline: manifest, LJSpeech folder or the embedded eSpeak NG corpus -> texts normalised (en / fr) ->
characters or phonemes -> symbol table fitted on every split -> audio read, resampled, log-mel frames,
silence trimmed -> mel normaliser fitted on the training frames (saved in the model's state) ->
:class:`~rnnkit.train.Trainer` (checkpoints, resume, metrics, curves) -> test split scored: mel cepstral
distortion and monotonic-alignment rate of free-running synthesis.

Run directory::

    RUN/checkpoints/{best,last}.safetensors  weights and normaliser, resolved config, symbol table, features
    RUN/config.yaml, RUN/result.json         the config; test scores and training facts
    RUN/data/{train,val,test}.jsonl          the split as manifests (`rnnkit evaluate RUN --data RUN/data/test.jsonl`)
    RUN/eval/<name>/NNN.wav, NNN.png, scores.jsonl   synthesised audio, alignment + mel plots, per-utterance scores
    RUN/metrics.jsonl, RUN/plots/curves.png  from the trainer
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.config import ConfigError, save_yaml, to_dict
from rnnkit.data.audio import write_wav
from rnnkit.data.readers import DataError, text_lines
from rnnkit.data.speech_text import normalize_text, split_sentences
from rnnkit.data.vocab import Vocabulary, vocabulary_from_dict
from rnnkit.metrics.asr import asr_scores
from rnnkit.metrics.tts import check_alignment, mel_cepstral_distortion
from rnnkit.modules.audio_features import FeatureConfig
from rnnkit.modules.vocoder import Vocoder
from rnnkit.tasks.runs import load_task_checkpoint, write_json
from rnnkit.tasks.tts.config import TTSRunConfig
from rnnkit.tasks.tts.data import (Corpus, batches, encode, fit_vocabulary, load_mels, load_splits, read_corpus,
                                   text_symbols)
from rnnkit.tasks.tts.model import SynthMeter, Synthesiser
from rnnkit.tasks.tts.plots import alignment_and_mels
from rnnkit.train import ListData, Trainer, seed_everything
from rnnkit.train.checkpoint import find_run_checkpoint

TASK = "tts"
PLOTS = 3  # utterances drawn by evaluate
MCD_CEPSTRA = 24  # c1..c24 (fewer with fewer mel bins)
#: transcribes audio files with a speech-recognition run: (run, wav paths) -> one text per file
Transcriber = Callable[[str, list[str]], list[str]]


# ----------------------------------------------------------------------- training

def _encoded(corpus: Corpus, vocab: Vocabulary, strings: Sequence[str]) -> list[list[int]]:
    return [encode(vocab, s, w) for s, w in zip(strings, corpus.wheres)]


def train_tts(cfg: TTSRunConfig, run_dir: str | Path, *, resume: bool = False, log=print, callbacks=()) -> dict:
    run_dir = Path(run_dir)
    d, t = cfg.data, cfg.train
    seed_everything(t.seed)
    splits = load_splits(d, t.seed)
    strings = {name: [text_symbols(s, d.symbols, d.resolved_voice) for s in c.normalised]
               for name, c in (("train", splits.train), ("val", splits.val), ("test", splits.test))}
    vocab = fit_vocabulary(strings["train"] + strings["val"] + strings["test"])
    if resume:
        saved = load_task_checkpoint(run_dir, TASK, TTSRunConfig)[2]["vocabulary"]
        if saved != vocab.to_dict():
            raise DataError(f"{run_dir}: the training texts changed since this run started (their symbols "
                            "differ); resume needs the same data")
    features = d.features()
    train_mels, kept = load_mels(splits.train, features, d)
    train_ids = [_encoded(splits.train, vocab, strings["train"])[i] for i in kept]
    val_mels, val_kept = load_mels(splits.val, features, d)
    val_ids = [_encoded(splits.val, vocab, strings["val"])[i] for i in val_kept]
    skipped = splits.train.skipped + splits.val.skipped
    seconds = sum(len(m) for m in train_mels) * features.hop_length / features.sample_rate
    log(f"{splits.source}: train {len(train_mels)} ({seconds / 60:.1f} min), validation {len(val_mels)}, test "
        f"{len(splits.test)} utterances" + (f" ({len(skipped)} skipped: {skipped[0]} ...)" if skipped else "")
        + f"; {len(symbol_set(vocab))} {d.symbols} {''.join(symbol_set(vocab))!r}")
    for name, corpus in (("train", splits.train.subset(kept)), ("val", splits.val.subset(val_kept)),
                         ("test", splits.test)):
        if len(corpus):
            corpus.to_manifest(run_dir / "data" / f"{name}.jsonl")

    model = Synthesiser(cfg.model, len(vocab), features.n_mels, vocab.pad_id)
    model.normalizer.fit((m[None], torch.tensor([len(m)])) for m in train_mels)
    meta = {"task": TASK, "vocabulary": vocab.to_dict(), "features": features.to_dict(), "source": splits.source,
            "sizes": {"train": len(train_mels), "val": len(val_mels), "test": len(splits.test)}}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    trainer = Trainer(model, t, run_dir=run_dir, meter=SynthMeter, run_config=to_dict(cfg), metadata=meta,
                      callbacks=callbacks)
    train_data = ListData(batches(train_ids, train_mels, t.batch_size, model.reduction), shuffle=True, seed=t.seed)
    fit = trainer.fit(train_data, ListData(batches(val_ids, val_mels, t.batch_size, model.reduction)), resume=resume)
    result = {"stopped": fit.stopped, "steps": fit.steps, "elapsed_s": fit.elapsed_s, "train_seconds": seconds,
              "parameters": sum(p.numel() for p in model.parameters()), **meta["sizes"], **fit.best_metrics}
    if len(splits.test):
        scores = score(load_tts(run_dir), splits.test, run_dir / "eval" / "test", plots=PLOTS)
        result.update({f"test_{k}": v for k, v in scores.items() if isinstance(v, (int, float))})
    write_json(run_dir / "result.json", result)
    return result


# ------------------------------------------------------------------ saved runs

@dataclass
class LoadedTTS:
    """A trained synthesiser with what it needs to read text and write audio."""
    model: Synthesiser
    vocab: Vocabulary
    config: TTSRunConfig
    features: FeatureConfig
    run_dir: Path

    @property
    def sample_rate(self) -> int:
        return self.features.sample_rate

    @property
    def lang(self) -> str:
        return self.config.data.lang


def load_tts(run: str | Path, which: str = "best", device: str = "cpu") -> LoadedTTS:
    run = Path(run)
    ck, cfg, meta = load_task_checkpoint(find_run_checkpoint(run, which), TASK, TTSRunConfig)
    vocab = vocabulary_from_dict(meta["vocabulary"])
    features = FeatureConfig.from_dict(meta["features"])
    model = Synthesiser(cfg.model, len(vocab), features.n_mels, vocab.pad_id)
    model.load_state_dict(ck.group("model"))
    run_dir = run if run.is_dir() else run.parent.parent
    return LoadedTTS(model.to(device).eval(), vocab, cfg, features, run_dir)


# ------------------------------------------------------------------ synthesis

@dataclass
class Sentence:
    text: str                 # normalised sentence
    symbols: str              # what the model read: the sentence, or its phonemes (then the end symbol)
    mel: torch.Tensor         # (T, M) log-mel, denormalised
    alignment: torch.Tensor   # (steps, N)
    stopped: bool
    seconds_model: float      # acoustic model time (wall clock)
    cpu_model: float          # acoustic model time (this process's CPU time: what an idle machine would take
                              # on as many threads)


def symbol_set(vocab: Vocabulary) -> list[str]:
    """The symbols a run reads (the vocabulary's single characters, specials left out)."""
    return sorted(t for t in vocab.index if len(t) == 1)


#: punctuation a run was not trained on is read as the nearest pause mark it knows (prosody, not words)
PAUSE_MARKS = {";": ",.", ":": ",.", "!": ".", "?": ".", ",": ".", "-": " ", "'": ""}


def known_punctuation(text: str, known: set) -> str:
    """``text`` with each punctuation mark outside ``known`` replaced by its first known stand-in of
    :data:`PAUSE_MARKS` (or dropped when none is known)."""
    out = []
    for c in text:
        if c in PAUSE_MARKS and c not in known:
            c = next((s for s in PAUSE_MARKS[c] if s in known), "")
        out.append(c)
    return "".join(out)


def sentences_of(loaded: LoadedTTS, text: str) -> list[tuple[str, str, list[int]]]:
    """(normalised sentence, its symbols, their ids) of each sentence ``text`` is cut into (never truncated)."""
    if not text or not text.strip():
        raise ConfigError("no text to speak: give a non-empty text")
    d = loaded.config.data
    known = set(loaded.vocab.index)
    normalised = normalize_text(text, d.lang)
    if d.symbols == "chars":
        normalised = known_punctuation(normalised, known)
    readable = [c for c in normalised if c in known and c != " "]
    if not readable:
        raise ConfigError(f"{text!r}: none of its characters can be spoken by this {d.lang} run (after "
                          f"normalisation: {normalised!r}); it reads {''.join(symbol_set(loaded.vocab))!r}")
    out = []
    for sentence in split_sentences(normalised, d.max_chars):
        symbols = text_symbols(sentence, d.symbols, d.resolved_voice)
        try:
            out.append((sentence, symbols, encode(loaded.vocab, symbols, "text")))
        except DataError as err:
            raise ConfigError(str(err)) from err
    return out


@torch.no_grad()
def synthesize_sentences(loaded: LoadedTTS, text: str) -> list[Sentence]:
    """The acoustic model's frames and alignment for each sentence of ``text``."""
    model, s = loaded.model, loaded.config.synth
    device = model.normalizer.mean.device
    out = []
    for sentence, symbols, ids in sentences_of(loaded, text):
        t0, c0 = time.perf_counter(), time.process_time()
        max_steps = max(2, int(len(ids) * s.max_frames_per_symbol / model.reduction))
        syn = model.tacotron.infer(torch.tensor(ids, device=device), max_steps, s.stop_threshold)
        mel = syn.mel * model.normalizer.std + model.normalizer.mean                     # (T, M)
        out.append(Sentence(sentence, symbols, mel.cpu(), syn.alignment.cpu(), syn.stopped, time.perf_counter() - t0,
                            time.process_time() - c0))
    return out


def vocode(loaded: LoadedTTS, sentences: Sequence[Sentence], speed: float = 1.0, pitch_shift: float = 0.0,
           vocoder: str | None = None) -> np.ndarray:
    """The sentences' waveforms joined with the run's pause between them (float32, the run's rate)."""
    voc = Vocoder(loaded.features, loaded.config.synth.vocoder_config(vocoder))
    pause = np.zeros(int(loaded.config.synth.pause * loaded.sample_rate / speed), dtype=np.float32)
    waves = []
    for k, sentence in enumerate(sentences):
        if k:
            waves.append(pause)
        waves.append(voc(sentence.mel, speed, pitch_shift))
    return np.concatenate(waves).astype(np.float32)


def synthesize(loaded: LoadedTTS, text: str, *, speed: float = 1.0, pitch_shift: float = 0.0
               ) -> tuple[np.ndarray, int]:
    """``(wave float32 mono (N,), sample_rate)`` of ``text`` read by the run ``loaded``
    (``TASKS["tts"].load(run)``); ``speed`` > 1 speaks faster, ``pitch_shift`` in semitones.

    A sentence whose stop token did not fire before the frame limit is still returned, with a warning
    on stderr naming it."""
    sentences = synthesize_sentences(loaded, text)
    for s in sentences:
        if not s.stopped:
            print(f"warning: the stop token did not fire for {s.text!r}; its audio ends at the frame limit "
                  f"({loaded.config.synth.max_frames_per_symbol} frames per symbol)", file=sys.stderr)
    return vocode(loaded, sentences, speed, pitch_shift), loaded.sample_rate


# ------------------------------------------------------------------ scoring

def score(loaded: LoadedTTS, corpus: Corpus, out_dir: Path, plots: int = PLOTS, vocoder: str | None = None,
          asr: str = "", transcriber: Transcriber | None = None) -> dict:
    """Synthesise each text of ``corpus``: MCD against its recording, the monotonic-alignment rate, the
    real-time factors, and with ``asr`` the CER of that recogniser on the synthesised audio."""
    ref_mels, kept = load_mels(corpus, loaded.features, loaded.config.data, check_length=False)
    corpus = corpus.subset(kept)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, wavs = [], []
    model_s = vocoder_s = audio_s = model_cpu = vocoder_cpu = 0.0
    for k, (text, ref) in enumerate(zip(corpus.texts, ref_mels)):
        torch.manual_seed(k)  # the prenet's dropout stays on at synthesis: seeded, scores repeat
        sentences = synthesize_sentences(loaded, text)
        t0, c0 = time.perf_counter(), time.process_time()
        wave = vocode(loaded, sentences, vocoder=vocoder)
        vocoder_s += time.perf_counter() - t0
        vocoder_cpu += time.process_time() - c0
        model_s += sum(s.seconds_model for s in sentences)
        model_cpu += sum(s.cpu_model for s in sentences)
        audio_s += len(wave) / loaded.sample_rate
        mel = torch.cat([s.mel for s in sentences]).numpy()
        checks = [check_alignment(s.alignment.numpy(), s.symbols, s.stopped) for s in sentences]
        wav = write_wav(out_dir / f"{k:03d}.wav", wave, loaded.sample_rate)
        wavs.append(str(wav))
        rows.append({"text": text, "reference_audio": str(corpus.audio[k]), "audio": str(wav),
                     "mcd": mel_cepstral_distortion(ref.numpy(), mel, min(MCD_CEPSTRA, mel.shape[1] - 1)), "monotonic": all(c.monotonic for c in checks),
                     "alignment": "; ".join(c.reason for c in checks if c.reason)})
        if k < plots:
            rows[-1]["plot"] = str(alignment_and_mels(sentences[0].alignment, sentences[0].mel, ref,
                                                      out_dir / f"{k:03d}.png", title=text))
    result = {"utterances": len(rows), "mcd": float(np.mean([r["mcd"] for r in rows])),
              "monotonic_rate": float(np.mean([r["monotonic"] for r in rows])),
              "rtf_acoustic": model_s / max(audio_s, 1e-9), "rtf_vocoder": vocoder_s / max(audio_s, 1e-9),
              "cpu_rtf_acoustic": model_cpu / max(audio_s, 1e-9), "cpu_rtf_vocoder": vocoder_cpu / max(audio_s, 1e-9),
              "threads": torch.get_num_threads(),
              "audio_seconds": audio_s, "vocoder": vocoder or loaded.config.synth.vocoder,
              "skipped": len(corpus.skipped), "dir": str(out_dir)}
    if asr:
        if transcriber is None:
            raise ConfigError("--asr needs a loader of speech-recognition runs (the registry's tts task has one)")
        hyps = transcriber(asr, wavs)
        # references: the normalised text (numbers in words), what the synthesiser was asked to say
        s = asr_scores([corpus.normalised[k] for k in range(len(rows))], hyps, "basic")
        result.update(asr_cer=s.cer, asr_wer=s.wer, asr_run=str(asr))
        for r, h in zip(rows, hyps):
            r["asr_hypothesis"] = h
    atomic_write_text(out_dir / "scores.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return result


def evaluate_tts(run: str | Path, data: str, options: dict, transcriber: Transcriber | None = None) -> dict:
    loaded = load_tts(run, options.get("checkpoint") or "best")
    corpus = read_corpus(data, loaded.lang, bool(options.get("skip_bad")))
    out = Path(options["wav_dir"]) if options.get("wav_dir") else loaded.run_dir / "eval" / Path(data).stem
    return score(loaded, corpus, out, vocoder=options.get("vocoder"), asr=options.get("asr") or "",
                 transcriber=transcriber)


def predict_tts(run: str | Path, inputs: Sequence[str], options: dict) -> list[dict]:
    """One WAV per input text, written to ``options["wav_dir"]`` (a folder; default RUN/speak/)."""
    loaded = load_tts(run, options.get("checkpoint") or "best")
    if options.get("file"):
        path = Path(options["file"])
        if not path.is_file():
            raise DataError(f"{path}: no such text file (expected one text to speak per line)")
        inputs = [line for line in text_lines(path.read_text(encoding="utf-8")) if line.strip()]
    if not inputs:
        raise ConfigError("give texts to speak, or --file TEXTS.txt (one text per line)")
    folder = Path(options.get("wav_dir") or loaded.run_dir / "speak")
    rows = []
    for k, text in enumerate(inputs):
        sentences = synthesize_sentences(loaded, text)
        wave = vocode(loaded, sentences, float(options.get("speed") or 1.0), float(options.get("pitch_shift") or 0.0),
                      options.get("vocoder"))
        path = write_wav(folder / f"{k:03d}.wav", wave, loaded.sample_rate)
        rows.append({"text": text, "audio": str(path), "seconds": round(len(wave) / loaded.sample_rate, 3),
                     "sentences": len(sentences), "stopped": all(s.stopped for s in sentences)})
    return rows
