"""A recurrent decoder attending over any encoder's memory (Luong et al. 2015, global attention, input feeding).

::

    memory (B, S, M), lengths (B,) --start--> DecoderState (zero cell states, keys = attention.precompute(memory))
    step t:  x_t = [emb(y_{t-1}); a_{t-1}]                    input feeding: the previous attentional vector
             h_t = stacked cells, one ``cell.step`` per layer
             c_t, w_t = attention(h_t, memory)                 w_t (B, S): weights over the memory, 0 on padding
             a_t = tanh(W_c [h_t; c_t])                        (B, H)
             logits_t = W_s dropout(a_t)                       (B, V)

``step`` is the one-step interface of :mod:`rnnkit.modules.search` (``DecoderState.select`` reorders
rows for beams); ``forward`` teacher-forces a whole target. Any registered cell and the scorers of
:mod:`rnnkit.modules.attention` (``dot``, ``general``, ``bahdanau``, each scoring the current top-layer
output) are accepted. The encoder is the caller's: a speech translator puts it over acoustic frames
(Weiss et al. 2017), where the word-level translation model of ``rnnkit train translate`` has its own
embedding encoder.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit.layers import CELLS, build_layer
from rnnkit.modules.attention import build_attention
from rnnkit.modules.search import select_rows


@dataclass
class AttentionDecoderConfig:
    vocab_size: int                 # target vocabulary V (specials included)
    memory_size: int                # M: width of the encoder's outputs
    cell: str = "lstm"
    embedding: int = 64
    hidden: int = 128
    layers: int = 1
    attention: str = "general"      # dot, general or bahdanau
    attention_size: int = 0         # bahdanau's hidden size (0 = hidden)
    dropout: float = 0.1
    pad_id: int = 0

    def __post_init__(self):
        for name in ("vocab_size", "memory_size", "embedding", "hidden", "layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"AttentionDecoderConfig.{name} must be a positive integer, got {value!r}")
        if self.cell not in CELLS:
            raise ValueError(f"AttentionDecoderConfig.cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.attention not in ("dot", "general", "bahdanau"):
            raise ValueError(f"AttentionDecoderConfig.attention must be dot, general or bahdanau, "
                             f"got {self.attention!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"AttentionDecoderConfig.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class DecoderState:
    """What one decoder step needs, batch-first; ``select`` reorders / repeats rows (beams)."""
    rnn: List[Tuple[Tensor, ...]]   # per layer, the cell's state components (B, S_k)
    feed: Tensor                    # (B, H) previous attentional vector
    memory: Tensor                  # (B, S, M)
    keys: Tensor                    # (B, S, K) attention keys of the memory
    mask: Tensor                    # (B, S) True at real memory frames

    def select(self, index: Tensor) -> "DecoderState":
        return select_rows(self, index)


class AttentionDecoder(nn.Module):
    def __init__(self, config: AttentionDecoderConfig):
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding, padding_idx=c.pad_id)
        self.cells = build_layer(c.cell, c.embedding + c.hidden, c.hidden, c.layers, batch_first=True,
                                 engine="reference").cells
        out = self.cells[-1].output_size                                          # H, or a projection
        self.attention = build_attention(c.attention, out, c.memory_size, c.attention_size)
        self.combine = nn.Linear(out + c.memory_size, c.hidden, bias=False)
        self.generator = nn.Linear(c.hidden, c.vocab_size)
        self.drop = nn.Dropout(c.dropout)

    def start(self, memory: Tensor, lengths: Tensor) -> DecoderState:
        """The state before the first step: memory (B, S, M) with valid lengths (B,)."""
        B, S, _ = memory.shape
        mask = torch.arange(S, device=memory.device)[None, :] < lengths.to(memory.device)[:, None]   # (B, S)
        rnn = [tuple(cell.initial_state(B, memory.device, memory.dtype)) for cell in self.cells]
        return DecoderState(rnn, memory.new_zeros(B, self.config.hidden), memory,
                            self.attention.precompute(memory), mask)

    def _features(self, emb: Tensor, state: DecoderState) -> Tuple[Tensor, Tensor, DecoderState]:
        """One step from the embedded previous token (B, E) -> attentional vector (B, H), weights (B, S)."""
        h = torch.cat([emb, state.feed], dim=-1)                                  # (B, E + H)
        rnn = []
        for k, cell in enumerate(self.cells):
            if k > 0:
                h = self.drop(h)
            h, s = cell.step(h, state.rnn[k])                                     # (B, H)
            rnn.append(tuple(s))
        ctx, weights = self.attention(h, state.keys, state.memory, state.mask)    # (B, M), (B, S)
        att = torch.tanh(self.combine(torch.cat([h, ctx], dim=-1)))               # (B, H)
        return att, weights, DecoderState(rnn, att, state.memory, state.keys, state.mask)

    def step(self, y_prev: Tensor, state: DecoderState) -> Tuple[Tensor, Tensor, DecoderState]:
        """Previous tokens (B,) -> (logits (B, V), attention weights (B, S), next state)."""
        att, weights, state = self._features(self.drop(self.embedding(y_prev)), state)
        return self.generator(self.drop(att)), weights, state

    def forward(self, tgt_in: Tensor, state: DecoderState) -> Tuple[Tensor, Tensor]:
        """Teacher-forced logits (B, T, V) and attention weights (B, T, S) of targets (B, T) (``<s>`` first)."""
        emb = self.drop(self.embedding(tgt_in))                                   # (B, T, E)
        feats, weights = [], []
        for t in range(tgt_in.shape[1]):
            att, w, state = self._features(emb[:, t], state)
            feats.append(att)
            weights.append(w)
        return self.generator(self.drop(torch.stack(feats, 1))), torch.stack(weights, 1)

    def loss(self, logits: Tensor, tgt_out: Tensor, label_smoothing: float = 0.0) -> Tuple[Tensor, int]:
        """Mean cross-entropy over the real target tokens (B, T) and their count."""
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.reshape(-1, V).float(), tgt_out.reshape(-1), ignore_index=self.config.pad_id,
                               label_smoothing=label_smoothing)
        return loss, int((tgt_out != self.config.pad_id).sum())

