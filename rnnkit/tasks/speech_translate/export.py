"""The speech translator's export graphs: the encoder, and one decoder step with its state explicit (as
the word-level translator's, :mod:`rnnkit.tasks.translate.export`).

* ``encoder``: feature frames (B, T, F), T a multiple of the acoustic model's subsampling (zero frames
  padded at the end; the lengths stay the true ones), and lengths (B,) -> the decoder's starting state:
  ``state_*`` (one per state component of the decoder cell, (decoder layers, B, S_k)), ``feed`` (B, H),
  ``memory`` (B, T', M), ``keys`` (B, T', K) and ``mask`` (B, T'); the normaliser fitted in training is
  inside, the features (the run's extractor) are computed outside;
* ``decoder_step``: the previous French word ids (B,) and that state -> logits (B, V), the attention
  weights (B, T') and the next ``state_*`` and ``feed`` (``next_`` in front).

Greedy decoding: start from ``<s>``, feed the arg-max back until ``</s>``; memory, keys and mask do not
change between steps.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.config import ConfigError
from rnnkit.modules.attention_decoder import DecoderState
from rnnkit.tasks.graphs import ExportGraph, example_lengths, padded_floats

FIXED = ("memory", "keys", "mask")     # the encoder's, the same at every step


def state_fields(model) -> tuple[str, ...]:
    """The decoder state's graph names, in order: the carried ones, then :data:`FIXED`."""
    return tuple(f"state_{n}" for n in model.decoder.cells[0].state_names) + ("feed",) + FIXED


def flatten(state: DecoderState) -> tuple[Tensor, ...]:
    """A DecoderState as the tensors :func:`state_fields` names (rnn stacked per component: (Ld, B, S_k))."""
    comps = tuple(torch.stack([layer[k] for layer in state.rnn]) for k in range(len(state.rnn[0])))
    return comps + (state.feed, state.memory, state.keys, state.mask)


class Encoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, feats: Tensor, lengths: Tensor):
        return flatten(self.model.encode(feats, lengths))


class DecoderStep(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, token: Tensor, *flat: Tensor):
        n = len(self.model.decoder.cells[0].state_names)
        comps, (feed, memory, keys, mask) = flat[:n], flat[n:]
        rnn = [tuple(c[k] for c in comps) for k in range(comps[0].shape[0])]
        logits, weights, state = self.model.decode_step(token, DecoderState(rnn, feed, memory, keys, mask))
        return (logits, weights) + flatten(state)[:n + 1]                    # (B, V), (B, T'), state_*, feed


def speech_translate_graphs(loaded) -> list[ExportGraph]:
    model = loaded.model
    if int(model.normalizer.count) == 0:  # the graph cannot check it (see FeatureNormalizer.forward)
        raise ConfigError(f"{loaded.run_dir}: the feature normaliser was never fitted; this run cannot be exported")
    F, V = model.features.num_features, model.decoder.config.vocab_size
    k = model.acoustic.config.subsampling                                       # frames stacked into one memory frame
    gen = torch.Generator().manual_seed(0)
    lengths, other = example_lengths(2, 4 * k), example_lengths(3, 7 * k)
    src, src2 = (padded_floats(lengths, F, gen), lengths), (padded_floats(other, F, gen), other)
    fields = state_fields(model)
    with torch.no_grad():
        start, start2 = flatten(model.encode(*src)), flatten(model.encode(*src2))
    low = loaded.tgt_vocab.pad_id + 1
    tokens, tokens2 = torch.randint(low, V, (2,), generator=gen), torch.randint(low, V, (3,), generator=gen)
    carried = fields[:-len(FIXED)]
    axes = {f: ({1: "batch"} if f.startswith("state_") else {0: "batch"}) for f in carried}
    axes.update({f: {0: "batch", 1: "memory"} for f in FIXED})
    return [
        ExportGraph("encoder", Encoder(model), src, src2, ("feats", "lengths"), fields,
                    {"feats": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}, multiples={"time": k},
                    about=f"features (B, T, {F}), T a multiple of {k} (pad with zero frames; lengths stay the true "
                          f"ones), and lengths (B,) -> the decoder's starting state"),
        ExportGraph("decoder_step", DecoderStep(model), (tokens, *start), (tokens2, *start2), ("token", *fields),
                    ("logits", "attention", *(f"next_{f}" for f in carried)), {"token": {0: "batch"}, **axes},
                    about="previous French word ids (B,) and the state -> logits (B, V), attention (B, T') and "
                          "the next state"),
    ]
