"""A convolutional encoder with a recurrent decoder over its feature grid: image captioning and
sequence-of-tags prediction share it.

    images (B, 3, H, W) uint8 -> /255, ImageNet-normalised -> CNN -> grid (B, C, h, w) -> feats (B, S=h*w, C)

``attention="soft"`` - "Show, Attend and Tell" (Xu et al. 2015), soft deterministic attention::

    h_0, c_0   = tanh(W_init mean_s feats)                      per layer and state component
    alpha_t    = softmax_s(v^T tanh(W h_{t-1} + U feats_s))      additive attention, (B, S)
    z_t        = sigmoid(f_beta(h_{t-1})) * sum_s alpha_ts feats_s      gated context, (B, C)
    h_t        = cell([E y_{t-1}; z_t], h_{t-1})                 any rnnkit cell, stacked
    logits_t   = L_o dropout(E y_{t-1} + L_h h_t + L_z z_t)      the paper's deep output layer

and the doubly stochastic regularisation ``lambda * mean_s (1 - sum_t alpha_ts)^2`` (each image position
attended about once over the caption) added to the cross-entropy.

``attention="none"`` - "Show and Tell" (Vinyals et al. 2015): the image embedding
``x_{-1} = W_e mean_s feats`` is the decoder's first input (from a zero state), then the words;
``logits_t = L_o dropout(E y_{t-1} + L_h h_t)``.

Training feeds the gold previous token with probability given by scheduled sampling
(:mod:`rnnkit.modules.sampling`); ``encode`` + ``decode_step`` are the one-step interface of
:mod:`rnnkit.modules.search` (greedy and beam search), where ``src`` is a batch of images
(B, 3, H, W) or of cached features (B, S, C).
"""
from __future__ import annotations

import math

from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit.data.images import normalize
from rnnkit.layers import build_layer
from rnnkit.modules.attention import AdditiveAttention
from rnnkit.modules.image_encoders import build_image_encoder
from rnnkit.modules.scheduled_sampling import SCHEDULES, teacher_forcing_ratio
from rnnkit.modules.search import select_rows

ATTENTIONS = ("soft", "none")
#: where a grid cell is: a learned row + column embedding added to its features (as DETR's learned
#: positional encoding), or nothing (convolutional features alone carry no absolute position)
POSITIONS = ("learned", "none")


