"""The classifier's NBSVM expert (``--nbsvm N``): Mesnil et al. 2015, "Ensemble of Generative and
Discriminative Techniques for Sentiment Analysis of Movie Reviews", combine a recurrent network with NBSVM
(Wang & Manning 2012), weighting the two on validation data.

1. before training: NBSVM over word 1..N-grams is fitted on the training split only
   (:func:`~rnnkit.tasks.baselines.nbsvm.fit_nbsvm`); its n-grams join the encoder (saved with the run) and
   its scores the model (:class:`~rnnkit.modules.ngram_logits.NgramLogits`, buffers);
2. the network trains alone (the mixing weight is 0, the loss the network's);
3. after training, with the best checkpoint: ``logits = network + mix * NBSVM`` with the ``mix`` of
   :data:`MIX_GRID` that minimises the cross-entropy on the validation split (the validation texts are
   scored, never fitted), written into the run's checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.tasks.baselines.nbsvm import NgramTable, fit_nbsvm
from rnnkit.tasks.classify.data import Encoder, Examples
from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint

MIX_GRID = (0.0,) + tuple(float(2.0 ** k) for k in range(-4, 7))   # 0, 1/16 .. 64 (SVM scores are ~ +-1)
MIX_KEY = "model.ngram_mix"


def fit_ngram_expert(enc: Encoder, train: Examples, order: int) -> tuple[Encoder, NgramTable]:
    """NBSVM on the training split; the encoder extended with its n-grams (ids 1 .. V in the table's order)."""
    table = fit_nbsvm(train.inputs, train.labels, enc.labels, order, enc.lowercase)
    return replace(enc, ngrams=table.ngrams, ngram_order=order), table


@torch.no_grad()
def expert_logits(model, batches: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(network logits (N, C), n-gram scores (N, C), targets (N,)) of labelled batches, in batch order."""
    saved = model.ngram_mix.clone()
    model.ngram_mix.zero_()
    net, ngram, y = [], [], []
    try:
        for b in batches:
            net.append(model(b).logits)
            ngram.append(model.ngram(b["ngrams"]))
            y.append(b["targets"])
    finally:
        model.ngram_mix.copy_(saved)
    return torch.cat(net).double().numpy(), torch.cat(ngram).double().numpy(), torch.cat(y).numpy()


@dataclass
class MixChoice:
    mix: float
    val_loss: float       # cross-entropy of the mixed logits on the validation split
    val_accuracy: float
    grid: list[dict]      # every candidate's loss and accuracy


def choose_mix(net: np.ndarray, ngram: np.ndarray, targets: np.ndarray) -> MixChoice:
    """The weight of :data:`MIX_GRID` whose ``net + mix * ngram`` logits have the lowest cross-entropy on
    these (validation) targets; ties go to the smaller weight."""
    y = torch.as_tensor(targets)
    grid = []
    for mix in MIX_GRID:
        z = torch.as_tensor(net + mix * ngram)
        grid.append({"mix": mix, "loss": float(F.cross_entropy(z, y)),
                     "accuracy": float((z.argmax(1) == y).double().mean())})
    best = min(grid, key=lambda g: (g["loss"], g["mix"]))
    return MixChoice(best["mix"], best["loss"], best["accuracy"], grid)


def write_mix(run_dir: Path, mix: float) -> None:
    """Set the mixing weight in the run's best and last checkpoints (rewritten atomically)."""
    for name in ("best", "last"):
        path = run_dir / "checkpoints" / f"{name}.safetensors"
        if not path.exists():
            continue
        ck = load_checkpoint(path)
        if MIX_KEY not in ck.tensors:
            raise KeyError(f"{path}: no {MIX_KEY} tensor: not a run trained with --nbsvm")
        ck.tensors[MIX_KEY] = torch.tensor(mix, dtype=ck.tensors[MIX_KEY].dtype)
        save_checkpoint(path, ck)
