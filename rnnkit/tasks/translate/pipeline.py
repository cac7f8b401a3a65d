"""Translation and general sequence-to-sequence training: ``rnnkit train translate``.

Pipeline: read pairs (TSV, two aligned files, the embedded English-French phrase book or the
synthetic dates task) -> normalise -> seeded split by source sentence -> tokenizers trained on
the training split -> length filters -> batches -> :class:`rnnkit.train.Trainer` (checkpoints,
early stopping, metrics) -> the average of the last evaluations' weights, kept as the best
checkpoint when it scores better on validation -> BLEU / chrF of the best checkpoint on the
held-out test split, with beam search and greedy.

Run directory::

    RUN/checkpoints/{best,last}.safetensors   weights, resolved config, both tokenizers
    RUN/checkpoints/eval-<update>.safetensors the weights of the last ``train.average`` evaluations
    RUN/data/{train,val,test}.tsv             the split, so `rnnkit evaluate RUN --data RUN/data/test.tsv`
    RUN/eval/test.hyp.txt, test_scores.json   hypotheses and scores after training
    RUN/metrics.jsonl, RUN/plots/             from the trainer
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import List, Optional, Tuple

import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.config import from_dict, load_yaml, merge, save_yaml, to_dict
from rnnkit.data.readers import DataError
from rnnkit.tasks.runs import write_json
from rnnkit.train import FitResult, ListData, Trainer, load_checkpoint, read_meta, save_checkpoint
from rnnkit.train.averaging import KeepLastWeights, average_checkpoints, eval_checkpoints

from .config import PairDataConfig, TranslateRunConfig
from .data import (Pair, encode_pairs, make_batches, normalize_pairs, parse_tsv, read_parallel,
                           read_tsv, split_pairs)
from .dates import date_pairs
from .model import Seq2SeqMeter, Seq2SeqModel
from .translator import TASK, Translator, checkpoint_path
from rnnkit.data.vocab import Vocabulary

from .vocab import build_vocab, load_vocab, special_ids

PHRASEBOOK = "builtin:phrasebook"
DATES = "builtin:dates"
DATES_DEFAULT_PAIRS = 20000


def phrasebook_text() -> str:
    return resources.files("rnnkit.data").joinpath("sets/phrasebook_en_fr.tsv").read_text(encoding="utf-8")


def load_pairs(d: PairDataConfig) -> Tuple[List[Pair], str]:
    """The configured pairs, normalised, and a name for messages."""
    if d.source:
        pairs, name = read_parallel(d.source, d.target, d.bad_lines), f"{d.source} / {d.target}"
    elif d.data in ("", PHRASEBOOK):
        pairs, name = parse_tsv(phrasebook_text(), PHRASEBOOK, on_bad="error"), PHRASEBOOK
    elif d.data == DATES:
        pairs, name = date_pairs(d.max_pairs or DATES_DEFAULT_PAIRS, seed=d.split_seed), DATES
    else:
        pairs, name = read_tsv(d.data, on_bad=d.bad_lines), d.data
    if d.reverse:
        pairs = [Pair(p.target, p.source, p.line) for p in pairs]
    if d.max_pairs:
        pairs = pairs[:d.max_pairs]
    pairs = normalize_pairs(pairs, d.lowercase, d.normalize)
    if d.max_words:
        pairs = [p for p in pairs if len(p.source.split()) <= d.max_words and len(p.target.split()) <= d.max_words]
        if not pairs:
            raise DataError(f"{name}: no pair has at most {d.max_words} words on both sides")
    return pairs, name


@dataclass
class PreparedData:
    train: List[Pair]
    val: List[Pair]
    test: List[Pair]
    src_vocab: Vocabulary
    tgt_vocab: Vocabulary
    train_batches: list
    val_batches: list
    dropped: dict


def prepare_data(pairs: List[Pair], d: PairDataConfig, batch_size: int,
                 vocabs: Optional[Tuple[Vocabulary, Vocabulary]] = None) -> PreparedData:
    """Split, fit tokenizers on the training split (unless ``vocabs`` are given), filter, batch."""
    train, val, test = split_pairs(pairs, d.val_fraction, d.test_fraction, d.split_seed)
    if vocabs is None:
        vocabs = tuple(build_vocab(d.tokenizer, [getattr(p, side) for p in train], d.vocab_size, d.min_freq)
                       for side in ("source", "target"))
    src_vocab, tgt_vocab = vocabs
    train_enc, drop_train = encode_pairs(train, src_vocab, tgt_vocab, d.max_source_len, d.max_target_len)
    val_enc, drop_val = encode_pairs(val, src_vocab, tgt_vocab, d.max_source_len, d.max_target_len)
    if not val_enc:
        raise DataError(f"no validation pairs left (val_fraction={d.val_fraction}, length limits "
                        f"{d.max_source_len}/{d.max_target_len})")
    special = special_ids(tgt_vocab)
    return PreparedData(train, val, test, src_vocab, tgt_vocab, make_batches(train_enc, batch_size, special),
                        make_batches(val_enc, batch_size, special), {"train": drop_train, "val": drop_val})


def write_tsv(pairs: List[Pair], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(f"{p.source}\t{p.target}\n" for p in pairs))


def _saved_vocabs(run_dir: Path, resume: bool | str | Path) -> Tuple[Vocabulary, Vocabulary]:
    """The tokenizers of the checkpoint a run resumes from (``resume``: a path, or True for the last one)."""
    meta = read_meta(checkpoint_path(run_dir, "last") if resume is True else resume)["metadata"]
    return load_vocab(meta["source_tokenizer"]), load_vocab(meta["target_tokenizer"])


def train_translate(cfg: TranslateRunConfig, run_dir: str | Path, resume: bool | str | Path = False,
                    evaluate_test: bool = True, log=print, callbacks=()) -> Tuple[FitResult, Optional[dict]]:
    """Train a sequence-to-sequence model as configured; returns the fit result and test scores."""
    run_dir = Path(run_dir)
    pairs, name = load_pairs(cfg.data)
    data = prepare_data(pairs, cfg.data, cfg.train.batch_size, _saved_vocabs(run_dir, resume) if resume else None)
    log(f"{name}: {len(pairs)} pairs -> train {len(data.train)}, val {len(data.val)}, test {len(data.test)}"
        f" (dropped by length: {data.dropped['train']} train, {data.dropped['val']} val); vocabulary "
        f"{data.src_vocab.size} source / {data.tgt_vocab.size} target {cfg.data.tokenizer} tokens")
    for split in ("train", "val", "test"):
        write_tsv(getattr(data, split), run_dir / "data" / f"{split}.tsv")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")  # as every task: the resolved config beside the checkpoints
    torch.manual_seed(cfg.train.seed)
    model = Seq2SeqModel(cfg.model, data.src_vocab.size, data.tgt_vocab.size, pad_id=data.tgt_vocab.pad_id)
    metadata = {"task": TASK, "source_tokenizer": data.src_vocab.to_dict(),
                "target_tokenizer": data.tgt_vocab.to_dict(), "data": name}
    pad_id = data.tgt_vocab.pad_id
    keep = [KeepLastWeights(cfg.train.average)] if cfg.train.average > 1 else []
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=lambda: Seq2SeqMeter(pad_id),
                      run_config=to_dict(cfg), metadata=metadata, callbacks=[*callbacks, *keep])
    result = trainer.fit(ListData(data.train_batches, shuffle=True, seed=cfg.train.seed),
                         ListData(data.val_batches), resume=resume)
    log(f"stopped after {result.steps} updates ({result.stopped}); best {cfg.train.monitor} {result.best}")
    averaged = average_into_best(trainer, ListData(data.val_batches), result, log) if keep else None
    scores = None
    if evaluate_test and data.test:
        scores = evaluate_run(run_dir, data.test, run_dir / "eval" / "test.hyp.txt", device=str(trainer.device))
        log(format_scores("test (beam %d)" % cfg.decode.beam, scores))
        if cfg.decode.beam > 1:
            greedy = evaluate_run(run_dir, data.test, run_dir / "eval" / "test_greedy.hyp.txt",
                                  device=str(trainer.device), beam=1)
            log(format_scores("test (greedy)", greedy))
            scores.update({f"greedy_{k}": v for k, v in greedy.items() if k != "hypotheses"})
    summary = {"stopped": result.stopped, "steps": result.steps, "elapsed_s": result.elapsed_s,
               "train_s": result.train_s, "parameters": sum(p.numel() for p in model.parameters()),
               **{split: len(getattr(data, split)) for split in ("train", "val", "test")}, **result.best_metrics}
    if averaged is not None:
        summary["averaged"] = averaged
    if scores is not None:
        summary.update({f"test_{k}": v for k, v in scores.items() if k != "hypotheses"})
    write_json(run_dir / "result.json", summary)
    return result, scores


def average_into_best(trainer: Trainer, val: ListData, result: FitResult, log=print) -> Optional[dict]:
    """Average the weights the run kept at its last evaluations (:class:`KeepLastWeights`); when the
    average scores better on ``val`` than the best checkpoint, it is written as the best checkpoint
    (the best's other contents kept, ``averaged`` naming the files). Returns what was done, or None
    when fewer than two evaluations were kept."""
    cfg, run_dir = trainer.cfg, trainer.run_dir
    paths = eval_checkpoints(run_dir)
    if len(paths) < 2 or result.best is None:
        return None
    mean = average_checkpoints(paths)
    trainer.model.load_state_dict(mean.group("model"))
    value = trainer.evaluate(val, cfg.max_eval_batches)[cfg.monitor.removeprefix("val_")]
    better = value < result.best if cfg.monitor_mode == "min" else value > result.best
    summary = {"checkpoints": [p.name for p in paths], cfg.monitor: value, "best_before": result.best,
               "used": better}
    log(f"average of the last {len(paths)} evaluations' weights: {cfg.monitor} {value:.4f} "
        f"(best checkpoint {result.best:.4f}){'; it becomes the best checkpoint' if better else ''}")
    if better:
        best_path = run_dir / "checkpoints" / "best.safetensors"
        best = load_checkpoint(best_path)
        best.tensors.update({k: v for k, v in mean.tensors.items() if k.startswith("model.")})
        best.meta["averaged"] = summary
        save_checkpoint(best_path, best)
    return summary


def evaluate_run(run: str | Path, pairs: List[Pair], out: Optional[Path] = None, device: str = "cpu",
                 which: str = "best", **decode) -> dict:
    """Scores of a run's checkpoint on ``pairs``; writes hypotheses (one per line) to ``out`` and the
    scores beside it (``<name>_scores.json``). ``decode``: :class:`DecodeConfig` fields to override."""
    translator = Translator.load(run, which, device=device)
    scores = translator.evaluate(pairs, **decode)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, "".join(h + "\n" for h in scores["hypotheses"]))
        summary = {k: v for k, v in scores.items() if k != "hypotheses"}
        write_json(out.with_name(out.stem.removesuffix(".hyp") + "_scores.json"), summary)
    return scores


def format_scores(name: str, s: dict) -> str:
    return f"{name}: BLEU {s['bleu']:.2f}  chrF {s['chrf']:.2f}  exact {100 * s['exact']:.1f}%  ({s['n']} sentences)"


def dates_config(**train_overrides) -> TranslateRunConfig:
    """The shipped ``dates`` preset (a small model and character tokens: a short CPU run), without progress
    output; ``train_overrides`` are TrainConfig fields."""
    preset = load_yaml(resources.files("rnnkit.tasks.translate.presets") / "dates.yaml")
    quiet = {"progress": "none", "tensorboard": "off", "log_every": 50}
    return from_dict(TranslateRunConfig, merge(preset, {"train": {**quiet, **train_overrides}}))
