"""The classifier's NBSVM expert (``--nbsvm N``): Mesnil et al. 2015, "Ensemble of Generative and
Discriminative Techniques for Sentiment Analysis of Movie Reviews", combine a recurrent network with NBSVM
(Wang & Manning 2012), weighting the two on validation data.

1. before training: NBSVM over word 1..N-grams is fitted on the training split only
   (:func:`~rnnkit.tasks.baselines.nbsvm.fit_nbsvm`); its n-grams join the encoder (saved with the run) and
   its scores the model (:class:`~rnnkit.modules.ngram_logits.NgramLogits`, buffers);
2. the network trains alone (the mixing weight is 0, the loss the network's);
3. after training, with the best checkpoint: ``logits = a * network + b * NBSVM`` with the weights
   a, b >= 0 that minimise the cross-entropy on the validation split (stacking: the validation texts are
   scored by both experts, never fitted by either), written into the run's checkpoints.
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

MIX_KEYS = ("model.net_scale", "model.ngram_mix")
RIDGE = 1e-4   # a small L2 penalty on the two weights keeps them finite when validation is separable


def fit_ngram_expert(enc: Encoder, train: Examples, order: int) -> tuple[Encoder, NgramTable]:
    """NBSVM on the training split; the encoder extended with its n-grams (ids 1 .. V in the table's order)."""
    table = fit_nbsvm(train.inputs, train.labels, enc.labels, order, enc.lowercase)
    return replace(enc, ngrams=table.ngrams, ngram_order=order), table


@torch.no_grad()
def expert_logits(model, batches: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(network logits (N, C), n-gram scores (N, C), targets (N,)) of labelled batches, in batch order."""
    saved = model.net_scale.clone(), model.ngram_mix.clone()
    model.net_scale.fill_(1.0)
    model.ngram_mix.zero_()
    net, ngram, y = [], [], []
    try:
        for b in batches:
            net.append(model(b).logits)
            ngram.append(model.ngram(b["ngrams"]))
            y.append(b["targets"])
    finally:
        model.net_scale.copy_(saved[0])
        model.ngram_mix.copy_(saved[1])
    return torch.cat(net).double().numpy(), torch.cat(ngram).double().numpy(), torch.cat(y).numpy()


@dataclass
class MixChoice:
    net_scale: float      # a: the network's logits are scaled by this (its temperature's inverse)
    mix: float            # b: the NBSVM scores' weight
    val_loss: float       # cross-entropy of a * network + b * NBSVM on the validation split
    val_accuracy: float


def _fit(net: torch.Tensor, ngram: torch.Tensor, y: torch.Tensor, free: tuple[bool, bool]) -> torch.Tensor:
    """The weights (a, b) minimising cross-entropy + RIDGE * |(a, b)|^2, with the weights not ``free`` kept
    at 0 (L-BFGS: the objective is convex in (a, b))."""
    w = torch.tensor([1.0 if free[0] else 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    keep = torch.tensor(free, dtype=torch.float64)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        v = w * keep
        loss = F.cross_entropy(v[0] * net + v[1] * ngram, y) + RIDGE * (v ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return (w * keep).detach()


def choose_mix(net: np.ndarray, ngram: np.ndarray, targets: np.ndarray) -> MixChoice:
    """Stacking on the validation split: the weights (a, b) >= 0 of ``a * net + b * ngram`` logits with the
    lowest cross-entropy (logistic regression on the two experts' logits, no intercept). A recurrent network
    stopped early is overconfident (logit margins of 7 where NBSVM's scores are ~0.3 on MR), so its scale is
    fitted too; a negative weight (an expert worse than useless) is set to 0 and the other refitted."""
    net_t, ngram_t, y = torch.as_tensor(net), torch.as_tensor(ngram), torch.as_tensor(targets)
    w = _fit(net_t, ngram_t, y, (True, True))
    if (w < 0).any():
        fits = [_fit(net_t, ngram_t, y, free) for free in ((True, False), (False, True))]
        w = min(fits, key=lambda v: float(F.cross_entropy(v[0] * net_t + v[1] * ngram_t, y)))
        w = w.clamp(min=0.0)
    z = w[0] * net_t + w[1] * ngram_t
    return MixChoice(float(w[0]), float(w[1]), float(F.cross_entropy(z, y)), float((z.argmax(1) == y).double().mean()))


def write_mix(run_dir: Path, choice: MixChoice) -> None:
    """Set the two weights in the run's best and last checkpoints (rewritten atomically)."""
    for name in ("best", "last"):
        path = run_dir / "checkpoints" / f"{name}.safetensors"
        if not path.exists():
            continue
        ck = load_checkpoint(path)
        for key, value in zip(MIX_KEYS, (choice.net_scale, choice.mix)):
            if key not in ck.tensors:
                raise KeyError(f"{path}: no {key} tensor: not a run trained with --nbsvm")
            ck.tensors[key] = torch.tensor(value, dtype=ck.tensors[key].dtype)
        save_checkpoint(path, ck)
