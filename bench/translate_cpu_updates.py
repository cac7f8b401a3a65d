"""Seconds per training update of translation models on one CPU thread (what the short-budget
profile of ``rnnkit train translate`` was chosen from; docs/translate.md).

    python bench/translate_cpu_updates.py --data deu-eng.zip gru,256,256,1 lstm,256,256,1 gru,256,256,2
    python bench/translate_cpu_updates.py --data deu-eng.zip --precision bf16 gru,256,256,1

Each model spec is ``cell,embedding,hidden,layers`` (bidirectional encoder, general attention, no input
feeding); the same 20 random batches of the seeded split are timed after 5 warm-up updates.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time

import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.config import TrainConfig
from rnnkit.tasks.translate.config import PairDataConfig, Seq2SeqModelConfig
from rnnkit.tasks.translate.model import Seq2SeqModel
from rnnkit.tasks.translate.pipeline import load_pairs, prepare_data
from rnnkit.train.optim import build_optimizer


def seconds_per_update(spec: str, data, precision: str, n: int = 20, warm: int = 5) -> dict:
    cell, emb, hidden, layers = spec.split(",")
    cfg = Seq2SeqModelConfig(cell=cell, embedding=int(emb), hidden=int(hidden), encoder_layers=int(layers),
                             decoder_layers=int(layers), input_feed=False, attention="general")
    torch.manual_seed(0)
    model = Seq2SeqModel(cfg, data.src_vocab.size, data.tgt_vocab.size)
    opt = build_optimizer(model, TrainConfig(lr=1e-3))
    batches = random.Random(0).sample(data.train_batches, n + warm)
    tokens, t0 = 0, 0.0
    for i, batch in enumerate(batches):
        if i == warm:
            t0, tokens = time.perf_counter(), 0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(batch)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        tokens += out.n
    dt = time.perf_counter() - t0
    return {"model": spec, "precision": precision, "parameters": sum(p.numel() for p in model.parameters()),
            "s_per_update": dt / n, "target_tokens_per_s": tokens / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="cell,embedding,hidden,layers")
    ap.add_argument("--data", required=True, help="Tatoeba TSV or .zip")
    ap.add_argument("--max-words", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = PairDataConfig(data=args.data, max_words=args.max_words, vocab_size=args.vocab_size, test_fraction=0.05)
    pairs, _ = load_pairs(d)
    data = prepare_data(pairs, d, args.batch_size)
    rows = []
    for spec in args.models:
        row = seconds_per_update(spec, data, args.precision)
        row["load_average"] = os.getloadavg()[0]
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
