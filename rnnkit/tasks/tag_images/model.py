"""The two tagging heads and how each turns an image into tag scores.

* ``rnn`` - :class:`~rnnkit.modules.image_decoder.ImageDecoder` over the tag vocabulary: each image's tags,
  most frequent first, end with ``</s>`` (CNN-RNN, Wang et al. 2016). :func:`decode_tags` decodes greedily
  without repeating a tag; a tag's score is its highest probability over the decoded steps (for mAP).
* ``sigmoid`` - :class:`SigmoidTagger`: mean-pooled CNN features, dropout, one logit per tag, binary
  cross-entropy (the usual multi-label baseline).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit.data.vocab import Vocabulary
from rnnkit.modules.image_decoder import ImageDecoder, ImageFeatures
from rnnkit.train import ModelOutput


class SigmoidTagger(nn.Module):
    """batch {"images" (B, 3, H, W) | "features" (B, S, C), "targets" (B, K) 0/1} -> logits (B, K), BCE loss."""

    def __init__(self, encoder: str, frozen: bool, n_tags: int, dropout: float):
        super().__init__()
        self.encoder = ImageFeatures(encoder, frozen)
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.encoder.channels, n_tags)

    def features(self, src: Tensor) -> Tensor:
        return self.encoder(src) if src.dim() == 4 else src                     # (B, S, C)

    def forward(self, batch: dict) -> ModelOutput:
        src = batch["features"] if "features" in batch else batch["images"]
        logits = self.classifier(self.drop(self.features(src).mean(1)))        # (B, K)
        out = ModelOutput(logits, n=logits.shape[0])
        if "targets" in batch:
            out.loss = F.binary_cross_entropy_with_logits(logits, batch["targets"])
        return out


class TagMeter:
    """Validation loss (per tag token for rnn, per image for sigmoid)."""

    def __init__(self):
        self.loss, self.n = 0.0, 0

    def update(self, out, batch) -> None:
        self.loss += float(out.loss) * out.n
        self.n += out.n

    def compute(self) -> dict:
        return {"loss": self.loss / max(self.n, 1)}


@dataclass
class TagPredictions:
    scores: Tensor      # (N, K) confidence per tag
    predicted: Tensor   # (N, K) bool: the predicted set


def tag_index(vocab: Vocabulary) -> list[str]:
    """The K tags in column order: the vocabulary's tokens after ``<unk>`` (most frequent first)."""
    return list(vocab.tokenizer.tokens[1:])


def first_tag_id(vocab: Vocabulary) -> int:
    """Vocabulary id of column 0 (the tag after ``<unk>``)."""
    return vocab.offset + 1


@torch.no_grad()
def decode_tags(model: ImageDecoder, feats: Tensor, vocab: Vocabulary, max_tags: int) -> TagPredictions:
    """Greedy tag sequences for features (B, S, C): at each step the most likely tag not yet emitted (or
    ``</s>``, which ends the image's set)."""
    B = feats.shape[0]
    first, K = first_tag_id(vocab), len(tag_index(vocab))
    state = model.encode(feats)
    y = torch.full((B,), vocab.bos_id, dtype=torch.long, device=feats.device)
    scores = torch.zeros(B, K, device=feats.device)
    predicted = torch.zeros(B, K, dtype=torch.bool, device=feats.device)
    done = torch.zeros(B, dtype=torch.bool, device=feats.device)
    for _ in range(max_tags + 1):
        logits, _, state = model.decode_step(y, state)
        prob = torch.softmax(logits.float(), dim=-1)                            # (B, V)
        tag_prob = prob[:, first:first + K]                                     # (B, K)
        scores = torch.where(done[:, None], scores, torch.maximum(scores, tag_prob))
        allowed = prob.clone()
        allowed[:, :first] = 0.0
        allowed[:, vocab.eos_id] = prob[:, vocab.eos_id]
        allowed[:, first:first + K] = tag_prob.masked_fill(predicted, 0.0)
        y = allowed.argmax(-1)                                                  # (B,)
        is_tag = (y >= first) & ~done
        rows = torch.nonzero(is_tag).squeeze(1)
        predicted[rows, y[rows] - first] = True
        done |= ~is_tag
        if bool(done.all()):
            break
    return TagPredictions(scores.cpu(), predicted.cpu())


@torch.no_grad()
def sigmoid_tags(model: SigmoidTagger, feats: Tensor, threshold: float) -> TagPredictions:
    prob = torch.sigmoid(model.classifier(feats.mean(1)))                       # (B, K)
    return TagPredictions(prob.cpu(), (prob > threshold).cpu())
