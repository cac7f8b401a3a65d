"""The classifier's NBSVM experts (``--nbsvm N``, ``--nbsvm-chars M``): Mesnil et al. 2015, "Ensemble of
Generative and Discriminative Techniques for Sentiment Analysis of Movie Reviews", combine a recurrent network
with NBSVM (Wang & Manning 2012), weighting them on validation data.

1. before training: NBSVM over word 1..N-grams, and a second one over the character 2..M-grams of each word,
   are fitted on the training split only (:func:`~rnnkit.tasks.baselines.nbsvm.fit_nbsvm`); their n-grams
   join the encoder (saved with the run) and their scores the model
   (:class:`~rnnkit.modules.ngram_logits.NgramLogits`, buffers);
2. the network trains alone (the mixing weights are 0, the loss the network's);
3. after training, with the best checkpoint: ``logits = a * network + sum_k b_k * NBSVM_k + c`` with the
   weights a, b_k >= 0 and the class bias c that minimise the cross-entropy on the validation split (stacking:
   the validation texts are scored by every expert, never fitted by any), written into the run's checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.tasks.baselines.nbsvm import NEEDED_FOR, NgramTable, fit_nbsvm
from rnnkit.tasks.classify.data import Encoder, Examples
from rnnkit.tasks.runs import need
from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint

MIX_KEYS = ("model.net_scale", "model.ngram_mix", "model.mix_bias")
RIDGE = 1e-4   # a small L2 penalty on the weights and the bias keeps them finite when validation is separable


def fit_ngram_experts(enc: Encoder, train: Examples, order: int, chars: int = 0
                      ) -> tuple[Encoder, list[NgramTable]]:
    """NBSVM over word 1..``order``-grams on the training split, and with ``chars`` a second one over character
    2..``chars``-grams; the encoder extended with their n-grams (ids 1 .. V: the word table's, then the
    character table's, which never share an n-gram)."""
    tables = [fit_nbsvm(train.inputs, train.labels, enc.labels, order, enc.lowercase)]
    if chars:
        tables.append(fit_nbsvm(train.inputs, train.labels, enc.labels, 0, enc.lowercase, chars=chars))
    ngrams = [g for t in tables for g in t.ngrams]
    return replace(enc, ngrams=ngrams, ngram_order=order, ngram_chars=chars), tables


def table_rows(tables: list[NgramTable]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each table's scores over the joint id space of :func:`fit_ngram_experts` ((V, C), zero on the other
    tables' n-grams) and its bias (C,)."""
    V = sum(len(t.ngrams) for t in tables)
    out, start = [], 0
    for t in tables:
        w = np.zeros((V, t.weights.shape[1]), dtype=np.float32)
        w[start:start + len(t.ngrams)] = t.weights
        out.append((w, t.bias))
        start += len(t.ngrams)
    return out


@torch.no_grad()
def expert_logits(model, batches: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(network logits (N, C), n-gram scores (N, K, C), targets (N,)) of labelled batches, in batch order."""
    saved = model.net_scale.clone(), model.ngram_mix.clone(), model.mix_bias.clone()
    model.net_scale.fill_(1.0)
    model.ngram_mix.zero_()
    model.mix_bias.zero_()
    net, ngram, y = [], [], []
    try:
        for b in batches:
            net.append(model(b).logits)
            ngram.append(model.ngram(b["ngrams"]))
            y.append(b["targets"])
    finally:
        model.net_scale.copy_(saved[0])
        model.ngram_mix.copy_(saved[1])
        model.mix_bias.copy_(saved[2])
    return torch.cat(net).double().numpy(), torch.cat(ngram).double().numpy(), torch.cat(y).numpy()


@dataclass
class MixChoice:
    net_scale: float      # a: the network's logits are scaled by this (its temperature's inverse)
    mix: list[float]      # b_k: each NBSVM's scores' weight (word n-grams, then character n-grams)
    bias: list[float]     # c: added to each class's logit
    val_loss: float       # cross-entropy of the combination on the validation split
    val_accuracy: float

    def logits(self, net: np.ndarray, ngram: np.ndarray) -> np.ndarray:
        """(N, C) combined logits of network logits (N, C) and n-gram scores (N, K, C)."""
        return self.net_scale * net + np.einsum("k,nkc->nc", np.asarray(self.mix), ngram) + np.asarray(self.bias)


def choose_mix(net: np.ndarray, ngram: np.ndarray, targets: np.ndarray) -> MixChoice:
    """Stacking on the validation split: the weights a, b_k >= 0 and class bias c of
    ``a * net + sum_k b_k * ngram[:, k] + c`` (net (N, C), ngram (N, K, C)) with the lowest cross-entropy plus
    ``RIDGE`` times their squares: a logistic regression on the experts' logits with an intercept, weights kept
    non-negative (an expert worse than useless is left out, not inverted; L-BFGS-B, the objective is convex).
    A recurrent network stopped early is overconfident (logit margins of 7 where NBSVM's scores are ~0.3 on
    MR), so its scale is fitted too; the bias corrects a lean towards one class that validation shows."""
    optimize = need("scipy.optimize", NEEDED_FOR)
    K, C = ngram.shape[1], ngram.shape[2]
    X = torch.cat([torch.as_tensor(net)[:, None], torch.as_tensor(ngram)], 1)        # (N, 1 + K, C)
    y = torch.as_tensor(targets)

    def combine(t: torch.Tensor) -> torch.Tensor:                                 # (N, C)
        return torch.einsum("k,nkc->nc", t[:1 + K], X) + t[1 + K:]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        loss = F.cross_entropy(combine(t), y) + RIDGE * (t ** 2).sum()
        loss.backward()
        return float(loss.detach()), t.grad.numpy()
    start = np.zeros(1 + K + C)
    start[0] = 1.0
    bounds = [(0.0, None)] * (1 + K) + [(None, None)] * C
    theta = torch.as_tensor(optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds).x)
    z = combine(theta)                                                                # (N, C)
    return MixChoice(float(theta[0]), theta[1:1 + K].tolist(), theta[1 + K:].tolist(),
                     float(F.cross_entropy(z, y)), float((z.argmax(1) == y).double().mean()))


def write_mix(run_dir: Path, choice: MixChoice) -> None:
    """Set the weights and the bias in the run's best and last checkpoints (rewritten atomically)."""
    values = (choice.net_scale, choice.mix, choice.bias)
    for name in ("best", "last"):
        path = run_dir / "checkpoints" / f"{name}.safetensors"
        if not path.exists():
            continue
        ck = load_checkpoint(path)
        for key, value in zip(MIX_KEYS, values):
            if key not in ck.tensors:
                raise KeyError(f"{path}: no {key} tensor: not a run trained with --nbsvm")
            ck.tensors[key] = torch.tensor(value, dtype=ck.tensors[key].dtype).reshape(ck.tensors[key].shape)
        save_checkpoint(path, ck)
