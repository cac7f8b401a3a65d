"""The recogniser: feature normaliser (fitted on the training set) -> SpecAugment (training) -> CTC acoustic model.

``Recognizer.forward(batch) -> RecognizerOutput(logits (B, T', V), loss, n=B, lengths (B,))``; the
logits are per output frame over the blank (0) and the characters. :class:`CTCMeter` scores
validation batches: the loss, and greedy-decoded corpus WER / CER (of the CTC head).

With ``decoder=attention`` (Listen, Attend and Spell) an :class:`~rnnkit.modules.attention_decoder.AttentionDecoder`
reads the same encoder states; the character table is shared (``<pad>`` = the CTC blank is the decoder's
padding, ``<s>`` / ``</s>`` start and end a transcript)::

    feats -> normaliser -> [SpecAugment] -> acoustic encoder h (B, T', 2H) -+-> CTC head -> CTC loss
                                                                            +-> decoder(<s> y) -> CE loss on (y </s>)
    loss = ctc_weight * CTC + (1 - ctc_weight) * CE            (the CTC term left out at ctc_weight 0)

``encode`` / ``decode_step`` are the one-step interface of :mod:`rnnkit.modules.search` (greedy and beam).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.metrics.asr import asr_scores
from rnnkit.modules.acoustic import AcousticConfig, AcousticModel
from rnnkit.modules.attention_decoder import AttentionDecoder, AttentionDecoderConfig, DecoderState
from rnnkit.modules.audio_features import FeatureConfig, FeatureNormalizer, spec_augment
from rnnkit.modules.ctc import greedy_decode
from rnnkit.modules.search import SpecialIds
from rnnkit.tasks.asr.config import ASRModelConfig
from rnnkit.train import ModelOutput


@dataclass
class RecognizerOutput(ModelOutput):
    lengths: torch.Tensor | None = None   # (B,) valid output frames


def acoustic_config(cfg: ASRModelConfig, num_features: int, vocab_size: int) -> AcousticConfig:
    return AcousticConfig(input_size=num_features, vocab_size=vocab_size, cell=cfg.cell, hidden_size=cfg.hidden,
                          num_layers=cfg.layers, stack_frames=cfg.stack_frames, pyramid_layers=cfg.pyramid_layers,
                          dropout=cfg.dropout, zero_infinity=cfg.zero_infinity, engine=cfg.engine)


def decoder_config(cfg: ASRModelConfig, vocab_size: int, pad_id: int) -> AttentionDecoderConfig:
    return AttentionDecoderConfig(vocab_size=vocab_size, memory_size=2 * cfg.hidden, cell=cfg.cell,
                                  embedding=cfg.decoder_embedding, hidden=cfg.decoder_hidden,
                                  attention=cfg.attention, dropout=cfg.dropout, pad_id=pad_id)


def teacher_forcing(targets: torch.Tensor, lengths: torch.Tensor, special: SpecialIds):
    """Padded labels (B, S) -> decoder inputs ``<s> y`` (B, S+1) and outputs ``y </s>`` (B, S+1), padded."""
    B = targets.shape[0]
    bos = torch.full((B, 1), special.bos, dtype=targets.dtype, device=targets.device)
    pad = torch.full((B, 1), special.pad, dtype=targets.dtype, device=targets.device)
    tgt_in = torch.cat([bos, targets], dim=1)                                          # (B, S+1)
    tgt_out = torch.cat([targets, pad], dim=1)                                         # (B, S+1)
    tgt_out[torch.arange(B, device=targets.device), lengths.to(targets.device)] = special.eos
    return tgt_in, tgt_out


class Recognizer(nn.Module):
    """``special``: the character table's ``<pad>`` / ``<s>`` / ``</s>`` ids (needed by ``decoder=attention``)."""

    def __init__(self, cfg: ASRModelConfig, features: FeatureConfig, vocab_size: int,
                 special: SpecialIds | None = None):
        super().__init__()
        self.features, self.ctc_weight = features, cfg.ctc_weight
        self.normalizer = FeatureNormalizer(features.num_features)
        self.acoustic = AcousticModel(acoustic_config(cfg, features.num_features, vocab_size))
        self.decoder: AttentionDecoder | None = None
        self.special = special
        if cfg.decoder == "attention":
            if special is None:
                raise ValueError("decoder=attention needs the character table's <pad>, <s> and </s> ids")
            self.decoder = AttentionDecoder(decoder_config(cfg, vocab_size, special.pad))

    @property
    def subsampling(self) -> int:
        return self.acoustic.config.subsampling

    def _features(self, batch: dict) -> torch.Tensor:
        x = self.normalizer(batch["feats"])                                            # (B, T, F)
        c = self.features
        if self.training and (c.freq_masks or c.time_masks) and "seed" in batch:
            gen = torch.Generator().manual_seed(int(batch["seed"]))
            x = spec_augment(x, batch["lengths"], c, generator=gen)
        return x

    def forward(self, batch: dict) -> RecognizerOutput:
        x = self._features(batch)
        h, lengths = self.acoustic.encode(x, batch["lengths"])                          # (B, T', 2H), (B,)
        targets, target_lengths = batch.get("targets"), batch.get("target_lengths")
        names = [f"utterance {int(i)}" for i in batch["index"]] if "index" in batch else None
        use_ctc = self.decoder is None or self.ctc_weight > 0
        out = self.acoustic.head_output(h, lengths, targets if use_ctc else None,
                                        target_lengths if use_ctc else None, names)
        loss = out.loss
        if self.decoder is not None and targets is not None:
            tgt_in, tgt_out = teacher_forcing(targets, target_lengths, self.special)
            logits, _ = self.decoder(tgt_in, self.decoder.start(h, lengths))           # (B, S+1, V)
            ce, _ = self.decoder.loss(logits, tgt_out)
            loss = ce if not use_ctc else self.ctc_weight * out.loss + (1.0 - self.ctc_weight) * ce
        return RecognizerOutput(out.logits, loss, n=x.shape[0], lengths=out.lengths)

    # the one-step interface of rnnkit.modules.search (src = feature frames)
    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> DecoderState:
        """Feature frames (B, T, F) before normalisation -> the decoder's start state over the encoder states."""
        if self.decoder is None:
            raise ValueError("this recogniser has no attention decoder (trained with decoder=ctc)")
        h, out_lengths = self.acoustic.encode(self.normalizer(feats), lengths)           # (B, T', 2H)
        return self.decoder.start(h, out_lengths)

    def decode_step(self, y_prev: torch.Tensor, state: DecoderState):
        """Previous tokens (N,) -> logits (N, V), attention weights (N, T'), next state."""
        return self.decoder.step(y_prev, state)


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
