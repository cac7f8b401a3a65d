"""The recogniser: feature normaliser (fitted on the training set) -> SpecAugment (training) -> CTC acoustic model.

``Recognizer.forward(batch) -> RecognizerOutput(logits (B, T', V), loss, n=B, lengths (B,))``; the
logits are per output frame over the blank (0) and the characters. :class:`CTCMeter` scores
validation batches: the loss, and greedy-decoded corpus WER / CER.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.metrics.asr import asr_scores
from rnnkit.modules.acoustic import AcousticConfig, AcousticModel
from rnnkit.modules.audio_features import FeatureConfig, FeatureNormalizer, spec_augment
from rnnkit.modules.ctc import greedy_decode
from rnnkit.tasks.asr.config import ASRModelConfig
from rnnkit.train import ModelOutput


@dataclass
class RecognizerOutput(ModelOutput):
    lengths: torch.Tensor | None = None   # (B,) valid output frames


def acoustic_config(cfg: ASRModelConfig, num_features: int, vocab_size: int) -> AcousticConfig:
    return AcousticConfig(input_size=num_features, vocab_size=vocab_size, cell=cfg.cell, hidden_size=cfg.hidden,
                          num_layers=cfg.layers, stack_frames=cfg.stack_frames, pyramid_layers=cfg.pyramid_layers,
                          dropout=cfg.dropout, zero_infinity=cfg.zero_infinity, engine=cfg.engine)


class Recognizer(nn.Module):
    def __init__(self, cfg: ASRModelConfig, features: FeatureConfig, vocab_size: int):
        super().__init__()
        self.features = features
        self.normalizer = FeatureNormalizer(features.num_features)
        self.acoustic = AcousticModel(acoustic_config(cfg, features.num_features, vocab_size))

    @property
    def subsampling(self) -> int:
        return self.acoustic.config.subsampling

    def forward(self, batch: dict) -> RecognizerOutput:
        x = self.normalizer(batch["feats"])                                            # (B, T, F)
        c = self.features
        if self.training and (c.freq_masks or c.time_masks) and "seed" in batch:
            gen = torch.Generator().manual_seed(int(batch["seed"]))
            x = spec_augment(x, batch["lengths"], c, generator=gen)
        out = self.acoustic(x, batch["lengths"], batch.get("targets"), batch.get("target_lengths"),
                            names=[f"utterance {int(i)}" for i in batch["index"]] if "index" in batch else None)
        return RecognizerOutput(out.logits, out.loss, n=x.shape[0], lengths=out.lengths)


class CTCMeter:
    """Utterance-weighted CTC loss and greedy WER / CER (corpus level, the run's normaliser)."""

    def __init__(self, symbols: list[str], normalizer: str):
        self.symbols, self.normalizer = symbols, normalizer
        self.loss, self.n = 0.0, 0
        self.refs: list[str] = []
        self.hyps: list[str] = []

    def text(self, ids) -> str:
        return "".join(self.symbols[int(i)] for i in ids)

    def update(self, out: RecognizerOutput, batch: dict) -> None:
        self.loss += float(out.loss) * out.n
        self.n += out.n
        self.hyps += [self.text(ids) for ids in greedy_decode(out.logits, out.lengths)]
        targets, lengths = batch["targets"].cpu(), batch["target_lengths"].cpu()
        self.refs += [self.text(targets[b, : int(lengths[b])]) for b in range(targets.shape[0])]

    def compute(self) -> dict:
        s = asr_scores(self.refs, self.hyps, self.normalizer)
        return {"loss": self.loss / max(self.n, 1), "wer": s.wer, "cer": s.cer}
