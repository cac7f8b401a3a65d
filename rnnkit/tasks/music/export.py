"""The music model's export graphs, the recurrent state as explicit inputs and outputs.

* ``sequence``: frames (B, T, P) 0/1 floats, lengths (B,) and the state -> logits (B, T, P) of the frame
  after each one, and the state at each piece's end (scoring; priming before generation);
* ``step``: one frame (B, P) and the state -> logits (B, P) of the next frame and the new state
  (generation: draw the frame from the logits, feed it back; the first input is a frame of zeros).

Sigmoid output: independent per-pitch logits. RNN-NADE output: a pitch's logit depends on the pitches
below it, so the graphs return the logits along the greedy (most likely) frame; sampling a NADE frame
at a temperature stays a loop over pitches outside the graph.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.tasks.graphs import (ExportGraph, as_components, dynamic_state, example_lengths, from_components,
                                 random_state, state_names)


class MusicSequence(nn.Module):
    def __init__(self, poly):
        super().__init__()
        self.poly = poly

    def forward(self, frames: Tensor, lengths: Tensor, *state: Tensor):
        out = self.poly(frames, lengths=lengths, state=from_components(state))
        return (out.logits, *as_components(out.state))


class MusicStep(nn.Module):
    def __init__(self, poly):
        super().__init__()
        self.poly = poly

    def forward(self, frame: Tensor, *state: Tensor):
        out = self.poly(frame.unsqueeze(1), state=from_components(state))        # (B, 1, P)
        return (out.logits[:, 0], *as_components(out.state))


def music_graphs(loaded) -> list[ExportGraph]:
    poly = loaded.model.poly
    P, names = poly.cfg.n_pitches, state_names(poly.rnn)
    gen = torch.Generator().manual_seed(0)

    def frames(lengths):
        B, T = len(lengths), int(lengths.max())
        x = (torch.rand(B, T, P, generator=gen) < 0.2).float()               # (B, T, P)
        return x * (torch.arange(T)[None, :] < lengths[:, None]).unsqueeze(-1)

    lengths, other = example_lengths(2, 6), example_lengths(3, 9)
    outs = tuple(f"final_{n}" for n in names)
    return [
        ExportGraph("sequence", MusicSequence(poly), (frames(lengths), lengths, *random_state(poly.rnn, 2)),
                    (frames(other), other, *random_state(poly.rnn, 3, seed=1)), ("frames", "lengths", *names),
                    ("logits", *outs), {"frames": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                                        **dynamic_state(names)},
                    about=f"frames (B, T, {P}), lengths and the state -> next-frame logits (B, T, {P}) and the "
                          f"state at each end"),
        ExportGraph("step", MusicStep(poly), (frames(lengths)[:, 0], *random_state(poly.rnn, 2)),
                    (frames(other)[:, 0], *random_state(poly.rnn, 3, seed=1)), ("frame", *names), ("logits", *outs),
                    {"frame": {0: "batch"}, **dynamic_state(names)},
                    about=f"one generation step: frame (B, {P}) and the state -> next-frame logits and the new state"),
    ]
