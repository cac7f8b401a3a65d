"""The synthesiser the trainer sees: mel normaliser (fitted on the training frames) + Tacotron + losses.

``Synthesiser.forward(batch) -> SynthOutput(logits = mel after the post-net (B, T, M), loss, n = B, parts)``::

    loss = L1(mel_before) + L1(mel_after)              over real frames, in normalised units
         + BCE(stop logits, stop targets; pos_weight)  over real decoder steps
         + guided_attention * guided-attention loss    (Tachibana et al. 2018)

:class:`SynthMeter` reports the validation loss and each part, and how diagonal the teacher-forced
attention is (``val_diagonal``: the share of attention mass within the guided band).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit.modules.audio_features import FeatureNormalizer
from rnnkit.modules.tacotron import Tacotron, guided_attention_loss, stop_targets
from rnnkit.tasks.tts.config import TTSModelConfig
from rnnkit.train import ModelOutput


@dataclass
class SynthOutput(ModelOutput):
    parts: dict = field(default_factory=dict)        # loss parts (floats) and the diagonal share
    alignments: torch.Tensor | None = None           # (B, steps, N)


class Synthesiser(nn.Module):
    def __init__(self, cfg: TTSModelConfig, vocab_size: int, n_mels: int, pad_id: int):
        super().__init__()
        self.cfg = cfg
        self.normalizer = FeatureNormalizer(n_mels)
        self.tacotron = Tacotron(cfg.tacotron(vocab_size, n_mels, pad_id))

    @property
    def reduction(self) -> int:
        return self.tacotron.config.reduction

    def forward(self, batch: dict) -> SynthOutput:
        r = self.reduction
        lengths = batch["mel_lengths"]                                            # (B,)
        T = batch["mels"].shape[1]
        frame_mask = (torch.arange(T, device=lengths.device)[None] < lengths[:, None]).unsqueeze(-1)  # (B, T, 1)
        target = self.normalizer(batch["mels"]) * frame_mask                     # (B, T, M)
        out = self.tacotron(batch["text"], batch["text_lengths"], target)
        denom = frame_mask.sum() * target.shape[-1]
        l1 = lambda pred: ((pred - target).abs() * frame_mask).sum() / denom  # noqa: E731
        mel_loss = l1(out.mel_before) + l1(out.mel_after)
        steps = out.stop_logits.shape[1]
        step_lengths = torch.div(lengths - 1, r, rounding_mode="floor") + 1     # (B,) decoder steps holding frames
        step_mask = torch.arange(steps, device=lengths.device)[None] < step_lengths[:, None]   # (B, S)
        stop_loss = F.binary_cross_entropy_with_logits(
            out.stop_logits[step_mask], stop_targets(lengths, steps, r)[step_mask],
            pos_weight=torch.tensor(self.cfg.stop_weight, device=lengths.device))
        guided = guided_attention_loss(out.alignments, batch["text_lengths"], step_lengths, self.cfg.guided_sigma)
        loss = mel_loss + stop_loss + self.cfg.guided_attention * guided
        parts = {"mel": mel_loss.item(), "stop": stop_loss.item(), "guided": guided.item(),
                 "diagonal": float(diagonal_share(out.alignments, batch["text_lengths"], step_lengths))}
        return SynthOutput(out.mel_after, loss, n=int(lengths.shape[0]), parts=parts, alignments=out.alignments)


@torch.no_grad()
def diagonal_share(alignments: torch.Tensor, text_lengths: torch.Tensor, step_lengths: torch.Tensor,
                   band: float = 0.2) -> torch.Tensor:
    """Share of the attention mass within ``band`` (fraction of the text) of the diagonal, real steps only."""
    B, S, N = alignments.shape
    t = torch.arange(S, device=alignments.device)[None, :, None] / step_lengths[:, None, None].float()
    n = torch.arange(N, device=alignments.device)[None, None, :] / text_lengths[:, None, None].float()
    steps = torch.arange(S, device=alignments.device)[None, :, None] < step_lengths[:, None, None]
    near = ((n - t).abs() <= band) & steps
    return (alignments * near).sum() / (alignments * steps).sum().clamp(min=1e-9)


class SynthMeter:
    """Utterance-weighted validation loss, its parts and the diagonal share."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.n = 0

    def update(self, out: SynthOutput, batch: dict) -> None:
        for key, value in {"loss": float(out.loss), **out.parts}.items():
            self.sums[key] = self.sums.get(key, 0.0) + value * out.n
        self.n += out.n

    def compute(self) -> dict:
        return {k: v / max(self.n, 1) for k, v in self.sums.items()}
