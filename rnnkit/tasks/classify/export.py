"""The classifier's export graph: a padded batch and its lengths (and, with character features, each word's
character ids; with an NBSVM expert, each text's n-gram ids) -> class logits (B, C)."""
from __future__ import annotations

import torch

from rnnkit.tasks.graphs import BatchGraph, ExportGraph, example_lengths, padded_floats, padded_ids


def classify_graphs(loaded) -> list[ExportGraph]:
    model, enc = loaded.model, loaded.encoder
    gen = torch.Generator().manual_seed(0)
    lengths, other = example_lengths(2, 5), example_lengths(3, 8)
    if enc.kind == "text":
        V = model.embed.num_embeddings
        x, x2 = padded_ids(lengths, V, gen), padded_ids(other, V, gen)        # (B, T) ids, 0 = padding
        about = "token ids (B, T) (0 = padding past each length) and lengths (B,) -> class logits (B, C)"
    else:
        x, x2 = padded_floats(lengths, enc.n_inputs, gen), padded_floats(other, enc.n_inputs, gen)  # (B, T, F)
        about = f"{enc.kind} frames (B, T, {enc.n_inputs}) and lengths (B,) -> class logits (B, C)"
    keys, args, args2 = ("inputs", "lengths"), (x, lengths), (x2, other)
    axes = {"inputs": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
    if model.chars is not None:
        n_chars = model.chars.embed.num_embeddings
        keys += ("chars",)
        args += (padded_ids(lengths, n_chars, gen, 4),)                       # (B, T, W) character ids
        args2 += (padded_ids(other, n_chars, gen, 6),)
        axes["chars"] = {0: "batch", 1: "time", 2: "word_chars"}
        about = about.replace(" and lengths (B,)", ", lengths (B,) and character ids (B, T, W)")
    if model.ngram is not None:
        V = model.ngram.table.shape[0]
        keys += ("ngrams",)
        args += (torch.randint(0, V, (len(lengths), 3), generator=gen),)       # (B, G) n-gram ids, 0 = padding
        args2 += (torch.randint(0, V, (len(other), 5), generator=gen),)
        axes["ngrams"] = {0: "batch", 1: "ngrams"}
        about = about.replace(" -> class logits", " and n-gram ids (B, G) -> class logits")
    return [ExportGraph("model", BatchGraph(model, keys), args, args2, keys, ("logits",), axes, about=about)]
