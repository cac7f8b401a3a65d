"""The sequence classifier: embedding or projection -> encoder -> pooling -> linear head, and its meter."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.metrics import classification_report
from rnnkit.modules.audio_features import FeatureConfig, spec_augment
from rnnkit.modules.char_words import CharWordFeatures
from rnnkit.modules.embedding_dropout import DroppedEmbedding
from rnnkit.modules.encoders import Pooling, build_encoder
from rnnkit.modules.ngram_logits import NgramLogits
from rnnkit.tasks.classify.config import ClassifyModelConfig
from rnnkit.train import ModelOutput

AUTO_POOLING = {"rnn": "last", "tdnn": "max", "mlp": "mean"}


def n_ngram_models(cfg: ClassifyModelConfig) -> int:
    """NBSVM models beside the network: word n-grams (``nbsvm``), and character n-grams (``nbsvm_chars``)."""
    return (1 if cfg.nbsvm else 0) + (1 if cfg.nbsvm and cfg.nbsvm_chars else 0)


def resolve_pooling(cfg: ClassifyModelConfig) -> str:
    return AUTO_POOLING[cfg.model] if cfg.pooling == "auto" else cfg.pooling


class SequenceClassifier(nn.Module):
    """``forward(batch) -> ModelOutput(logits (B, C), loss, n=B)``.

    With n-gram models (text, ``cfg.nbsvm``: NBSVM over word n-grams, and with ``cfg.nbsvm_chars`` a second one
    over character n-grams; ``n_ngrams`` rows, ``batch["ngrams"]`` (B, G)) the logits are ``net_scale`` times
    the network's plus ``ngram_mix[k]`` times model k's n-gram scores plus a class bias ``mix_bias`` (Mesnil et
    al. 2015's ensemble of an RNN and NBSVM); the loss is the network's alone: the n-gram tables are fitted
    beforehand and the weights chosen afterwards on the validation split (1, 0 and 0 while the network
    trains)."""

    def __init__(self, cfg: ClassifyModelConfig, kind: str, n_inputs: int, n_classes: int,
                 class_weights: torch.Tensor | None = None, augment: FeatureConfig | None = None, n_chars: int = 0,
                 n_ngrams: int = 0):
        super().__init__()
        self.cfg, self.kind = cfg, kind
        # audio: SpecAugment masks on training batches (after the saved normaliser, so 0 = the mean)
        self.augment = augment if augment is not None and (augment.freq_masks or augment.time_masks) else None
        if kind == "text":
            self.embed = DroppedEmbedding(n_inputs, cfg.embedding or 64, cfg.embed_dropout, padding_idx=0)
            size = self.embed.embedding_dim
        elif cfg.embedding:
            self.embed = nn.Linear(n_inputs, cfg.embedding)
            size = cfg.embedding
        else:
            self.embed, size = nn.Identity(), n_inputs
        # word-level text: each word's characters summarised beside its embedding (batch["chars"] (B, T, W))
        self.chars = None
        if kind == "text" and cfg.char_hidden:
            if n_chars < 2:
                raise ValueError("character features (char_hidden > 0) need the encoder's character table")
            self.chars = CharWordFeatures(n_chars, cfg.char_hidden, cfg.char_model,
                                          cell=cfg.cell if cfg.model == "rnn" else "lstm", engine=cfg.engine)
            size += self.chars.out_size
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = build_encoder(cfg.model, size, cell=cfg.cell, hidden=cfg.hidden, layers=cfg.layers,
                                     bidirectional=cfg.bidirectional, dropout=cfg.dropout, window=cfg.window,
                                     engine=cfg.engine, locked_dropout=cfg.locked_dropout,
                                     weight_drop=cfg.weight_drop)
        self.pool = Pooling(resolve_pooling(cfg), self.encoder.out_size, self.encoder.directions)
        self.head = nn.Linear(self.pool.out_size, n_classes)
        self.register_buffer("class_weights", class_weights if class_weights is not None else torch.ones(n_classes))
        self.ngram = None
        if kind == "text" and cfg.nbsvm:
            if n_ngrams < 1:
                raise ValueError("an NBSVM (nbsvm > 0) needs the encoder's n-gram table")
            self.ngram = NgramLogits(n_ngrams, n_classes, n_ngram_models(cfg))
            self.register_buffer("net_scale", torch.ones(()))
            self.register_buffer("ngram_mix", torch.zeros(self.ngram.n_models))
            self.register_buffer("mix_bias", torch.zeros(n_classes))

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Input side first: the embedding (with the character features), each recurrent layer (both
        directions), then the pooling and head (discriminative learning rates and gradual unfreezing,
        :mod:`rnnkit.train.layer_groups`)."""
        chars = list(self.chars.parameters()) if self.chars is not None else []
        groups = [list(self.embed.parameters()) + chars]
        rnn = getattr(self.encoder, "rnn", None)
        if rnn is not None:
            d = self.encoder.directions
            groups += [[p for cell in rnn.cells[i:i + d] for p in cell.parameters()]
                       for i in range(0, len(rnn.cells), d)]
        else:
            groups.append(list(self.encoder.parameters()))
        groups.append(list(self.pool.parameters()) + list(self.head.parameters()))
        return [g for g in groups if g]

    def forward(self, batch: dict) -> ModelOutput:
        x, lengths = batch["inputs"], batch["lengths"]
        if self.training and self.augment is not None:
            x = spec_augment(x, lengths, self.augment)      # (B, T, F)
        e = self.embed(x)                                     # (B, T, E) or (B, T, F)
        if self.chars is not None:
            e = torch.cat([e, self.chars(batch["chars"])], -1)  # (B, T, E + 2 * char_hidden)
        h = self.encoder(self.drop(e), lengths)               # (B, T, D)
        logits = self.head(self.drop(self.pool(h, lengths)))  # (B, C)
        loss = None
        if "targets" in batch:
            loss = F.cross_entropy(logits, batch["targets"], weight=self.class_weights)
        if self.ngram is not None:
            ngram = (self.ngram_mix[:, None] * self.ngram(batch["ngrams"])).sum(1)           # (B, K, C) -> (B, C)
            logits = self.net_scale * logits + ngram + self.mix_bias                        # (B, C)
        return ModelOutput(logits, loss, n=x.shape[0])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # runs saved before the character n-gram model and the class bias: one weight () and no bias
        mix = state_dict.get(prefix + "ngram_mix")
        if self.ngram is not None and mix is not None and mix.dim() == 0:
            state_dict[prefix + "ngram_mix"] = mix.reshape(1)
            state_dict.setdefault(prefix + "mix_bias", torch.zeros_like(self.mix_bias))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class ClassifyMeter:
    def __init__(self, n_classes: int):
        self.n_classes, self.loss, self.n = n_classes, 0.0, 0
        self.true: list[int] = []
        self.pred: list[int] = []

    def update(self, out, batch) -> None:
        self.loss += float(out.loss) * out.n
        self.n += out.n
        self.true += batch["targets"].tolist()
        self.pred += out.logits.argmax(-1).tolist()

    def compute(self) -> dict:
        rep = classification_report(self.true, self.pred, self.n_classes)
        return {"loss": self.loss / max(self.n, 1), **rep.summary()}


def balanced_weights(targets: list[int], n_classes: int) -> torch.Tensor:
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    return torch.tensor(len(targets) / (n_classes * np.maximum(counts, 1.0)), dtype=torch.float32)
