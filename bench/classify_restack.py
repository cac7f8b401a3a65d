"""Choose the two experts' weights of saved ``--nbsvm`` classify runs again with the current
:func:`rnnkit.tasks.classify.ngram_mix.choose_mix`, on each run's own validation split, and score its test
split: the network, NBSVM and the combination, without retraining (the network and the n-gram table are
the run's). The runs are left unchanged.

    python bench/classify_restack.py RUN [RUN ...] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.tasks.classify.config import ClassifyRunConfig, upgrade_config
from rnnkit.tasks.classify.data import Encoder
from rnnkit.tasks.classify.ngram_mix import choose_mix, expert_logits
from rnnkit.tasks.classify.pipeline import TASK, LoadedClassifier, build_model, encode, load_splits
from rnnkit.tasks.runs import load_task_checkpoint


def load_run(run: str) -> LoadedClassifier:
    """:func:`~rnnkit.tasks.classify.pipeline.load_classifier`, also for runs of the first ``--nbsvm`` version
    (one weight, on NBSVM only: their network scale is 1; runs without a class bias load through the model's
    own upgrade)."""
    ck, cfg, meta = load_task_checkpoint(run, TASK, ClassifyRunConfig, upgrade_config)
    enc = Encoder.from_dict(meta["encoder"])
    model = build_model(cfg, enc)
    state = ck.group("model")
    state.setdefault("net_scale", torch.ones(()))
    model.load_state_dict(state)
    return LoadedClassifier(model.eval(), enc, cfg, Path(run))


def restack(run: str) -> dict:
    loaded = load_run(run)
    if loaded.model.ngram is None:
        raise SystemExit(f"{run}: not a run trained with --nbsvm")
    s = load_splits(loaded.config.data, loaded.config.train.seed)
    choice = choose_mix(*expert_logits(loaded.model, encode(loaded.encoder, s.val, 64)))
    net, ngram, y = expert_logits(loaded.model, encode(loaded.encoder, s.test, 64))    # (N, C), (N, K, C), (N,)
    mixed = choice.logits(net, ngram)
    return {"run": run, "net_scale": choice.net_scale, "mix": choice.mix, "bias": choice.bias,
            "val_accuracy": choice.val_accuracy, "test_network": float((net.argmax(1) == y).mean()),
            "test_nbsvm": float((ngram[:, 0].argmax(1) == y).mean()),
            "test_combined": float((mixed.argmax(1) == y).mean())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+")
    p.add_argument("--json", default="")
    a = p.parse_args(argv)
    rows = [restack(r) for r in a.runs]
    for r in rows:
        print(f"{r['run']}: a {r['net_scale']:.3f} b {r['mix']} c {r['bias']}  test network {r['test_network']:.4f} "
              f"nbsvm {r['test_nbsvm']:.4f} combined {r['test_combined']:.4f}")
    for key in ("test_network", "test_nbsvm", "test_combined"):
        values = [100 * r[key] for r in rows]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{key}: mean {statistics.fmean(values):.2f} sd {sd:.2f}")
    if a.json:
        atomic_write_text(a.json, json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
