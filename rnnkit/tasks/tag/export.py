"""The tagger's export graph: words, cases, characters and lengths -> per-token emissions (B, T, K) and
the decoded tag ids (B, T): Viterbi with a CRF output (:meth:`rnnkit.modules.crf.CRF.decode_tags`, the
scheme's constraints included, both recursions as Scan loops), the arg-max with softmax. Past each
length the tags are padding (the row's last tag repeated).
"""
from __future__ import annotations

import torch

from rnnkit.tasks.graphs import BatchGraph, ExportGraph, example_lengths, padded_ids

KEYS = ("words", "cases", "chars", "lengths")


def _outputs(model, batch):
    em = model.emissions(batch)                                               # (B, T, K)
    if model.crf is None:
        return em, em.argmax(-1)
    return em, model.crf.decode_tags(em, model.mask(batch))                   # (B, T) tag ids


def tag_graphs(loaded) -> list[ExportGraph]:
    model, enc = loaded.model, loaded.encoder
    gen = torch.Generator().manual_seed(0)

    def batch(lengths, width):
        return (padded_ids(lengths, len(enc.words), gen), padded_ids(lengths, 6, gen),
                padded_ids(lengths, len(enc.chars), gen, width), lengths)     # (B, T), (B, T), (B, T, W), (B,)

    outputs = ("emissions", "tags")
    return [ExportGraph("model", BatchGraph(model, KEYS, _outputs), batch(example_lengths(2, 5), 4),
                        batch(example_lengths(3, 7), 6), KEYS, outputs,
                        {"words": {0: "batch", 1: "time"}, "cases": {0: "batch", 1: "time"},
                         "chars": {0: "batch", 1: "time", 2: "word_chars"}, "lengths": {0: "batch"}},
                        about="word, case and character ids (0 = padding) and lengths -> emissions (B, T, K) and "
                              + ("Viterbi" if model.crf is not None else "arg-max") + " tag ids (B, T)")]
