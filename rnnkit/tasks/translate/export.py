"""The translator's export graphs: the encoder, and one decoder step with its state explicit.

* ``encoder``: source ids (B, S) and lengths (B,) -> the decoder's starting state: ``state_*`` (one per
  state component of the decoder cell, (decoder layers, B, S_k)), ``query`` (B, Hd), ``feed`` (B, F;
  input feeding only), ``memory`` (B, S, M), ``keys`` (B, S, K; with attention) and ``mask`` (B, S);
* ``decoder_step``: the previous target ids (B,) and that state -> logits (B, V), the attention weights
  (B, S) (with attention) and the next state (same names, ``next_`` in front).

Greedy decoding: start from ``<s>``, feed the arg-max back until ``</s>``; beam search reorders the state's
rows between steps (rnnkit's ``DecodeState.select``). Memory, keys and mask do not change between steps.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.tasks.graphs import ExportGraph, example_lengths, padded_ids
from rnnkit.tasks.translate.model import DecodeState


def state_fields(model) -> tuple[str, ...]:
    """The decoder state's graph names, in order."""
    comps = tuple(f"state_{n}" for n in model.decoder.first_cell.state_names)
    return comps + ("query",) + (("feed",) if model.cfg.input_feed else ()) + ("memory",) + \
        (("keys",) if model.attention is not None else ()) + ("mask",)


def flatten(model, state) -> tuple[Tensor, ...]:
    """A DecodeState as the tensors :func:`state_fields` names (rnn stacked per component: (Ld, B, S_k))."""
    comps = tuple(torch.stack([layer[k] for layer in state.rnn]) for k in range(len(state.rnn[0])))
    return comps + (state.query,) + ((state.feed,) if model.cfg.input_feed else ()) + (state.memory,) + \
        ((state.keys,) if model.attention is not None else ()) + (state.mask,)


class Encoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_lengths: Tensor):
        return flatten(self.model, self.model.encode(src, src_lengths))


class DecoderStep(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, token: Tensor, *flat: Tensor):
        m = self.model
        n = len(m.decoder.first_cell.state_names)
        comps, rest = flat[:n], list(flat[n:])
        query = rest.pop(0)
        feed = rest.pop(0) if m.cfg.input_feed else None
        memory = rest.pop(0)
        keys = rest.pop(0) if m.attention is not None else None
        mask = rest.pop(0)
        rnn = [tuple(c[k] for c in comps) for k in range(comps[0].shape[0])]
        logits, weights, state = m.decode_step(token, DecodeState(rnn, feed, query, memory, keys, mask))  # (B, V)
        carried = n + 1 + int(m.cfg.input_feed)                               # state_*, query, feed
        return (logits,) + ((weights,) if weights is not None else ()) + flatten(m, state)[:carried]


def translate_graphs(loaded) -> list[ExportGraph]:
    model = loaded.model
    gen = torch.Generator().manual_seed(0)
    V_src, V_tgt = model.src_embedding.num_embeddings, model.tgt_embedding.num_embeddings
    pad = model.pad_id

    def source(lengths):
        ids = padded_ids(lengths, V_src, gen, low=pad + 1)                    # (B, S), pad past each length
        return ids.masked_fill(ids == 0, pad) if pad != 0 else ids, lengths

    src, other = source(example_lengths(2, 5)), source(example_lengths(3, 8))
    fields = state_fields(model)
    with torch.no_grad():
        start, start2 = model.encode(*src), model.encode(*other)
    tokens, tokens2 = torch.randint(pad + 1, V_tgt, (2,), generator=gen), torch.randint(pad + 1, V_tgt, (3,), generator=gen)
    carried = [f for f in fields if f.startswith("state_") or f in ("query", "feed")]
    step_outputs = ("logits",) + (("attention",) if model.attention is not None else ()) + \
        tuple(f"next_{f}" for f in carried)
    batch_axes = {f: ({1: "batch"} if f.startswith("state_") else {0: "batch"}) for f in fields}
    for f in ("memory", "keys", "mask"):
        if f in batch_axes:
            batch_axes[f] = {0: "batch", 1: "source"}
    return [
        ExportGraph("encoder", Encoder(model), src, other, ("src", "src_lengths"), fields,
                    {"src": {0: "batch", 1: "source"}, "src_lengths": {0: "batch"}},
                    about="source ids (B, S) and lengths -> the decoder's starting state"),
        ExportGraph("decoder_step", DecoderStep(model), (tokens, *flatten(model, start)),
                    (tokens2, *flatten(model, start2)), ("token", *fields), step_outputs,
                    {"token": {0: "batch"}, **batch_axes},
                    about="previous target ids (B,) and the state -> logits (B, V)"
                          + (", attention (B, S)" if model.attention is not None else "") + " and the next state"),
    ]
