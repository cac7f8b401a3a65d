"""A Tacotron 2 family acoustic model: text ids -> mel-spectrogram frames, with a stop token.

Shen et al. (2018), "Natural TTS Synthesis by Conditioning WaveNet on Mel Spectrogram Predictions"::

    text (B, N) --embedding--> (B, N, E) --K x [conv1d k=5, batch norm, ReLU, dropout]--> (B, N, C)
        --bidirectional rnnkit layer (any cell)--> memory (B, N, 2He)

    per decoder step t (r frames at once, the "reduction factor" of Wang et al. 2017, Tacotron):
        prenet(last frame of step t-1)            two ReLU layers, dropout on in training AND inference
        attention cell   [prenet, context_{t-1}] -> h_att_t            (any rnnkit cell, one step)
        location-sensitive attention (Chorowski et al. 2015):
            f_t   = conv1d([w_{t-1}, sum_{k<t} w_k])                     (B, N, F)
            e_t,j = v^T tanh(W h_att_t + V memory_j + U f_t,j)           padding -> -inf
            w_t   = softmax(e_t);  context_t = sum_j w_t,j memory_j
        decoder cell     [h_att_t, context_t] -> h_dec_t               (any rnnkit cell, one step)
        frames_t = Linear([h_dec_t, context_t]) -> (B, r * M);   stop_t = Linear(...) -> (B,) logit

    mel_before (B, T, M) --post-net: 5 x [conv1d, batch norm, tanh]--> residual -> mel_after (B, T, M)

Training uses teacher forcing (the prenet reads the true previous frames), optionally mixed with scheduled
sampling (Bengio et al. 2015, "Scheduled Sampling for Sequence Prediction with Recurrent Neural Networks"):
with probability ``scheduled_sampling`` per utterance and step, the prenet reads the model's own previous
frame instead (detached), as it must at synthesis. :func:`guided_attention_loss`
(Tachibana et al. 2018, "Efficiently Trainable Text-to-Speech System Based on Deep Convolutional Networks
with Guided Attention") penalises attention far from the diagonal, which makes alignment appear after a
few hundred updates on a small corpus instead of never. The stop token is predicted per decoder step:
its target is 1 from the step holding the last real frame on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit.layers import CELLS, build_layer
from rnnkit.layers.build import make_cell


@dataclass
class TacotronConfig:
    vocab_size: int                  # input symbols, padding (id ``pad_id``) included
    n_mels: int = 80                 # M: mel bins per frame
    embedding: int = 128             # E (also the encoder's convolution channels)
    encoder_convs: int = 3
    kernel_size: int = 5
    encoder_hidden: int = 64         # He per direction
    attention_size: int = 64
    location_filters: int = 16
    location_kernel: int = 15
    prenet: int = 128                # width of both prenet layers
    attention_hidden: int = 256      # attention cell
    decoder_hidden: int = 256        # decoder cell
    reduction: int = 2               # r: frames per decoder step
    postnet_channels: int = 128
    postnet_layers: int = 5
    cell: str = "lstm"
    dropout: float = 0.5             # encoder / post-net convolutions
    prenet_dropout: float = 0.5      # kept on at inference (Tacotron 2: variation, less exposure bias)
    scheduled_sampling: float = 0.0  # training: chance that a step's prenet reads the model's own last frame
    pad_id: int = 0
    engine: str = "auto"

    def __post_init__(self):
        for name in ("vocab_size", "n_mels", "embedding", "encoder_convs", "kernel_size", "encoder_hidden",
                     "attention_size", "location_filters", "location_kernel", "prenet", "attention_hidden",
                     "decoder_hidden", "reduction", "postnet_channels", "postnet_layers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TacotronConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.kernel_size % 2 == 0 or self.location_kernel % 2 == 0:
            raise ValueError(f"TacotronConfig kernel sizes must be odd (same-length convolutions), got "
                             f"kernel_size={self.kernel_size}, location_kernel={self.location_kernel}")
        if self.cell not in CELLS:
            raise ValueError(f"TacotronConfig.cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        for name in ("dropout", "prenet_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"TacotronConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.scheduled_sampling <= 1.0:
            raise ValueError(f"TacotronConfig.scheduled_sampling must be in [0, 1], got {self.scheduled_sampling}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"TacotronConfig.pad_id must be in [0, vocab_size={self.vocab_size}), got {self.pad_id}")

    def to_dict(self) -> dict:
        return asdict(self)


def conv_block(c_in: int, c_out: int, kernel: int, dropout: float, activation: Optional[nn.Module]) -> nn.Sequential:
    layers = [nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.BatchNorm1d(c_out)]
    if activation is not None:
        layers.append(activation)
    return nn.Sequential(*layers, nn.Dropout(dropout))


class TextEncoder(nn.Module):
    """ids (B, N), lengths (B,) -> memory (B, N, 2He); padded positions are zero."""

    def __init__(self, c: TacotronConfig):
        super().__init__()
        self.embedding = nn.Embedding(c.vocab_size, c.embedding, padding_idx=c.pad_id)
        self.convs = nn.ModuleList(conv_block(c.embedding, c.embedding, c.kernel_size, c.dropout, nn.ReLU())
                                   for _ in range(c.encoder_convs))
        self.rnn = build_layer(c.cell, c.embedding, c.encoder_hidden, 1, bidirectional=True, batch_first=True,
                               engine=c.engine)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        mask = (torch.arange(ids.shape[1], device=ids.device)[None] < lengths[:, None])[:, None]  # (B, 1, N)
        x = self.embedding(ids).transpose(1, 2)                                # (B, E, N)
        for conv in self.convs:
            x = conv(x) * mask                                                 # (B, E, N)
        out, _ = self.rnn(x.transpose(1, 2), lengths=lengths.cpu())            # (B, N, 2He)
        return out * mask.transpose(1, 2)


class LocationSensitiveAttention(nn.Module):
    """Chorowski et al. (2015) hybrid attention: content plus a convolution over the previous and the
    cumulative weights (which keeps the alignment moving forward, one position at a time)."""

    def __init__(self, query_size: int, memory_size: int, c: TacotronConfig):
        super().__init__()
        self.query_proj = nn.Linear(query_size, c.attention_size, bias=False)          # W
        self.memory_proj = nn.Linear(memory_size, c.attention_size, bias=False)        # V
        self.location_conv = nn.Conv1d(2, c.location_filters, c.location_kernel, padding=c.location_kernel // 2,
                                       bias=False)
        self.location_proj = nn.Linear(c.location_filters, c.attention_size, bias=False)  # U
        self.v = nn.Linear(c.attention_size, 1)

    def precompute(self, memory: Tensor) -> Tensor:
        return self.memory_proj(memory)                                        # (B, N, A)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor, previous: Tensor,
                cumulative: Tensor) -> Tuple[Tensor, Tensor]:
        """query (B, Q), keys (B, N, A), memory (B, N, D), mask (B, N) True at real positions, previous and
        cumulative weights (B, N) -> context (B, D), weights (B, N)."""
        loc = self.location_conv(torch.stack([previous, cumulative], 1))       # (B, F, N)
        energy = self.v(torch.tanh(self.query_proj(query)[:, None] + keys
                                   + self.location_proj(loc.transpose(1, 2)))).squeeze(-1)  # (B, N)
        weights = torch.softmax(energy.masked_fill(~mask, float("-inf")), dim=-1)           # (B, N)
        return torch.bmm(weights[:, None], memory).squeeze(1), weights          # (B, D), (B, N)


class Prenet(nn.Module):
    """Two ReLU layers with dropout that stays on in evaluation mode (as in Tacotron 2)."""

    def __init__(self, n_in: int, width: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(n_in, width), nn.Linear(width, width)])
        self.dropout = dropout

    def forward(self, x: Tensor, masks: Optional[Sequence[Tensor]] = None) -> Tensor:
        """x (B, n_in) -> (B, width); ``masks``: one (B, width) dropout mask per layer, already scaled
        (0 or 1 / (1 - dropout): see :meth:`draw_masks`) instead of drawing them here (an exported step
        graph takes them as inputs, so that it stays a pure function)."""
        for k, layer in enumerate(self.layers):
            h = F.relu(layer(x))
            x = F.dropout(h, self.dropout, training=True) if masks is None else h * masks[k]
        return x

    def draw_masks(self, batch: int, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, ...]:
        """The dropout masks :meth:`forward` draws, drawn outside: (B, width) per layer."""
        keep = 1.0 - self.dropout
        return tuple(torch.bernoulli(torch.full((batch, layer.out_features), keep), generator=generator) / keep
                     for layer in self.layers)


class Postnet(nn.Module):
    """mel (B, T, M) -> residual (B, T, M): convolutions with tanh, the last one linear."""

    def __init__(self, c: TacotronConfig):
        super().__init__()
        sizes = [c.n_mels] + [c.postnet_channels] * (c.postnet_layers - 1) + [c.n_mels]
        self.convs = nn.ModuleList(conv_block(a, b, c.kernel_size, c.dropout, nn.Tanh() if i < c.postnet_layers - 1
                                              else None) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))

    def forward(self, mel: Tensor) -> Tensor:
        x = mel.transpose(1, 2)                                                # (B, M, T)
        for conv in self.convs:
            x = conv(x)
        return x.transpose(1, 2)


@dataclass
class DecoderState:
    att: tuple            # attention cell state
    dec: tuple            # decoder cell state
    context: Tensor       # (B, D)
    weights: Tensor       # (B, N) previous attention weights
    cumulative: Tensor    # (B, N) their running sum


@dataclass
class TacotronOutput:
    mel_before: Tensor    # (B, T, M) decoder frames (T = steps * r)
    mel_after: Tensor     # (B, T, M) after the post-net residual
    stop_logits: Tensor   # (B, steps)
    alignments: Tensor    # (B, steps, N)


@dataclass
class Synthesis:
    mel: Tensor           # (T, M) after the post-net, normalised units
    alignment: Tensor     # (steps, N)
    stopped: bool         # the stop token fired before the step limit


class Tacotron(nn.Module):
    def __init__(self, config: TacotronConfig):
        super().__init__()
        c = self.config = config
        memory = 2 * c.encoder_hidden
        self.encoder = TextEncoder(c)
        self.prenet = Prenet(c.n_mels, c.prenet, c.prenet_dropout)
        self.attention_cell = make_cell(c.cell, c.prenet + memory, c.attention_hidden)
        self.attention = LocationSensitiveAttention(c.attention_hidden, memory, c)
        self.decoder_cell = make_cell(c.cell, c.attention_hidden + memory, c.decoder_hidden)
        self.frames = nn.Linear(c.decoder_hidden + memory, c.reduction * c.n_mels)
        self.stop = nn.Linear(c.decoder_hidden + memory, 1)
        self.postnet = Postnet(c)

    # -------------------------------------------------------------------- one step

    def initial_state(self, memory: Tensor) -> DecoderState:
        B, N, D = memory.shape
        zeros = memory.new_zeros(B, N)
        return DecoderState(self.attention_cell.initial_state(B, memory.device, memory.dtype),
                            self.decoder_cell.initial_state(B, memory.device, memory.dtype),
                            memory.new_zeros(B, D), zeros, zeros)

    def step(self, frame: Tensor, state: DecoderState, memory: Tensor, keys: Tensor, mask: Tensor,
             prenet_masks: Optional[Sequence[Tensor]] = None) -> Tuple[Tensor, Tensor, DecoderState]:
        """previous frame (B, M) -> (r frames (B, r*M), stop logit (B,), new state); ``prenet_masks``: the
        prenet's dropout masks drawn by the caller (:meth:`Prenet.draw_masks`), else drawn inside."""
        x = self.prenet(frame, prenet_masks)                                        # (B, P)
        h_att, att = self.attention_cell.step(torch.cat([x, state.context], -1), state.att)  # (B, Ha)
        context, weights = self.attention(h_att, keys, memory, mask, state.weights, state.cumulative)
        h_dec, dec = self.decoder_cell.step(torch.cat([h_att, context], -1), state.dec)      # (B, Hd)
        out = torch.cat([h_dec, context], -1)                                       # (B, Hd + D)
        new = DecoderState(att, dec, context, weights, state.cumulative + weights)
        return self.frames(out), self.stop(out).squeeze(-1), new

    def _encode(self, text: Tensor, text_lengths: Tensor):
        memory = self.encoder(text, text_lengths)                                   # (B, N, D)
        mask = torch.arange(text.shape[1], device=text.device)[None] < text_lengths[:, None]  # (B, N)
        return memory, self.attention.precompute(memory), mask

    # -------------------------------------------------------------------- teacher forcing

    def forward(self, text: Tensor, text_lengths: Tensor, mels: Tensor) -> TacotronOutput:
        """text (B, N), text_lengths (B,), target mels (B, T, M) with T a multiple of r (zero-padded).

        Teacher forcing; in training mode with ``scheduled_sampling`` p > 0, each utterance's prenet reads,
        with probability p at each step, the last frame the model itself predicted at the step before
        (detached) instead of the recording's."""
        c = self.config
        B, T, M = mels.shape
        if T % c.reduction:
            raise ValueError(f"Tacotron.forward: target frames ({T}) must be a multiple of reduction={c.reduction}")
        memory, keys, mask = self._encode(text, text_lengths)
        # the prenet of step t reads the last frame of step t-1 (a zero "go" frame first)
        last = mels[:, c.reduction - 1::c.reduction]                                # (B, S, M)
        inputs = torch.cat([mels.new_zeros(B, 1, M), last[:, :-1]], 1)              # (B, S, M)
        sampling = c.scheduled_sampling if self.training else 0.0
        state = self.initial_state(memory)
        frames: List[Tensor] = []
        stops: List[Tensor] = []
        aligns: List[Tensor] = []
        for t in range(inputs.shape[1]):
            frame = inputs[:, t]                                                    # (B, M)
            if sampling and t:
                own = torch.rand(B, 1, device=mels.device) < sampling                # (B, 1)
                frame = torch.where(own, frames[-1].detach().view(B, c.reduction, M)[:, -1], frame)
            f, s, state = self.step(frame, state, memory, keys, mask)
            frames.append(f)
            stops.append(s)
            aligns.append(state.weights)
        before = torch.stack(frames, 1).reshape(B, T, M)                            # (B, T, M)
        after = before + self.postnet(before)
        return TacotronOutput(before, after, torch.stack(stops, 1), torch.stack(aligns, 1))

    # -------------------------------------------------------------------- free running

    @torch.no_grad()
    def infer(self, text: Tensor, max_steps: int, threshold: float = 0.5) -> Synthesis:
        """One utterance: text (N,) -> frames until the stop probability exceeds ``threshold`` (or
        ``max_steps`` decoder steps, reported as ``stopped=False``)."""
        c = self.config
        ids = text[None]                                                            # (1, N)
        memory, keys, mask = self._encode(ids, torch.tensor([ids.shape[1]], device=ids.device))
        state = self.initial_state(memory)
        frame = memory.new_zeros(1, c.n_mels)
        frames, aligns, stopped = [], [], False
        for _ in range(max_steps):
            f, s, state = self.step(frame, state, memory, keys, mask)
            frames.append(f.view(c.reduction, c.n_mels))
            aligns.append(state.weights[0])
            frame = frames[-1][-1:]                                                 # (1, M)
            if torch.sigmoid(s).item() > threshold:
                stopped = True
                break
        before = torch.cat(frames, 0)[None]                                         # (1, T, M)
        after = before + self.postnet(before)
        return Synthesis(after[0], torch.stack(aligns, 0), stopped)


