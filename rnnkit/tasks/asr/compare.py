"""``rnnkit compare asr``: CTC and Listen, Attend and Spell decodings on the same test split, one table.

Two runs are trained with the same data, split, seed, features and training settings (``OUT/ctc``:
``decoder=ctc``; ``OUT/las``: ``decoder=attention`` with its auxiliary CTC head), then the test split
that both wrote is decoded four ways::

    ctc greedy               best path, repeats and blanks removed
    ctc beam K               CTC prefix beam search
    ctc beam K + LM          ... with shallow fusion of a character LM: the ``decode.lm`` run when one is set
                             (``--set decode.lm=RUN``), else a Kneser-Ney 5-gram counted on the training
                             transcripts
    las beam K               the attention decoder's beam search

Each row: WER and CER (corpus level, the run's normaliser), ``decode_s`` (wall seconds to featurise, run
and decode the whole test split on this process's threads), parameters and training time of the run it
decodes. K is ``decode.beam`` when it is above 1, else :data:`DEFAULT_BEAM`. Without ``--data`` the
embedded short sentences are spoken (held-out voices for the test split).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from rnnkit import config as C
from rnnkit.tasks.asr.data import encode_texts, read_utterances
from rnnkit.tasks.asr.decode import Decoding, LMFusion, NgramFusion
from rnnkit.tasks.asr.pipeline import LoadedRecognizer, load_recognizer, score
from rnnkit.tasks.compare import out_dir, overrides
from rnnkit.tasks.runs import write_json

DEFAULT_BEAM = 8
NGRAM_ORDER = 5
METRICS = ("wer", "cer", "decode_s")


def configs(task, args: argparse.Namespace) -> dict:
    """The two runs' configs: the task's defaults, the short sentences without --data, the flags, the decoder."""
    base = C.merge(task.train_defaults, {"data": {"dataset": "sentences"}})
    base = C.merge(base, overrides(args))
    return {name: C.from_dict(task.run_config, C.merge(base, {"model": {"decoder": decoder}}))
            for name, decoder in (("ctc", "ctc"), ("las", "attention"))}


def training_lm(rec: LoadedRecognizer, run_dir: Path) -> NgramFusion:
    """A Kneser-Ney n-gram over the label ids of the run's training transcripts (RUN/data/train.jsonl)."""
    train = read_utterances(run_dir / "data" / "train.jsonl", rec.config.data.normalizer)
    labels, _ = encode_texts(rec.tokenizer, train)
    return NgramFusion.fit(labels, len(rec.symbols), NGRAM_ORDER)


def _row(name: str, rec: LoadedRecognizer, test, how: Decoding, result: dict, hyp_out: Path) -> dict:
    t0 = time.perf_counter()
    s = score(rec, test, how, hyp_out, plots=0)
    return {"model": name, "wer": s["wer"], "cer": s["cer"], "decode_s": time.perf_counter() - t0,
            "decoding": s["decoding"], "utterances": s["utterances"],
            "parameters": result["parameters"], "train_s": result["elapsed_s"]}


def compare_asr(task, args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    out = out_dir(args)
    cfgs = configs(task, args)
    results = {}
    for name, cfg in cfgs.items():
        print(f"== {name}", flush=True)
        results[name] = task.train(cfg, out / name)
    test_manifest = out / "ctc" / "data" / "test.jsonl"
    if not test_manifest.is_file():
        raise C.ConfigError("compare asr needs a test split: give --data with a test share "
                            "(--set data.test_fraction=0.1) or --set data.test_data=MANIFEST")
    ctc, las = load_recognizer(out / "ctc"), load_recognizer(out / "las")
    d = cfgs["ctc"].decode
    beam = d.beam if d.beam > 1 else DEFAULT_BEAM
    if d.lm:
        if task.lm_loader is None:
            raise C.ConfigError("decode.lm needs a loader of language-model runs (the registry's asr task has one)")
        lm, lm_name = LMFusion(task.lm_loader(d.lm), ctc.symbols, name=d.lm), "LM"
    else:
        lm, lm_name = training_lm(ctc, out / "ctc"), f"{NGRAM_ORDER}-gram"
    test = read_utterances(test_manifest, ctc.config.data.normalizer)
    evals = out / "eval"
    rows = [
        _row("ctc greedy", ctc, test, Decoding(), results["ctc"], evals / "ctc-greedy.hyp.jsonl"),
        _row(f"ctc beam {beam}", ctc, test, Decoding(beam=beam), results["ctc"], evals / "ctc-beam.hyp.jsonl"),
        _row(f"ctc beam {beam} + {lm_name}", ctc, test,
             Decoding(beam=beam, lm=lm, lm_weight=d.lm_weight, insertion_bonus=d.insertion_bonus),
             results["ctc"], evals / "ctc-beam-lm.hyp.jsonl"),
        _row(f"las beam {beam}", las, test, Decoding(beam=beam, attention=True), results["las"],
             evals / "las-beam.hyp.jsonl"),
    ]
    write_json(out / "compare.json", rows)
    return rows, ["model", *METRICS, "parameters", "train_s"]
