"""The acoustic model for CTC speech recognition: subsampling, a bidirectional recurrent encoder, a CTC head.

::

    feats (B, T, F) --frame stacking by k--> (B, T/k, kF)
        --pyramidal BiRNN x P (Chan et al. 2016, Listen Attend and Spell: concatenate frame pairs,
          halving time, then one bidirectional layer)--> (B, T/(k 2^P), 2H)
        --stacked bidirectional rnnkit layer (any cell, build_layer)--> (B, T', 2H)
        --linear--> logits (B, T', V)          V includes the CTC blank

``AcousticModel.forward(feats, lengths, targets=None, target_lengths=None)`` returns an
:class:`AcousticOutput` with logits, subsampled lengths and, with targets, the CTC loss
(torch's ``CTCLoss`` on log-softmaxed logits, each utterance's loss divided by its label length,
then averaged).  Before the loss is computed, every utterance whose subsampled frame count is
below its label length plus its repeated-label count (CTC needs a blank between equal labels) is
found: without ``zero_infinity`` this raises an error naming those utterances; with it their
losses are zeroed and counted in ``AcousticOutput.zeroed``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence

import torch
from torch import nn

from rnnkit.layers import CELLS, build_layer


@dataclass
class AcousticConfig:
    input_size: int                # feature width F
    vocab_size: int                # output symbols V, blank included
    cell: str = "lstm"
    hidden_size: int = 128         # per direction
    num_layers: int = 2            # the stacked bidirectional encoder (after the pyramid)
    stack_frames: int = 1          # k: concatenate k consecutive frames
    pyramid_layers: int = 0        # P: each halves time
    dropout: float = 0.0
    blank: int = 0
    zero_infinity: bool = False
    engine: str = "auto"

    def __post_init__(self):
        for name in ("input_size", "vocab_size", "hidden_size", "num_layers", "stack_frames"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"AcousticConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.vocab_size < 2:
            raise ValueError(f"AcousticConfig.vocab_size must count the blank and at least one label, "
                             f"got {self.vocab_size}")
        if not isinstance(self.pyramid_layers, int) or self.pyramid_layers < 0:
            raise ValueError(f"AcousticConfig.pyramid_layers must be a non-negative integer, "
                             f"got {self.pyramid_layers!r}")
        if self.cell not in CELLS:
            raise ValueError(f"AcousticConfig.cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"AcousticConfig.dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.blank < self.vocab_size:
            raise ValueError(f"AcousticConfig.blank must be in [0, vocab_size={self.vocab_size}), got {self.blank}")

    @property
    def subsampling(self) -> int:
        """Input frames per output frame."""
        return self.stack_frames * 2 ** self.pyramid_layers

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AcousticOutput:
    logits: torch.Tensor                 # (B, T', V)
    lengths: torch.Tensor                # (B,) valid output frames
    loss: Optional[torch.Tensor] = None  # scalar, with targets
    zeroed: int = 0                      # utterances whose loss was zeroed (zero_infinity)


def stack_frames(x: torch.Tensor, lengths: torch.Tensor, k: int):
    """(B, T, F) -> (B, ceil(T/k), kF), lengths -> ceil(lengths/k); frames past each length count as zeros."""
    if k == 1:
        return x, lengths
    B, T, F = x.shape
    valid = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]     # (B, T)
    x = x * valid[..., None]
    pad = (-T) % k
    if pad:
        x = torch.cat([x, x.new_zeros(B, pad, F)], dim=1)
    return x.reshape(B, (T + pad) // k, k * F), torch.div(lengths + k - 1, k, rounding_mode="floor")


def _run(layer, x, lengths):
    out, _ = layer(x, lengths=lengths.cpu())
    return out


def ctc_required_frames(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """(B, S) padded labels -> (B,) the fewest frames CTC can align them to: length + repeated pairs."""
    need = []
    for b in range(targets.shape[0]):
        lab = targets[b, : int(target_lengths[b])]
        need.append(int(target_lengths[b]) + int((lab[1:] == lab[:-1]).sum()))
    return torch.tensor(need, dtype=torch.long)


def too_short(frame_lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> List[int]:
    """Indices of utterances with fewer frames than CTC needs for their labels."""
    need = ctc_required_frames(targets, target_lengths)
    return [int(i) for i in torch.nonzero(frame_lengths.cpu() < need).flatten()]


class AcousticModel(nn.Module):
    def __init__(self, config: AcousticConfig):
        super().__init__()
        self.config = c = config
        width = c.input_size * c.stack_frames
        self.pyramid = nn.ModuleList()
        for _ in range(c.pyramid_layers):
            self.pyramid.append(build_layer(c.cell, 2 * width, c.hidden_size, 1, bidirectional=True,
                                            batch_first=True, engine=c.engine))
            width = 2 * c.hidden_size
        self.encoder = build_layer(c.cell, width, c.hidden_size, c.num_layers, bidirectional=True,
                                   batch_first=True, dropout=c.dropout, engine=c.engine)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(2 * c.hidden_size, c.vocab_size)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames after subsampling for input frame counts (B,)."""
        out = torch.div(lengths + self.config.stack_frames - 1, self.config.stack_frames, rounding_mode="floor")
        for _ in range(self.config.pyramid_layers):
            out = torch.div(out + 1, 2, rounding_mode="floor")
        return out

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor):
        """(B, T, F), (B,) -> encoder states (B, T', 2H), (B,)."""
        if feats.dim() != 3 or feats.shape[-1] != self.config.input_size:
            raise ValueError(f"feats must be (B, T, {self.config.input_size}), got {tuple(feats.shape)}")
        x, lengths = stack_frames(feats, lengths, self.config.stack_frames)          # (B, T/k, kF)
        for layer in self.pyramid:
            x, lengths = stack_frames(x, lengths, 2)                                  # (B, T/2, 2D)
            x = _run(layer, x, lengths)                                               # (B, T/2, 2H)
        return _run(self.encoder, x, lengths), lengths                                # (B, T', 2H)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, targets: Optional[torch.Tensor] = None,
                target_lengths: Optional[torch.Tensor] = None, names: Optional[Sequence[str]] = None) -> AcousticOutput:
        """Logits (B, T', V); with targets (B, S) padded labels and target_lengths (B,), the CTC loss.

        names: optional utterance names for the error about utterances too short for their labels.
        """
        h, out_lengths = self.encode(feats, lengths)
        return self.head_output(h, out_lengths, targets, target_lengths, names)

    def head_output(self, h: torch.Tensor, out_lengths: torch.Tensor, targets: Optional[torch.Tensor] = None,
                    target_lengths: Optional[torch.Tensor] = None,
                    names: Optional[Sequence[str]] = None) -> AcousticOutput:
        """The CTC head over encoder states (B, T', 2H) from :meth:`encode` (and the loss with targets); a
        model sharing the encoder with another head (speech translation) calls it with its own states."""
        logits = self.head(self.drop(h))                                              # (B, T', V)
        if targets is None:
            return AcousticOutput(logits, out_lengths)
        if target_lengths is None:
            raise ValueError("targets given without target_lengths")
        short = too_short(out_lengths, targets, target_lengths)
        if short and not self.config.zero_infinity:
            need = ctc_required_frames(targets, target_lengths)
            which = ", ".join(f"{names[i] if names is not None else f'#{i}'} ({int(out_lengths[i])} frames after "
                              f"{self.config.subsampling}x subsampling, needs {int(need[i])})" for i in short)
            raise ValueError(f"{len(short)} utterance(s) too short for their labels under CTC: {which}; "
                             "use less subsampling, drop them, or set zero_infinity to zero their losses")
        log_probs = torch.log_softmax(logits.float(), dim=-1).transpose(0, 1)         # (T', B, V)
        losses = nn.functional.ctc_loss(log_probs, targets, out_lengths, target_lengths, blank=self.config.blank,
                                        reduction="none", zero_infinity=self.config.zero_infinity)   # (B,)
        zeroed = len(short)
        loss = (losses / target_lengths.clamp(min=1).to(losses.dtype)).mean()
        return AcousticOutput(logits, out_lengths, loss, zeroed)
