"""Encoder-decoder with attention over any rnnkit cell.

    source ids (B, S) -> embedding -> Recurrent encoder (stacked, optionally bidirectional, lengths)
        -> memory (B, S, M = D*H) and final state -> bridge -> decoder initial state
    decoder step t (Luong et al. 2015 "global attention" with input feeding; Bahdanau et al. 2015
    additive attention takes its query from the previous decoder output and feeds the context in):
        x_t   = [emb(y_{t-1}); c_t (bahdanau); a_{t-1} (input feeding)]
        h_t   = stacked cells, one ``cell.step`` per layer
        c_t   = attention(h_t (luong) or h_{t-1} (bahdanau), memory)
        a_t   = tanh(W_c [h_t; c_t])                      attentional vector (E when tied, else H)
        logits_t = W_s dropout(a_t)                       W_s = target embedding when tied

``forward(batch)`` teacher-forces the whole target and returns logits and a label-smoothed loss;
``encode`` + ``decode_step`` are the one-step interface greedy and beam search use. With Luong
attention, no input feeding and no sampling, ``forward`` runs the decoder layer over the whole
target at once (fast engines); the step loop gives the same loss (tested).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit.layers import build_layer

from rnnkit.modules.attention import build_attention
from rnnkit.modules.search import select_rows
from rnnkit.modules.scheduled_sampling import teacher_forcing_ratio as scheduled_ratio
from .config import Seq2SeqModelConfig
from .data import Seq2SeqBatch
from rnnkit.data.vocab import CONVENTION


@dataclass
class DecodeState:
    """Everything one decoder step needs, batch-first; ``select`` reorders/repeats rows (beams)."""
    rnn: List[Tuple[Tensor, ...]]   # per decoder layer, the cell's state components (B, S_k)
    feed: Optional[Tensor]          # (B, F) previous attentional vector (input feeding) or None
    query: Tensor                   # (B, H) previous top-layer output (Bahdanau's query)
    memory: Tensor                  # (B, S, M) encoder outputs
    keys: Optional[Tensor]          # (B, S, K) attention keys precomputed from memory
    mask: Tensor                    # (B, S) True at real source tokens

    def select(self, index: Tensor) -> "DecodeState":
        return select_rows(self, index)


@dataclass
class Seq2SeqOutput:
    """logits (B, T, V); loss: mean over the ``n`` target tokens; attention (B, T, S) or None."""
    logits: Tensor
    loss: Optional[Tensor] = None
    n: int = 1
    attention: Optional[Tensor] = None
    state: object = None


def teacher_forcing_ratio(cfg: Seq2SeqModelConfig, updates: int) -> float:
    """Probability of feeding the gold token after ``updates`` training batches: scheduled sampling
    (Bengio et al. 2015) from 1 to ``cfg.teacher_forcing`` over ``cfg.sampling_steps``
    (:func:`rnnkit.modules.sampling.teacher_forcing_ratio`)."""
    return scheduled_ratio(cfg.teacher_forcing, cfg.sampling_schedule, cfg.sampling_steps, updates)


class Seq2SeqModel(nn.Module):
    def __init__(self, cfg: Seq2SeqModelConfig, src_vocab_size: int, tgt_vocab_size: int, *,
                 pad_id: int = CONVENTION["<pad>"]):
        """``pad_id``: the vocabularies' ``<pad>`` (embedded as zeros, ignored by the loss)."""
        super().__init__()
        self.cfg, self.pad_id = cfg, pad_id
        E, H = cfg.embedding, cfg.hidden
        self.src_embedding = nn.Embedding(src_vocab_size, E, padding_idx=pad_id)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, E, padding_idx=pad_id)
        if cfg.embedding_init == "scaled":
            for emb in (self.src_embedding, self.tgt_embedding):
                nn.init.normal_(emb.weight, 0.0, E ** -0.5)                   # N(0, 1/E)
                with torch.no_grad():
                    emb.weight[pad_id].zero_()
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = build_layer(cfg.cell, E, H, cfg.encoder_layers, bidirectional=cfg.bidirectional,
                                   batch_first=True, dropout=cfg.dropout, engine=cfg.engine)
        M = self.encoder.output_size
        self.feed_size = E if cfg.tie_embeddings else H
        probe = build_layer(cfg.cell, 1, H)  # sizes of the decoder cell's output and state
        Hd = probe.output_size
        dec_in = E + (M if cfg.attention == "bahdanau" else 0) + (self.feed_size if cfg.input_feed else 0)
        self.decoder = build_layer(cfg.cell, dec_in, H, cfg.decoder_layers, batch_first=True,
                                   dropout=cfg.dropout, engine=cfg.engine)
        self.attention = build_attention(cfg.attention, Hd, M, cfg.attention_size)
        self.combine = nn.Linear(Hd + (M if self.attention is not None else 0), self.feed_size, bias=False)
        self.generator = nn.Linear(self.feed_size, tgt_vocab_size)
        if cfg.tie_embeddings:
            self.generator.weight = self.tgt_embedding.weight
        self.state_sizes = tuple(self.decoder.cells[0].state_sizes)
        enc_cell = self.encoder.cells[0]
        self.bridge = (nn.Linear(self.encoder.num_directions * enc_cell.state_sizes[0],
                                 cfg.decoder_layers * sum(self.state_sizes))
                       if cfg.bridge == "dense" else None)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ encoder
    def encode(self, src: Tensor, src_lengths: Tensor) -> DecodeState:
        """src (B, S) ids, src_lengths (B,) -> the decoder's initial state."""
        emb = self.drop(self.src_embedding(src))                              # (B, S, E)
        memory, final = self.encoder(emb, lengths=src_lengths.cpu())          # (B, S, M)
        return self._start(src, src_lengths, memory, final)

    def _start(self, src: Tensor, src_lengths: Tensor, memory: Tensor, final) -> DecodeState:
        B, S = src.shape
        lengths = src_lengths.to(src.device)
        mask = torch.arange(S, device=src.device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, S)
        rnn = self._bridge(final, B, memory)
        keys = self.attention.precompute(memory) if self.attention is not None else None
        top = self.decoder.cells[-1]
        query = top.readout(top.hidden_of(rnn[-1]))                           # (B, Hd)
        feed = memory.new_zeros(B, self.feed_size) if self.cfg.input_feed else None
        return DecodeState(rnn, feed, query, memory, keys, mask)

    def _bridge(self, final, B: int, like: Tensor) -> List[Tuple[Tensor, ...]]:
        if self.bridge is None:
            return [c.initial_state(B, like.device, like.dtype) for c in self.decoder.cells]
        h = final[0] if isinstance(final, tuple) else final                   # (Le*D, B, S0)
        D = self.encoder.num_directions
        last = h[-D:].transpose(0, 1).reshape(B, -1)                          # (B, D*S0) top layer
        flat = torch.tanh(self.bridge(last))                                  # (B, Ld * sum(S_k))
        chunks = flat.split(list(self.state_sizes) * self.cfg.decoder_layers, dim=1)
        n = len(self.state_sizes)
        return [tuple(chunks[k * n:(k + 1) * n]) for k in range(self.cfg.decoder_layers)]

    # ------------------------------------------------------------------ decoder
    def decode_step(self, y_prev: Tensor, state: DecodeState) -> Tuple[Tensor, Optional[Tensor], DecodeState]:
        """One step: previous tokens (B,) -> (logits (B, V), attention weights (B, S) or None, state)."""
        att, weights, state = self._step_features(self.drop(self.tgt_embedding(y_prev)), state)
        return self.generator(self.drop(att)), weights, state

    def _step_features(self, emb: Tensor, state: DecodeState) -> Tuple[Tensor, Optional[Tensor], DecodeState]:
        """The recurrence of one step from the embedded previous token (B, E): attentional vector (B, F)."""
        parts = [emb]
        if self.cfg.attention == "bahdanau":
            ctx, weights = self.attention(state.query, state.keys, state.memory, state.mask)
            parts.append(ctx)                                                 # (B, M)
        if self.cfg.input_feed:
            parts.append(state.feed)                                          # (B, F)
        h = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        rnn = []
        for k, cell in enumerate(self.decoder.cells):
            if k > 0 and self.training and self.cfg.dropout:
                h = F.dropout(h, self.cfg.dropout, True)                      # as Recurrent does between layers
            h, s = cell.step(h, state.rnn[k])                                 # (B, Hd)
            rnn.append(tuple(s))
        if self.attention is None:
            weights, feat = None, h
        else:
            if self.cfg.attention != "bahdanau":
                ctx, weights = self.attention(h, state.keys, state.memory, state.mask)
            feat = torch.cat([h, ctx], dim=-1)                                # (B, Hd + M)
        att = torch.tanh(self.combine(feat))                                  # (B, F)
        return att, weights, replace(state, rnn=rnn, feed=att if self.cfg.input_feed else None, query=h)

    def whole_sequence_ok(self, ratio: float) -> bool:
        """Whether the decoder can run over the whole target at once (no step-to-step feedback)."""
        return self.cfg.attention in ("dot", "general", "none") and not self.cfg.input_feed and ratio >= 1.0

    def _decode_whole(self, tgt_in: Tensor, state: DecodeState) -> Tuple[Tensor, Optional[Tensor]]:
        emb = self.drop(self.tgt_embedding(tgt_in))                           # (B, T, E)
        comps = tuple(torch.stack([s[j] for s in state.rnn]) for j in range(len(self.state_sizes)))
        hx = comps[0] if len(comps) == 1 else comps                           # (Ld, B, S_j)
        out, _ = self.decoder(emb, hx)                                        # (B, T, Hd)
        if self.attention is None:
            weights, feat = None, out
        else:
            ctx, weights = self.attention(out, state.keys, state.memory, state.mask)  # (B, T, M)
            feat = torch.cat([out, ctx], dim=-1)
        return self.generator(self.drop(torch.tanh(self.combine(feat)))), weights

    def _decode_loop(self, tgt_in: Tensor, state: DecodeState, ratio: float) -> Tuple[Tensor, Optional[Tensor]]:
        """Step by step. Teacher-forced (ratio 1): embeddings and the output projection run once over
        all steps. Sampling (ratio < 1): each step's arg-max token replaces the gold one with
        probability 1 - ratio, per sequence."""
        T = tgt_in.shape[1]
        if ratio >= 1.0:
            emb = self.drop(self.tgt_embedding(tgt_in))                       # (B, T, E)
            feats, weights = [], []
            for t in range(T):
                att, w, state = self._step_features(emb[:, t], state)
                feats.append(att)
                weights.append(w)
            logits = self.generator(self.drop(torch.stack(feats, dim=1)))    # (B, T, V)
        else:
            steps, weights = [], []
            y = tgt_in[:, 0]
            for t in range(T):
                if t > 0:
                    gold = torch.rand(y.shape[0], device=y.device) < ratio
                    y = torch.where(gold, tgt_in[:, t], steps[-1].detach().argmax(-1))
                step_logits, w, state = self.decode_step(y, state)
                steps.append(step_logits)
                weights.append(w)
            logits = torch.stack(steps, dim=1)                                # (B, T, V)
        attn = torch.stack(weights, dim=1) if weights[0] is not None else None  # (B, T, S)
        return logits, attn

    # ------------------------------------------------------------------ training
    def forward(self, batch: Seq2SeqBatch, *, step_by_step: bool = False) -> Seq2SeqOutput:
        """Teacher-forced logits (B, T, V) and the label-smoothed cross-entropy over real tokens."""
        training = self.training and torch.is_grad_enabled()
        ratio = teacher_forcing_ratio(self.cfg, int(self.updates)) if training else 1.0
        if training:
            self.updates += 1
        state = self.encode(batch.src, batch.src_lengths)
        if self.whole_sequence_ok(ratio) and not step_by_step:
            logits, attn = self._decode_whole(batch.tgt_in, state)
        else:
            logits, attn = self._decode_loop(batch.tgt_in, state, ratio)
        out = Seq2SeqOutput(logits=logits, attention=attn)
        if batch.tgt_out is not None:
            V = logits.shape[-1]
            out.loss = F.cross_entropy(logits.reshape(-1, V).float(), batch.tgt_out.reshape(-1),
                                       ignore_index=self.pad_id,
                                       label_smoothing=self.cfg.label_smoothing if self.training else 0.0)
            out.n = int((batch.tgt_out != self.pad_id).sum())
        return out

    def diagnostic_pass(self, batch: Seq2SeqBatch, last_step_only: bool = False):
        """Teacher-forced loss with the *encoder* run with gradient probes and gate recording, for
        :mod:`rnnkit.train.diagnostics`: how the error reaches each source position. With
        ``last_step_only`` the loss is that of each sequence's final target token (``</s>``).

        Returns ``(loss, SequenceResult of the encoder)``.
        """
        emb = self.src_embedding(batch.src)                                     # (B, S, E), eval: no dropout
        result = self.encoder.run(emb, lengths=batch.src_lengths.cpu(), probe_grads=True, record_gates=True)
        state = self._start(batch.src, batch.src_lengths, result.output, result.state)
        if self.whole_sequence_ok(1.0):
            logits, _ = self._decode_whole(batch.tgt_in, state)
        else:
            logits, _ = self._decode_loop(batch.tgt_in, state, 1.0)
        targets = batch.tgt_out
        if last_step_only:
            last = (targets != self.pad_id).sum(1) - 1                           # (B,) index of </s>
            rows = torch.arange(targets.shape[0], device=targets.device)
            logits, targets = logits[rows, last].unsqueeze(1), targets[rows, last].unsqueeze(1)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                               ignore_index=self.pad_id)
        return loss, result


class Seq2SeqMeter:
    """Validation metrics: loss (no label smoothing), perplexity and token accuracy."""

    def __init__(self, pad_id: int = CONVENTION["<pad>"]):
        self.pad_id = pad_id  # target padding, left out of the accuracy
        self.loss = 0.0
        self.n = 0
        self.correct = 0

    def update(self, out: Seq2SeqOutput, batch: Seq2SeqBatch) -> None:
        self.loss += float(out.loss) * out.n
        self.n += out.n
        real = batch.tgt_out != self.pad_id
        self.correct += int(((out.logits.argmax(-1) == batch.tgt_out) & real).sum())

    def compute(self) -> dict:
        loss = self.loss / max(self.n, 1)
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "token_acc": self.correct / max(self.n, 1)}
