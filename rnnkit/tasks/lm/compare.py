"""``rnnkit compare lm``: each recurrent cell and Kneser-Ney n-gram models of ``--orders``, same tokenizer,
scored on the same validation text."""
from __future__ import annotations

import argparse
import math
import time

from rnnkit import config as C
from rnnkit.data.vocab import Vocabulary
from rnnkit.tasks.baselines.markov import KneserNey
from rnnkit.tasks.compare import out_dir, overrides
from rnnkit.tasks.lm.config import LMRunConfig
from rnnkit.tasks.lm.data import load_corpus
from rnnkit.tasks.lm.model import load_run, train_lm
from rnnkit.tasks.runs import write_json

METRICS = ["val_ppl", "val_bpc"]


def compare_lm(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    out = out_dir(args)
    over = overrides(args)
    data = over.pop("data", {})
    if "dataset" in data or "target" in data:
        raise C.ConfigError("compare lm takes --data FILE|DIR (text), not --dataset / --target")
    over = C.merge(over, {"data": data} if data else {})
    rows = []
    for cell in [c for c in args.cells.split(",") if c]:
        cfg = C.from_dict(LMRunConfig, C.merge(over, {"model": {"cell": cell}}))
        print(f"== {cell}", flush=True)
        run = train_lm(cfg, out / cell)
        params = sum(p.numel() for p in load_run(out / cell).model.parameters())
        rows.append({"model": cell, "val_ppl": run.metrics["val_ppl"], "val_bpc": run.metrics["val_bpc"],
                     "parameters": params, "train_s": run.result.elapsed_s})
    cfg = C.from_dict(LMRunConfig, over)
    for order in [int(o) for o in args.orders.split(",") if o]:
        rows.append(markov_row(cfg, order))
    write_json(out / "compare.json", rows)
    return rows, ["model"] + METRICS + ["parameters", "train_s"]


def markov_row(cfg: LMRunConfig, order: int) -> dict:
    """A Kneser-Ney n-gram model on the LM task's corpus and tokenizer, scored on its validation text."""
    corpus = load_corpus(cfg.data)
    tok = Vocabulary.build(cfg.data.tokenizer, corpus.train, cfg.data.vocab_size, cfg.data.min_freq)
    t0 = time.perf_counter()
    model = KneserNey(order, tok.vocab_size).fit(tok.encode(d) for d in corpus.train)
    elapsed = time.perf_counter() - t0
    nll, n = model.cross_entropy(tok.encode(d) for d in corpus.val)
    chars = sum(len(d) for d in corpus.val)
    return {"model": f"markov-{order}", "val_ppl": math.exp(nll), "val_bpc": nll * n / chars / math.log(2),
            "parameters": model.parameters, "train_s": elapsed}
