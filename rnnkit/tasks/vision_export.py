"""The export graphs of the image tasks' models (captioning, and image tagging with either head).

An :class:`~rnnkit.modules.image_decoder.ImageDecoder` (caption, tag-images ``head=rnn``) exports as

* ``encoder``: images (B, 3, H, W) uint8 at the run's image size -> the decoder's starting state:
  ``state_*`` (one per state component of the decoder cell, (layers, B, S_k)), ``query`` (B, Hd),
  ``memory`` (B, S, C) (the feature grid) and, with soft attention, ``keys`` (B, S, A);
* ``decoder_step``: the previous token ids (B,) and that state -> logits (B, V), with soft attention the
  weights over the grid (B, S), and the next ``state_*`` and ``query`` (``next_`` in front). Memory and
  keys do not change between steps; every grid cell is real, so no mask goes in.

Greedy decoding: start from ``<s>``, feed the arg-max back until ``</s>``; beam search reorders the state's
rows between steps. The sigmoid tagger (tag-images ``head=sigmoid``) exports as one graph ``model``:
images (B, 3, H, W) uint8 -> logits (B, K), one per tag (a sigmoid gives each tag's probability).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.modules.image_decoder import CaptionState, ImageDecoder
from rnnkit.tasks.graphs import BatchGraph, ExportGraph


def state_fields(model: ImageDecoder) -> tuple[str, ...]:
    """The decoder state's graph names, in order."""
    comps = tuple(f"state_{n}" for n in model.decoder.cells[0].state_names)
    return comps + ("query", "memory") + (("keys",) if model.cfg.attention == "soft" else ())


def carried_fields(model: ImageDecoder) -> tuple[str, ...]:
    """The fields one step changes (the others are the image's, fixed for the whole caption)."""
    return tuple(f for f in state_fields(model) if f.startswith("state_") or f == "query")


def flatten(model: ImageDecoder, state: CaptionState) -> tuple[Tensor, ...]:
    """A CaptionState as the tensors :func:`state_fields` names (stacked per component: (layers, B, S_k))."""
    comps = tuple(torch.stack([layer[k] for layer in state.rnn]) for k in range(len(state.rnn[0])))
    return comps + (state.query, state.memory) + ((state.keys,) if model.cfg.attention == "soft" else ())


class Encoder(nn.Module):
    def __init__(self, model: ImageDecoder):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor):
        return flatten(self.model, self.model.encode(images))


class DecoderStep(nn.Module):
    def __init__(self, model: ImageDecoder):
        super().__init__()
        self.model = model

    def forward(self, token: Tensor, *flat: Tensor):
        m = self.model
        n = len(m.decoder.cells[0].state_names)
        comps, query, memory = flat[:n], flat[n], flat[n + 1]
        keys = flat[n + 2] if m.cfg.attention == "soft" else None
        rnn = [tuple(c[k] for c in comps) for k in range(comps[0].shape[0])]
        mask = torch.ones(memory.shape[:2], dtype=torch.bool, device=memory.device)    # (B, S)
        logits, weights, state = m.decode_step(token, CaptionState(rnn, query, memory, keys, mask))  # (B, V)
        return (logits,) + ((weights,) if weights is not None else ()) + flatten(m, state)[:n + 1]


def example_images(batch: int, size: int, gen: torch.Generator) -> Tensor:
    """(B, 3, size, size) random uint8 pixels."""
    return torch.randint(0, 256, (batch, 3, size, size), generator=gen, dtype=torch.uint8)


def decoder_graphs(model: ImageDecoder, image_size: int, vocab_size: int, low: int) -> list[ExportGraph]:
    """``encoder`` and ``decoder_step`` of an image decoder; example tokens are drawn from [low, vocab_size)."""
    gen = torch.Generator().manual_seed(0)
    images, images2 = example_images(2, image_size, gen), example_images(3, image_size, gen)
    with torch.no_grad():
        start, start2 = model.encode(images), model.encode(images2)
    tokens = torch.randint(low, vocab_size, (2,), generator=gen)
    tokens2 = torch.randint(low, vocab_size, (3,), generator=gen)
    fields = state_fields(model)
    soft = model.cfg.attention == "soft"
    outputs = ("logits",) + (("attention",) if soft else ()) + tuple(f"next_{f}" for f in carried_fields(model))
    axes = {f: ({1: "batch"} if f.startswith("state_") else {0: "batch"}) for f in fields}
    return [
        ExportGraph("encoder", Encoder(model), (images,), (images2,), ("images",), fields, {"images": {0: "batch"}},
                    about=f"images (B, 3, {image_size}, {image_size}) uint8 -> the decoder's starting state"),
        ExportGraph("decoder_step", DecoderStep(model), (tokens, *flatten(model, start)),
                    (tokens2, *flatten(model, start2)), ("token", *fields), outputs, {"token": {0: "batch"}, **axes},
                    about="previous token ids (B,) and the state -> logits (B, V)"
                          + (", attention over the grid (B, S)" if soft else "") + " and the next state"),
    ]


def image_model_graph(model: nn.Module, image_size: int) -> list[ExportGraph]:
    """One graph ``model``: images (B, 3, H, W) uint8 -> the model output's logits."""
    gen = torch.Generator().manual_seed(0)
    return [ExportGraph("model", BatchGraph(model, ("images",)), (example_images(2, image_size, gen),),
                        (example_images(3, image_size, gen),), ("images",), ("logits",), {"images": {0: "batch"}},
                        about=f"images (B, 3, {image_size}, {image_size}) uint8 -> logits (B, K), one per tag")]
