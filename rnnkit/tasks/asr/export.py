"""The recogniser's export graph: feature frames (B, T, F) and lengths -> CTC logits (B, T', V) and the
output lengths (B,).

The model stacks ``subsampling`` frames into one, so the graph takes T a multiple of it (zero frames
padded at the end; the lengths stay the true ones, and the masking makes the padding inert). The acoustic
model's encoder is bidirectional (every frame's output reads the whole utterance), so it
exports as this whole-utterance graph, not as a streaming chunk graph with carried state. The features
(the run's extractor: ``rnnkit.modules.audio_features``) are computed outside; the normaliser fitted in
training is inside. Greedy CTC decoding of the logits: arg-max per frame, merge repeats, drop the blank (0).
"""
from __future__ import annotations

import torch

from rnnkit.config import ConfigError
from rnnkit.tasks.graphs import BatchGraph, ExportGraph, example_lengths, padded_floats


def _outputs(model, batch):
    out = model(batch)
    return out.logits, out.lengths


def asr_graphs(loaded) -> list[ExportGraph]:
    model = loaded.model
    if int(model.normalizer.count) == 0:  # the graph cannot check it (see FeatureNormalizer.forward)
        raise ConfigError(f"{loaded.run_dir}: the feature normaliser was never fitted; this run cannot be exported")
    F = model.features.num_features
    gen = torch.Generator().manual_seed(0)
    k = model.subsampling                                                  # frames stacked into one output frame
    lengths, other = example_lengths(2, 4 * k), example_lengths(3, 7 * k)
    return [ExportGraph("model", BatchGraph(model, ("feats", "lengths"), _outputs),
                        (padded_floats(lengths, F, gen), lengths), (padded_floats(other, F, gen), other),
                        ("feats", "lengths"), ("logits", "output_lengths"),
                        {"feats": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}, multiples={"time": k},
                        about=f"features (B, T, {F}), T a multiple of {k} (pad with zero frames; lengths stay the "
                              f"true ones), and lengths (B,) -> CTC logits (B, T/{k}, V) and output lengths "
                              f"(whole utterances: the encoder is bidirectional)")]