@dataclass
class ImageDecoderConfig:
    """The image encoder and the recurrent decoder."""
    encoder: str = "small"
    freeze_encoder: bool = False
    cell: str = "lstm"
    embedding: int = 64
    hidden: int = 256
    layers: int = 1
    attention: str = "soft"
    attention_size: int = 0            # 0 = hidden
    dropout: float = 0.3
    doubly_stochastic: float = 1.0     # lambda of the attention regulariser (soft attention only)
    teacher_forcing: float = 1.0
    sampling_schedule: str = "constant"
    sampling_steps: int = 10000
    position: str = "learned"

    def __post_init__(self):
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {', '.join(POSITIONS)}, got {self.position!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if self.sampling_schedule not in SCHEDULES:
            raise ValueError(f"sampling_schedule must be one of {', '.join(SCHEDULES)}")
        for name in ("embedding", "hidden", "layers", "sampling_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.teacher_forcing <= 1.0 or self.doubly_stochastic < 0:
            raise ValueError("dropout must be in [0, 1), teacher_forcing in [0, 1], doubly_stochastic >= 0")


@dataclass
class CaptionState:
    """What one decoder step needs, batch-first; ``select`` reorders / repeats rows (beams)."""
    rnn: List[Tuple[Tensor, ...]]   # per layer, the cell's state components (B, S_k)
    query: Tensor                   # (B, H) previous top-layer output
    memory: Tensor                  # (B, S, C) image features
    keys: Optional[Tensor]          # (B, S, A) attention keys, None without attention
    mask: Tensor                    # (B, S) True everywhere (every grid cell is real)

    def select(self, index: Tensor) -> "CaptionState":
        return select_rows(self, index)


@dataclass
class DecoderOutput:
    """logits (B, T, V); loss: cross-entropy mean over the ``n`` real tokens (+ the attention
    regulariser); attention (B, T, S) or None."""
    logits: Tensor
    loss: Optional[Tensor] = None
    n: int = 1
    attention: Optional[Tensor] = None
    state: object = None


class ImageFeatures(nn.Module):
    """Images -> a feature grid (B, S, C); a frozen encoder stays in eval mode and gets no gradient."""

    def __init__(self, name: str, frozen: bool):
        super().__init__()
        self.cnn = build_image_encoder(name)
        self.frozen = frozen
        self.channels = self.cnn.out_channels
        if frozen:
            self.cnn.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.cnn.eval()                   # batch-norm statistics stay those of the given weights
        return self

    def forward(self, images: Tensor) -> Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images        # (B, 3, H, W) in [0, 1]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            grid = self.cnn(normalize(x))                                             # (B, C, h, w)
        return grid.flatten(2).transpose(1, 2)                                        # (B, S, C)


class GridPosition(nn.Module):
    """A learned embedding of each cell of a square feature grid: row embedding + column embedding (C,),
    so the context vector of soft attention says where it looked ("left of" vs "above")."""

    MAX_SIDE = 32

    def __init__(self, channels: int):
        super().__init__()
        self.rows = nn.Parameter(torch.zeros(self.MAX_SIDE, channels))
        self.cols = nn.Parameter(torch.zeros(self.MAX_SIDE, channels))
        nn.init.normal_(self.rows, std=0.02)
        nn.init.normal_(self.cols, std=0.02)

    def forward(self, memory: Tensor) -> Tensor:
        """Features (B, S, C) of a side x side grid (row-major, as ``flatten(2)`` lays it out) -> with positions."""
        S = memory.shape[1]
        side = math.isqrt(S)
        if side * side != S or side > self.MAX_SIDE:
            raise ValueError(f"a learned grid position needs a square feature grid of at most "
                             f"{self.MAX_SIDE} x {self.MAX_SIDE} cells, got {S} cells")
        pos = (self.rows[:side, None, :] + self.cols[None, :side, :]).reshape(S, -1)   # (S, C)
        return memory + pos


class ImageDecoder(nn.Module):
    """CNN encoder + recurrent decoder; ``forward(batch)`` with ``batch`` a dict of ``images`` (B, 3, H, W)
    or ``features`` (B, S, C), optionally ``rows`` (N,) the image of each target sequence (several
    captions per image; default: one each), ``tokens_in`` (N, T) starting with ``<s>`` and
    ``tokens_out`` (N, T) ending with ``</s>`` (``pad_id`` after)."""

    def __init__(self, cfg: ImageDecoderConfig, vocab_size: int, pad_id: int):
        super().__init__()
        self.cfg, self.pad_id = cfg, pad_id
        self.encoder = ImageFeatures(cfg.encoder, cfg.freeze_encoder)
        C, E, H = self.encoder.channels, cfg.embedding, cfg.hidden
        self.embedding = nn.Embedding(vocab_size, E, padding_idx=pad_id)
        soft = cfg.attention == "soft"
        self.decoder = build_layer(cfg.cell, E + (C if soft else 0), H, cfg.layers, batch_first=True)
        self.state_sizes = tuple(self.decoder.cells[0].state_sizes)
        Hd = self.decoder.cells[-1].output_size
        self.position = GridPosition(C) if soft and cfg.position == "learned" else None
        if soft:
            self.attention = AdditiveAttention(Hd, C, cfg.attention_size or H)
            self.gate = nn.Linear(Hd, 1)                                                  # f_beta
            self.init_state = nn.Linear(C, cfg.layers * sum(self.state_sizes))
            self.out_context = nn.Linear(C, E, bias=False)                                # L_z
        else:
            self.image_embedding = nn.Linear(C, E)                                        # W_e
        self.out_hidden = nn.Linear(Hd, E)                                                # L_h
        self.generator = nn.Linear(E, vocab_size)                                         # L_o
        self.drop = nn.Dropout(cfg.dropout)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ encoder
    def features(self, src: Tensor) -> Tensor:
        """Images (B, 3, H, W) or cached features (B, S, C) -> features (B, S, C)."""
        return self.encoder(src) if src.dim() == 4 else src

    def encode(self, src: Tensor, src_lengths: Optional[Tensor] = None) -> CaptionState:
        """The decoder's initial state for a batch of images or features (``src_lengths`` is ignored:
        every image has the same grid)."""
        memory = self.features(src)                                                       # (B, S, C)
        if self.position is not None:
            memory = self.position(memory)                                                # (B, S, C)
        B, S, _ = memory.shape
        mask = torch.ones(B, S, dtype=torch.bool, device=memory.device)
        pooled = memory.mean(1)                                                           # (B, C)
        if self.cfg.attention == "soft":
            flat = torch.tanh(self.init_state(pooled))                                    # (B, L * sum S_k)
            chunks = flat.split(list(self.state_sizes) * self.cfg.layers, dim=1)
            n = len(self.state_sizes)
            rnn = [tuple(chunks[k * n:(k + 1) * n]) for k in range(self.cfg.layers)]
            return CaptionState(rnn, rnn[-1][0], memory, self.attention.precompute(memory), mask)
        x = self.image_embedding(pooled)                                                  # (B, E): x_{-1}
        rnn = []
        for cell in self.decoder.cells:
            x, s = cell.step(self.drop(x) if rnn else x, None)
            rnn.append(tuple(s))
        return CaptionState(rnn, x, memory, None, mask)

    def grid_size(self, image_size: int) -> int:
        """Positions S of the feature grid of a square image of ``image_size`` pixels."""
        with torch.no_grad():
            return self.encoder(torch.zeros(1, 3, image_size, image_size)).shape[1]

    # ------------------------------------------------------------------ decoder
    def decode_step(self, y_prev: Tensor, state: CaptionState) -> Tuple[Tensor, Optional[Tensor], CaptionState]:
        """Previous tokens (B,) -> (logits (B, V), attention weights (B, S) or None, next state)."""
        emb = self.embedding(y_prev)                                                      # (B, E)
        parts, weights, z = [self.drop(emb)], None, None
        if self.cfg.attention == "soft":
            ctx, weights = self.attention(state.query, state.keys, state.memory, state.mask)  # (B, C), (B, S)
            z = torch.sigmoid(self.gate(state.query)) * ctx                               # (B, C)
            parts.append(z)
        h = torch.cat(parts, dim=-1)
        rnn = []
        for k, cell in enumerate(self.decoder.cells):
            if k > 0:
                h = self.drop(h)
            h, s = cell.step(h, state.rnn[k])                                             # (B, H)
            rnn.append(tuple(s))
        deep = emb + self.out_hidden(h)                                                   # (B, E)
        if z is not None:
            deep = deep + self.out_context(z)
        logits = self.generator(self.drop(deep))                                          # (B, V)
        return logits, weights, replace(state, rnn=rnn, query=h)

    def forward(self, batch: dict) -> DecoderOutput:
        """Logits of every step (teacher forcing, or scheduled sampling while training) and the loss."""
        training = self.training and torch.is_grad_enabled()
        c = self.cfg
        ratio = teacher_forcing_ratio(c.teacher_forcing, c.sampling_schedule, c.sampling_steps,
                                      int(self.updates)) if training else 1.0
        if training:
            self.updates += 1
        src = batch["features"] if "features" in batch else batch["images"]
        state = self.encode(src)                                                          # once per image
        if "rows" in batch:
            state = state.select(batch["rows"])                                           # once per caption
        tokens_in = batch["tokens_in"]                                                    # (B, T)
        steps, weights = [], []
        y = tokens_in[:, 0]
        for t in range(tokens_in.shape[1]):
            if t > 0:
                y = tokens_in[:, t]
                if ratio < 1.0:
                    gold = torch.rand(y.shape[0], device=y.device) < ratio
                    y = torch.where(gold, y, steps[-1].detach().argmax(-1))
            logits, w, state = self.decode_step(y, state)
            steps.append(logits)
            weights.append(w)
        logits = torch.stack(steps, dim=1)                                                # (B, T, V)
        attn = torch.stack(weights, dim=1) if weights[0] is not None else None            # (B, T, S)
        out = DecoderOutput(logits, attention=attn)
        target = batch.get("tokens_out")
        if target is not None:
            real = target != self.pad_id                                                  # (B, T)
            out.loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                                       ignore_index=self.pad_id)
            out.n = int(real.sum())
            if attn is not None and c.doubly_stochastic > 0:
                out.loss = out.loss + c.doubly_stochastic * attention_penalty(attn, real)
        return out


def attention_penalty(attn: Tensor, real: Tensor) -> Tensor:
    """Doubly stochastic regularisation: ``mean_{b,s} (1 - sum_t alpha_bts)^2`` over real steps.

    attn (B, T, S), real (B, T) bool."""
    total = (attn * real.unsqueeze(-1)).sum(1)                                            # (B, S)
    return ((1.0 - total) ** 2).mean()
