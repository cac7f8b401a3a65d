"""Training, loading, BLEU scoring and prediction of direct speech translators.

Run directory::

    RUN/checkpoints/{best,last}.safetensors  weights and normaliser, resolved config, both vocabularies
    RUN/config.yaml, RUN/result.json         the config; test BLEU / chrF and training facts
    RUN/data/{train,val,test}.jsonl          the split as manifests (`rnnkit evaluate RUN --data RUN/data/test.jsonl`)
    RUN/eval/<name>.hyp.jsonl                hypotheses beside references
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.config import ConfigError, save_yaml, to_dict
from rnnkit.data.audio import read_audio
from rnnkit.data.speech_parallel import SpokenPair, read_translation_manifest
from rnnkit.data.vocab import Vocabulary, vocabulary_from_dict
from rnnkit.metrics.translation import corpus_scores
from rnnkit.modules.audio_features import FeatureConfig, FeatureExtractor
from rnnkit.modules.search import SpecialIds, beam_search, greedy_search
from rnnkit.tasks.runs import load_task_checkpoint, write_json
from rnnkit.train import ListData, Trainer, seed_everything
from rnnkit.train.checkpoint import find_run_checkpoint

from .config import SpeechTranslateDecodeConfig, SpeechTranslateRunConfig
from .data import batches, features, fit_vocabularies, french, load_splits, make_batch
from .model import SpeechTranslator, TranslationMeter

TASK = "speech-translate"


def write_manifest(rows: Sequence[SpokenPair], path: Path) -> Path:
    """A JSONL manifest (audio with an absolute path, text, translation) of ``rows``, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps({"audio": str(Path(r.audio).resolve()), "text": r.text,
                                                "translation": r.translation, "voice": r.voice},
                                               ensure_ascii=False) + "\n" for r in rows))
    return path


def train_speech_translate(cfg: SpeechTranslateRunConfig, run_dir: str | Path, *, resume=False, log=print,
                           callbacks=()) -> dict:
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    d, t = cfg.data, cfg.train
    splits = load_splits(d)
    src_vocab, tgt_vocab = fit_vocabularies(splits, d.lowercase)
    extractor = FeatureExtractor(d.feature_config())
    train_feats, val_feats = features(splits.train, extractor), features(splits.val, extractor)
    log(f"{splits.source}: train {len(splits.train)}, validation {len(splits.val)}, test {len(splits.test)} "
        f"utterances; {src_vocab.size} English characters, {tgt_vocab.size} French words")
    for name, rows in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        write_manifest(rows, run_dir / "data" / f"{name}.jsonl")
    model = SpeechTranslator(cfg.model, extractor.config, src_vocab.size, tgt_vocab.size, tgt_vocab.pad_id)
    model.normalizer.fit((x[None], torch.tensor([len(x)])) for x in train_feats)
    meta = {"task": TASK, "source_tokenizer": src_vocab.to_dict(), "target_tokenizer": tgt_vocab.to_dict(),
            "features": extractor.config.to_dict(), "source": splits.source}
    save_yaml(cfg, run_dir / "config.yaml")
    trainer = Trainer(model, t, run_dir=run_dir, meter=lambda: TranslationMeter(tgt_vocab.pad_id),
                      run_config=to_dict(cfg), metadata=meta, callbacks=callbacks)
    fit = trainer.fit(ListData(batches(train_feats, splits.train, src_vocab, tgt_vocab, t.batch_size, d.lowercase),
                               shuffle=True, seed=t.seed),
                      ListData(batches(val_feats, splits.val, src_vocab, tgt_vocab, t.batch_size, d.lowercase)),
                      resume=resume)
    result = {"stopped": fit.stopped, "steps": fit.steps, "elapsed_s": fit.elapsed_s,
              "parameters": sum(p.numel() for p in model.parameters()), "train": len(splits.train),
              "val": len(splits.val), "test": len(splits.test), **fit.best_metrics}
    scores = score(load_speech_translator(run_dir), splits.test, run_dir / "eval" / "test.hyp.jsonl")
    result.update({f"test_{k}": scores[k] for k in ("bleu", "chrf", "exact")})
    write_json(run_dir / "result.json", result)
    return result


# ------------------------------------------------------------------ saved runs