def stop_targets(mel_lengths: Tensor, steps: int, reduction: int) -> Tensor:
    """(B,) frame lengths -> (B, steps) float: 1 from the step that holds each utterance's last frame on."""
    last_step = (mel_lengths - 1) // reduction                                      # (B,)
    return (torch.arange(steps, device=mel_lengths.device)[None] >= last_step[:, None]).float()


def guided_attention_loss(alignments: Tensor, text_lengths: Tensor, step_lengths: Tensor, sigma: float = 0.2
                          ) -> Tensor:
    """Tachibana et al. (2018): mean of w_t,n * (1 - exp(-(n/N - t/T)^2 / (2 sigma^2))) over the valid
    (step, position) pairs of each utterance; alignments (B, S, N), lengths (B,)."""
    B, S, N = alignments.shape
    t = torch.arange(S, device=alignments.device)[None, :, None] / step_lengths[:, None, None].float()   # (B, S, 1)
    n = torch.arange(N, device=alignments.device)[None, None, :] / text_lengths[:, None, None].float()   # (B, 1, N)
    penalty = 1.0 - torch.exp(-((n - t) ** 2) / (2 * sigma ** 2))                  # (B, S, N)
    valid = ((torch.arange(S, device=alignments.device)[None, :, None] < step_lengths[:, None, None])
             & (torch.arange(N, device=alignments.device)[None, None, :] < text_lengths[:, None, None]))
    return (alignments * penalty * valid).sum() / valid.sum().clamp(min=1)
