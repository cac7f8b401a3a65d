"""The direct speech translator: English audio -> French words in one network (Weiss et al. 2017).

::

    feats (B, T, F) -> normaliser -> AcousticModel.encode (stacking, pyramid, BiRNN) -> memory (B, T', 2H)
        memory -> AttentionDecoder (Luong attention, input feeding) -> French word logits (B, L, V)
        memory -> the acoustic model's CTC head -> English characters (auxiliary loss, weight ctc_weight)

``forward(batch) -> ModelOutput(logits, loss, n)``: the label-smoothed cross-entropy of the translation
plus ``ctc_weight`` times the CTC loss of the transcript. ``encode`` / ``decode_step`` are the one-step
interface of :mod:`rnnkit.modules.search` (``src`` there is the feature batch).
"""
from __future__ import annotations

import torch
from torch import nn

from rnnkit.modules.acoustic import AcousticConfig, AcousticModel
from rnnkit.modules.attention_decoder import AttentionDecoder, AttentionDecoderConfig, DecoderState
from rnnkit.modules.audio_features import FeatureConfig, FeatureNormalizer
from rnnkit.train import ModelOutput

from .config import SpeechTranslateModelConfig


class SpeechTranslator(nn.Module):
    def __init__(self, cfg: SpeechTranslateModelConfig, features: FeatureConfig, src_vocab_size: int,
                 tgt_vocab_size: int, pad_id: int = 0):
        super().__init__()
        self.cfg, self.features = cfg, features
        self.normalizer = FeatureNormalizer(features.num_features)
        self.acoustic = AcousticModel(AcousticConfig(
            input_size=features.num_features, vocab_size=src_vocab_size, cell=cfg.cell, hidden_size=cfg.hidden,
            num_layers=cfg.layers, stack_frames=cfg.stack_frames, pyramid_layers=cfg.pyramid_layers,
            dropout=cfg.dropout, zero_infinity=True, engine=cfg.engine))
        self.decoder = AttentionDecoder(AttentionDecoderConfig(
            vocab_size=tgt_vocab_size, memory_size=2 * cfg.hidden, cell=cfg.cell, embedding=cfg.embedding,
            hidden=cfg.decoder_hidden, layers=cfg.decoder_layers, attention=cfg.attention, dropout=cfg.dropout,
            pad_id=pad_id))

    def _memory(self, feats: torch.Tensor, lengths: torch.Tensor):
        return self.acoustic.encode(self.normalizer(feats), lengths)               # (B, T', 2H), (B,)

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> DecoderState:
        memory, out_lengths = self._memory(feats, lengths)
        return self.decoder.start(memory, out_lengths)

    def decode_step(self, y_prev: torch.Tensor, state: DecoderState):
        return self.decoder.step(y_prev, state)

    def forward(self, batch: dict) -> ModelOutput:
        memory, out_lengths = self._memory(batch["feats"], batch["lengths"])
        logits, _ = self.decoder(batch["tgt_in"], self.decoder.start(memory, out_lengths))     # (B, L, V)
        loss, n = self.decoder.loss(logits, batch["tgt_out"], self.cfg.label_smoothing if self.training else 0.0)
        if self.cfg.ctc_weight and "src" in batch:
            ctc = self.acoustic.head_output(memory, out_lengths, batch["src"], batch["src_lengths"]).loss
            loss = loss + self.cfg.ctc_weight * ctc
        return ModelOutput(logits, loss, n=n)


class TranslationMeter:
    """Validation: token-weighted loss (translation + weighted CTC) and token accuracy."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id
        self.loss, self.n, self.correct = 0.0, 0, 0

    def update(self, out: ModelOutput, batch: dict) -> None:
        self.loss += float(out.loss) * out.n
        self.n += out.n
        real = batch["tgt_out"] != self.pad_id
        self.correct += int(((out.logits.argmax(-1) == batch["tgt_out"]) & real).sum())

    def compute(self) -> dict:
        return {"loss": self.loss / max(self.n, 1), "token_acc": self.correct / max(self.n, 1)}