@dataclass
class LoadedSpeechTranslator:
    model: SpeechTranslator
    src_vocab: Vocabulary
    tgt_vocab: Vocabulary
    config: SpeechTranslateRunConfig
    run_dir: Path

    @property
    def extractor(self) -> FeatureExtractor:
        return FeatureExtractor(self.model.features)

    @torch.no_grad()
    def translate_features(self, feats: Sequence[torch.Tensor], decode: SpeechTranslateDecodeConfig | None = None,
                           batch_size: int = 16) -> list[str]:
        """The best French translation of each utterance's features (T, F)."""
        d = decode or self.config.decode
        special = SpecialIds.of(self.tgt_vocab)
        out: list[str] = [""] * len(feats)
        order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])
        device = self.model.normalizer.mean.device
        for k in range(0, len(order), batch_size):
            idx = order[k: k + batch_size]
            b = make_batch([feats[i] for i in idx], idx, None, None, self.tgt_vocab)
            x, lengths = b["feats"].to(device), b["lengths"]
            limits = [d.max_len] * len(idx)
            hyps = (greedy_search(self.model, x, lengths, limits, special=special) if d.beam == 1 else
                    beam_search(self.model, x, lengths, limits, d.beam, 1, d.length_penalty, special=special))
            for i, h in zip(idx, hyps):
                out[i] = self.tgt_vocab.decode(h[0].tokens)
        return out

    def translate_waves(self, waves: Sequence[np.ndarray], **kw) -> list[str]:
        """Translations of mono waveforms at the run's sample rate."""
        ex = self.extractor
        with torch.no_grad():
            feats = [ex(torch.from_numpy(np.asarray(w, dtype=np.float32)))[0][0] for w in waves]
        return self.translate_features(feats, **kw)


def load_speech_translator(run: str | Path, which: str = "best", device="cpu") -> LoadedSpeechTranslator:
    run = Path(run)
    ck, cfg, meta = load_task_checkpoint(find_run_checkpoint(run, which), TASK, SpeechTranslateRunConfig)
    src = vocabulary_from_dict(meta["source_tokenizer"])
    tgt = vocabulary_from_dict(meta["target_tokenizer"])
    model = SpeechTranslator(cfg.model, FeatureConfig.from_dict(meta["features"]), src.size, tgt.size, tgt.pad_id)
    model.load_state_dict(ck.group("model"))
    run_dir = run if run.is_dir() else run.parent.parent
    return LoadedSpeechTranslator(model.to(device).eval(), src, tgt, cfg, run_dir)


def score(loaded: LoadedSpeechTranslator, rows: Sequence[SpokenPair], hyp_out: Path) -> dict:
    """Corpus BLEU / chrF (sacreBLEU) of the translations of ``rows`` against their references; writes
    hypotheses beside references (JSONL)."""
    hyps = loaded.translate_features(features(rows, loaded.extractor))
    refs = [french(r.translation, loaded.config.data.lowercase) for r in rows]
    scores = corpus_scores(hyps, refs)
    hyp_out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(hyp_out, "".join(json.dumps({"audio": str(r.audio), "reference": ref, "hypothesis": hyp},
                                                  ensure_ascii=False) + "\n" for r, ref, hyp in zip(rows, refs, hyps)))
    return {**scores, "hypotheses": str(hyp_out)}


def evaluate_speech_translate(run, data: str, options: dict) -> dict:
    loaded = load_speech_translator(run, options.get("checkpoint") or "best")
    rows = read_translation_manifest(data)
    out = Path(options["hyp_out"]) if options.get("hyp_out") else loaded.run_dir / "eval" / f"{Path(data).stem}.hyp.jsonl"
    s = score(loaded, rows, out)
    return {k: s[k] for k in ("bleu", "chrf", "exact", "n", "hypotheses")}


def predict_speech_translate(run, inputs: Sequence[str], options: dict) -> list[dict]:
    """One ``{"audio", "translation"}`` per audio file (or per row of a ``--file`` manifest)."""
    loaded = load_speech_translator(run, options.get("checkpoint") or "best")
    if options.get("file"):
        files = [r.audio for r in read_translation_manifest(options["file"])]
    elif inputs:
        files = [Path(p) for p in inputs]
    else:
        raise ConfigError("give English audio files to translate (WAV, FLAC or OGG) or --file MANIFEST")
    rate = loaded.model.features.sample_rate
    texts = loaded.translate_waves([read_audio(f, rate) for f in files])
    return [{"audio": str(f), "translation": t} for f, t in zip(files, texts)]
