"""The synthesiser's export graphs: the text encoder, one decoder step with its state explicit, the post-net.

* ``encoder``: symbol ids (B, N) and lengths (B,) -> ``memory`` (B, N, D), attention ``keys`` (B, N, A),
  ``mask`` (B, N), and the decoder's starting state: ``att_*`` (the attention cell's state components,
  (B, Ha)), ``dec_*`` (the decoder cell's, (B, Hd)), ``context`` (B, D), ``weights`` and ``cumulative``
  (B, N);
* ``decoder_step``: the previous frame (B, M) (zeros first, then the last of the r frames the step
  made), the prenet's two dropout masks (B, P) and that state -> ``frames`` (B, r * M), ``stop_logit``
  (B,) and the next state (``next_`` in front). Tacotron 2 keeps the prenet's dropout on when it speaks;
  the masks are inputs so that the graph is a pure function: draw each as bernoulli(1 - p) / (1 - p)
  with p the run's ``model.prenet_dropout`` (:meth:`rnnkit.modules.tacotron.Prenet.draw_masks`);
* ``postnet``: the frames of all steps (B, T, M) in normalised units -> the log-mel spectrogram (B, T, M)
  in the run's units (post-net residual added, normaliser undone), what the vocoder reads.

Free running: step until sigmoid(stop_logit) > the run's ``synth.stop_threshold``. The vocoder
(Griffin-Lim or WORLD, :mod:`rnnkit.modules.vocoder`) is outside the graphs.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.config import ConfigError
from rnnkit.modules.tacotron import DecoderState
from rnnkit.tasks.graphs import ExportGraph, example_lengths, padded_ids

FIXED = ("memory", "keys", "mask")     # the encoder's, the same at every step


def state_fields(tacotron) -> tuple[str, ...]:
    """The decoder state's graph names, in order (the carried state; :data:`FIXED` follow it)."""
    return (tuple(f"att_{n}" for n in tacotron.attention_cell.state_names)
            + tuple(f"dec_{n}" for n in tacotron.decoder_cell.state_names) + ("context", "weights", "cumulative"))


def flatten(state: DecoderState) -> tuple[Tensor, ...]:
    return (*state.att, *state.dec, state.context, state.weights, state.cumulative)


def unflatten(tacotron, flat) -> DecoderState:
    a, d = len(tacotron.attention_cell.state_names), len(tacotron.decoder_cell.state_names)
    return DecoderState(tuple(flat[:a]), tuple(flat[a:a + d]), *flat[a + d:])


class Encoder(nn.Module):
    def __init__(self, tacotron):
        super().__init__()
        self.tacotron = tacotron

    def forward(self, text: Tensor, text_lengths: Tensor):
        memory, keys, mask = self.tacotron._encode(text, text_lengths)         # (B, N, D), (B, N, A), (B, N)
        return (memory, keys, mask, *flatten(self.tacotron.initial_state(memory)))


class DecoderStep(nn.Module):
    def __init__(self, tacotron):
        super().__init__()
        self.tacotron = tacotron

    def forward(self, frame: Tensor, mask1: Tensor, mask2: Tensor, *flat: Tensor):
        *carried, memory, keys, mask = flat
        frames, stop, state = self.tacotron.step(frame, unflatten(self.tacotron, carried), memory, keys, mask,
                                                 prenet_masks=(mask1, mask2))  # (B, r*M), (B,)
        return (frames, stop, *flatten(state))


class Postnet(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, before: Tensor):
        after = before + self.model.tacotron.postnet(before)                   # (B, T, M) normalised
        return after * self.model.normalizer.std + self.model.normalizer.mean,


def tts_graphs(loaded) -> list[ExportGraph]:
    model = loaded.model
    taco = model.tacotron
    if int(model.normalizer.count) == 0:
        raise ConfigError(f"{loaded.run_dir}: the mel normaliser was never fitted; this run cannot be exported")
    c = taco.config
    gen = torch.Generator().manual_seed(0)
    low = loaded.vocab.offset                                                # the first real symbol's id

    def text(lengths):
        ids = padded_ids(lengths, c.vocab_size, gen, low=low)                # (B, N), 0 past each length
        return (ids.masked_fill(ids == 0, c.pad_id) if c.pad_id != 0 else ids), lengths

    src, src2 = text(example_lengths(2, 5)), text(example_lengths(3, 8))
    with torch.no_grad():
        starts = [Encoder(taco)(*s) for s in (src, src2)]

    def step_inputs(start, batch):
        memory, keys, mask, *state = start
        # a state past the first step: weights and context that are not all zero reach the graph
        weights = torch.softmax(torch.randn(mask.shape, generator=gen).masked_fill(~mask, float("-inf")), -1)
        state = [*state[:-3], torch.randn(state[-3].shape, generator=gen), weights, 2 * weights]
        masks = taco.prenet.draw_masks(batch, gen)
        return (torch.randn(batch, c.n_mels, generator=gen), *masks, *state, memory, keys, mask)

    fields = state_fields(taco)
    axes = {f: ({0: "batch", 1: "text"} if f in ("weights", "cumulative") else {0: "batch"}) for f in fields}
    axes.update({f: {0: "batch", 1: "text"} for f in FIXED})
    r, M = c.reduction, c.n_mels
    before, before2 = torch.randn(2, 2 * r, M, generator=gen), torch.randn(3, 5 * r, M, generator=gen)
    return [
        ExportGraph("encoder", Encoder(taco), src, src2, ("text", "text_lengths"), (*FIXED, *fields),
                    {"text": {0: "batch", 1: "text"}, "text_lengths": {0: "batch"}},
                    about="symbol ids (B, N) and lengths -> memory, keys, mask and the decoder's starting state"),
        ExportGraph("decoder_step", DecoderStep(taco), step_inputs(starts[0], 2), step_inputs(starts[1], 3),
                    ("frame", "prenet_mask1", "prenet_mask2", *fields, *FIXED),
                    ("frames", "stop_logit", *(f"next_{f}" for f in fields)),
                    {"frame": {0: "batch"}, "prenet_mask1": {0: "batch"}, "prenet_mask2": {0: "batch"}, **axes},
                    about=f"previous frame (B, {M}), the prenet's dropout masks (B, {c.prenet}) x2 and the state "
                          f"-> {r} frames (B, {r * M}), the stop logit (B,) and the next state"),
        ExportGraph("postnet", Postnet(model), (before,), (before2,), ("frames",), ("mel",),
                    {"frames": {0: "batch", 1: "time"}},
                    about=f"all steps' frames (B, T, {M}), normalised -> the log-mel spectrogram for the vocoder"),
    ]
