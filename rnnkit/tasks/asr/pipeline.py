"""Training, loading, scoring and transcription of speech recognisers (``rnnkit train asr`` and friends).

Pipeline: manifests or the embedded eSpeak NG set -> transcripts normalised -> character table fitted
on the training transcripts -> audio read and resampled -> log-mel / MFCC features -> normaliser fitted
on the training features (saved in the model's state) -> :class:`~rnnkit.train.Trainer` (checkpoints,
early stopping, metrics, curves) -> WER / CER of the best checkpoint on the test split.

Run directory::

    RUN/checkpoints/{best,last}.safetensors  weights and normaliser, resolved config (features included),
                                             character table
    RUN/config.yaml, RUN/result.json         the config; test WER / CER and training facts
    RUN/data/{train,val,test}.jsonl          the split as manifests (`rnnkit evaluate RUN --data RUN/data/test.jsonl`)
    RUN/eval/<name>.hyp.jsonl, <name>.png    hypotheses beside references; spectrograms with CTC labels
    RUN/metrics.jsonl, RUN/plots/curves.png  from the trainer
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.config import ConfigError, save_yaml, to_dict
from rnnkit.data.readers import DataError
from rnnkit.data.tokenizers import CharTokenizer
from rnnkit.data.vocab import Vocabulary, tokenizer_from_dict
from rnnkit.metrics.asr import asr_scores
from rnnkit.modules.audio_features import FeatureConfig, FeatureExtractor
from rnnkit.modules.ctc import word_timings
from rnnkit.tasks.asr.config import ASRDecodeConfig, ASRRunConfig
from rnnkit.tasks.asr.data import (Splits, TrainingAudio, Utterances, audio_inputs, encode_texts, eval_batches,
                                   featurize, fit_tokenizer, load_splits, load_waves, read_utterances, symbols_of)
from rnnkit.modules.search import SpecialIds
from rnnkit.tasks.asr.decode import Decoding, LMFusion, attention_decode, decode_batch
from rnnkit.tasks.asr.model import CTCMeter, Recognizer
from rnnkit.tasks.asr.plots import ctc_spectrogram
from rnnkit.tasks.runs import load_task_checkpoint, write_json
from rnnkit.train import ListData, Trainer, seed_everything
from rnnkit.train.checkpoint import find_run_checkpoint
from rnnkit.train.runtime import resolve_device, to_device

TASK = "asr"
PLOTS = 3  # utterances drawn by evaluate (spectrogram + CTC labels)
#: loads a language-model run for fusion: path -> object with model, tokenizer, device (Task.load of its task)
LMLoader = Callable[[str], object]


# ----------------------------------------------------------------------- training

@dataclass
class Prepared:
    """What training needs: the splits, the character table and the batches of the training and validation sets."""
    splits: Splits
    tokenizer: Vocabulary
    symbols: list[str]
    train: TrainingAudio
    val_batches: list[dict]
    sizes: dict


def prepare(cfg: ASRRunConfig, run_dir: Path, resume: bool, log=print) -> Prepared:
    """Read the splits, fit the character table, read the audio and featurise; writes RUN/data/*.jsonl."""
    d, t = cfg.data, cfg.train
    splits = load_splits(d, t.seed)
    # the output alphabet covers every split's transcripts (a character seen only in validation or test
    # gets an output the training never rewards, rather than making those utterances unscorable)
    tokenizer = fit_tokenizer(splits.train.texts + splits.val.texts + (splits.test.texts or []))
    if resume:
        _check_same_tokenizer(run_dir, tokenizer)
    features, symbols = d.feature_config(), symbols_of(tokenizer)
    all_labels = [tokenizer.encode(text) for text in splits.train.texts]  # every character is in the table
    train_waves, kept = load_waves(splits.train, d.sample_rate, d.skip_bad)
    train, train_labels = splits.train.subset(kept), [all_labels[i] for i in kept]
    val, val_labels, val_feats = _labelled_features(splits.val, tokenizer, features, d.sample_rate, d.skip_bad)
    skipped = splits.skipped + splits.train.skipped + splits.val.skipped
    log(f"{splits.source}: train {len(train)}, validation {len(val)}, test {len(splits.test)} utterances"
        + (f" ({len(skipped)} skipped: {skipped[0]} ...)" if skipped else "")
        + f"; {sum(map(bool, symbols))} characters {''.join(symbols)!r}")
    for name, utts in (("train", train), ("val", val), ("test", splits.test)):
        if len(utts):
            utts.to_manifest(run_dir / "data" / f"{name}.jsonl")
    training = TrainingAudio(train_waves, train_labels, features, t.batch_size, t.seed)
    return Prepared(splits, tokenizer, symbols, training, eval_batches(val_feats, val_labels, t.batch_size),
                    {"train": len(train), "val": len(val), "test": len(splits.test)})


def train_asr(cfg: ASRRunConfig, run_dir: str | Path, *, resume: bool = False, lm_loader: LMLoader | None = None,
              log=print, callbacks=()) -> dict:
    """Train (or resume) a recogniser as configured; returns the result written to ``result.json``: the test
    split's WER / CER greedy, and with the run's decoding too when that is a beam search (``decode`` section;
    ``lm_loader`` loads its ``decode.lm`` run)."""
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    p = prepare(cfg, run_dir, resume, log)
    model = Recognizer(cfg.model, p.train.config, len(p.symbols), special_ids(p.tokenizer))
    train_feats = p.train.feats or featurize(p.train.extractor, p.train.waves)
    model.normalizer.fit((x[None], torch.tensor([len(x)])) for x in train_feats)
    meta = {"task": TASK, "tokenizer": p.tokenizer.to_dict(), "features": p.train.config.to_dict(),
            "source": p.splits.source, "sizes": p.sizes}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=lambda: CTCMeter(p.symbols, cfg.data.normalizer),
                      run_config=to_dict(cfg), metadata=meta, callbacks=callbacks)
    fit = trainer.fit(p.train, ListData(p.val_batches), resume=resume)
    result = {"stopped": fit.stopped, "steps": fit.steps, "elapsed_s": fit.elapsed_s,
              "parameters": sum(q.numel() for q in model.parameters()), **p.sizes, **fit.best_metrics}
    if len(p.splits.test):
        result.update(score_test(run_dir, p.splits.test, lm_loader))
    write_json(run_dir / "result.json", result)
    return result


def score_test(run_dir: Path, test: Utterances, lm_loader: LMLoader | None) -> dict:
    """``test_wer`` / ``test_cer`` of the best checkpoint, CTC greedy, and ``test_beamN[_lm]_*`` (or
    ``test_attention[_beamN]_*``) with the run's decoding when that is a beam search or the attention decoder;
    hypotheses in RUN/eval/."""
    rec = load_recognizer(run_dir)
    configured = decoding(rec, {}, lm_loader)
    out = {}
    for prefix, how in [("test", Decoding())] + ([(_result_prefix(configured), configured)]
                                                 if configured.beam > 1 or configured.attention else []):
        scores = score(rec, test, how, run_dir / "eval" / f"{prefix}.hyp.jsonl", plots=0)
        out.update({f"{prefix}_{k}": scores[k] for k in ("wer", "cer")}, normalizer=scores["normalizer"])
    return out


def _result_prefix(how: Decoding) -> str:
    if how.attention:
        return "test_attention" + (f"_beam{how.beam}" if how.beam > 1 else "")
    return f"test_beam{how.beam}" + ("_lm" if how.lm is not None else "")


def _labelled_features(utts: Utterances, tokenizer, features, sample_rate: int, skip_bad: bool):
    """(utterances kept, their label ids, their feature frames); what is skipped is recorded in ``utts.skipped``."""
    labels, kept = encode_texts(tokenizer, utts, skip_bad)
    labelled = utts.subset(kept)
    waves, readable = load_waves(labelled, sample_rate, skip_bad)
    utts.skipped += labelled.skipped
    return (labelled.subset(readable), [labels[i] for i in readable],
            featurize(FeatureExtractor(features), waves))


def _check_same_tokenizer(run_dir: Path, tokenizer: Vocabulary) -> None:
    saved = load_task_checkpoint(run_dir, TASK, ASRRunConfig)[2]["tokenizer"]
    if saved != tokenizer.to_dict():
        raise DataError(f"{run_dir}: the training transcripts changed since this run started (its characters "
                        "differ); resume needs the same data")


# ------------------------------------------------------------------ saved runs

@dataclass
class LoadedRecognizer:
    model: Recognizer
    tokenizer: Vocabulary | CharTokenizer  # an old run: its bare character table
    symbols: list[str]
    config: ASRRunConfig
    run_dir: Path

    @property
    def extractor(self) -> FeatureExtractor:
        return FeatureExtractor(self.model.features)

    @property
    def frame_seconds(self) -> float:
        f = self.model.features
        return f.hop_length / f.sample_rate * self.model.subsampling

    def text(self, ids: Sequence[int]) -> str:
        return "".join(self.symbols[int(i)] for i in ids)


def special_ids(tokenizer: Vocabulary | CharTokenizer) -> SpecialIds | None:
    """The character table's <pad>, <s>, </s> ids (an old run's bare table has none)."""
    return SpecialIds.of(tokenizer) if isinstance(tokenizer, Vocabulary) else None


def load_recognizer(run: str | Path, which: str = "best", device: str | torch.device = "cpu") -> LoadedRecognizer:
    """The recogniser of a run on ``device`` (features are computed on the CPU, decoding reads CPU logits)."""
    run = Path(run)
    ck, cfg, meta = load_task_checkpoint(find_run_checkpoint(run, which), TASK, ASRRunConfig)
    tokenizer = tokenizer_from_dict(meta["tokenizer"])
    model = Recognizer(cfg.model, FeatureConfig.from_dict(meta["features"]), len(symbols_of(tokenizer)),
                       special_ids(tokenizer))
    model.load_state_dict(ck.group("model"))
    run_dir = run if run.is_dir() else run.parent.parent
    return LoadedRecognizer(model.to(device).eval(), tokenizer, symbols_of(tokenizer), cfg, run_dir)


def decoding(rec: LoadedRecognizer, options: dict, lm_loader: LMLoader | None) -> Decoding:
    """The decoding of the run's ``decode`` section with the flags given in ``options`` over it."""
    d: ASRDecodeConfig = rec.config.decode
    pick = lambda key, default: default if options.get(key) is None else options[key]  # noqa: E731
    lm_run = pick("lm", d.lm)
    beam = pick("beam", d.beam)
    head = pick("head", d.head)
    has_decoder = rec.model.decoder is not None
    if head == "attention" and not has_decoder:
        raise ConfigError(f"--head attention: {rec.run_dir} has no attention decoder (train with --decoder "
                          "attention); use --head ctc")
    attention = head == "attention" or (head == "auto" and has_decoder and not lm_run)
    lm = None
    if lm_run:
        if beam < 2:
            raise ConfigError("--lm fuses a language model into the beam search: give --beam N with N >= 2")
        if lm_loader is None:
            raise ConfigError("--lm needs a loader of language-model runs (the registry's asr task has one)")
        lm = LMFusion(lm_loader(lm_run), rec.symbols, name=str(lm_run))
    return Decoding(beam=beam, lm=lm, lm_weight=pick("lm_weight", d.lm_weight),
                    insertion_bonus=pick("insertion_bonus", d.insertion_bonus), attention=attention)


def logits_decoder(rec: LoadedRecognizer, options: dict, lm_loader: LMLoader | None) -> Callable[[torch.Tensor], list]:
    """A function from one utterance's CTC frame scores (T', V) to its label ids, decoded as ``options`` (``beam``,
    ``lm``, ``lm_weight``, ``insertion_bonus``) over the run's ``decode`` section say; for callers that run the
    recogniser themselves (the voice-translation cascade). The CTC head always: the scores are its."""
    how = decoding(rec, {**options, "head": "ctc"}, lm_loader)

    def decode(logits: torch.Tensor) -> list:
        return decode_batch(logits[None], torch.tensor([logits.shape[0]]), how)[0]

    return decode


@dataclass
class Transcript:
    text: str
    words: list | None        # WordTiming per word (with timings)
    logits: torch.Tensor      # (T', V)
    feats: torch.Tensor       # (T, F) features before normalisation
    seconds: float            # audio duration


@torch.no_grad()
def transcribe(rec: LoadedRecognizer, utts: Utterances, how: Decoding, timings: bool = False,
               batch_size: int = 16, skip_bad: bool = False) -> tuple[list[Transcript], list[int]]:
    """Transcripts of each readable utterance, and the indices of ``utts`` they belong to."""
    sr = rec.model.features.sample_rate
    waves, kept = load_waves(utts, sr, skip_bad)
    feats = featurize(rec.extractor, waves)
    out: dict[int, Transcript] = {}
    for batch in eval_batches(feats, None, batch_size):
        batch = to_device(batch, rec.model.normalizer.mean.device)
        o = rec.model(batch)
        o.logits, o.lengths = o.logits.float().cpu(), o.lengths.cpu()
        decoded = (attention_decode(rec.model, batch["feats"], batch["lengths"], how.beam) if how.attention
                   else decode_batch(o.logits, o.lengths, how))
        for k, ids in enumerate(decoded):
            i = int(batch["index"][k])
            logits = o.logits[k, : int(o.lengths[k])]
            words = word_timings(logits, rec.symbols, rec.frame_seconds) if timings else None
            out[i] = Transcript(rec.text(ids), words, logits, feats[i], len(waves[i]) / sr)
    return [out[i] for i in range(len(feats))], kept


def score(rec: LoadedRecognizer, utts: Utterances, how: Decoding, hyp_out: Path, plots: int = PLOTS,
          skip_bad: bool = False) -> dict:
    """Corpus WER / CER on labelled utterances; writes hypotheses beside references (JSONL) and spectrograms."""
    _, kept = encode_texts(rec.tokenizer, utts, skip_bad)
    utts_kept = utts.subset(kept)
    results, kept = transcribe(rec, utts_kept, how, skip_bad=skip_bad)
    utts_kept.skipped += utts.skipped
    refs = [utts_kept.texts[i] for i in kept]
    hyps = [r.text for r in results]
    s = asr_scores(refs, hyps, rec.config.data.normalizer)
    hyp_out.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"audio": str(utts_kept.audio[i]), "reference": ref, "hypothesis": hyp}
            for i, ref, hyp in zip(kept, refs, hyps)]
    atomic_write_text(hyp_out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    pngs = []
    for k, r in enumerate(results[:plots]):
        name = hyp_out.name.removesuffix(".hyp.jsonl")
        pngs.append(str(ctc_spectrogram(r.feats, r.logits, rec.symbols, rec.model.subsampling,
                                        hyp_out.parent / f"{name}-{k + 1}.png",
                                        title=f"ref: {refs[k]}\nhyp: {r.text}")))
    return {"wer": s.wer, "cer": s.cer, "normalizer": s.normalizer, "utterances": s.utterances,
            "reference_words": s.reference_words, "skipped": len(utts_kept.skipped), "decoding": how.name,
            "hypotheses": str(hyp_out), "plots": pngs}


def evaluate_asr(run: str | Path, data: str, options: dict, lm_loader: LMLoader | None = None) -> dict:
    rec = load_recognizer(run, options.get("checkpoint") or "best", resolve_device(options.get("device") or "cpu"))
    skip_bad = bool(options.get("skip_bad"))
    utts = read_utterances(data, rec.config.data.normalizer, skip_bad)
    how = decoding(rec, options, lm_loader)
    out = Path(options["hyp_out"]) if options.get("hyp_out") else rec.run_dir / "eval" / f"{Path(data).stem}.hyp.jsonl"
    return score(rec, utts, how, out, skip_bad=skip_bad)


def predict_asr(run: str | Path, inputs: Sequence[str], options: dict, lm_loader: LMLoader | None = None) -> list[dict]:
    """One ``{"audio", "text", "seconds"[, "words"]}`` per audio file (or per entry of ``options["file"]``)."""
    rec = load_recognizer(run, options.get("checkpoint") or "best", resolve_device(options.get("device") or "cpu"))
    if options.get("file"):
        utts = read_utterances(options["file"], rec.config.data.normalizer, bool(options.get("skip_bad")))
        utts.texts = None
    elif inputs:
        utts = audio_inputs(inputs)
    else:
        raise ConfigError("give audio files to transcribe (WAV, FLAC or OGG) or --file MANIFEST")
    how = decoding(rec, options, lm_loader)
    results, kept = transcribe(rec, utts, how, timings=bool(options.get("timings")),
                               skip_bad=bool(options.get("skip_bad")))
    rows = []
    for i, r in zip(kept, results):
        row = {"audio": str(utts.audio[i]), "text": r.text, "seconds": round(r.seconds, 3)}
        if r.words is not None:
            row["words"] = [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)} for w in r.words]
        if options.get("plot"):
            row["plot"] = str(ctc_spectrogram(r.feats, r.logits, rec.symbols, rec.model.subsampling,
                                              Path(options["plot"]) / f"{Path(utts.audio[i]).stem}.png", title=r.text))
        rows.append(row)
    return rows
