"""The music model's export graphs, the recurrent state as explicit inputs and outputs.

* ``sequence``: frames (B, T, P) 0/1 floats, lengths (B,) and the state -> logits (B, T, P) of the frame
  after each one, and the state at each piece's end (scoring; priming before generation);
* ``step``: one frame (B, P) and the state -> logits (B, P) of the next frame and the new state
  (generation: draw the frame from the logits, feed it back; the first input is a frame of zeros).

Sigmoid output: independent per-pitch logits. RNN-NADE output: a pitch's logit depends on the pitches
below it, so the graphs return the logits along the greedy (most likely) frame; sampling a NADE frame
at a temperature stays a loop over pitches outside the graph.

Event runs (``mode: performance | melody``, :func:`event_graphs`): ``sequence``: tokens (B, T) int64, lengths
(B,) and the state -> logits (B, T, V) and the state at each piece's end; ``step``: token (B,) and the state
-> logits (B, V) and the new state (the first token is the codec's start token).
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


class EventSequence(nn.Module):
    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, tokens: Tensor, lengths: Tensor, *state: Tensor):
        out = self.lm(tokens, lengths=lengths, state=from_components(state))  # (B, T, V)
        return (out.logits, *as_components(out.state))


class EventStep(nn.Module):
    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, token: Tensor, *state: Tensor):
        out = self.lm(token.unsqueeze(1), state=from_components(state))      # (B, 1, V)
        return (out.logits[:, 0], *as_components(out.state))


def event_graphs(loaded) -> list[ExportGraph]:
    lm = loaded.model.lm
    V, names = lm.cfg.vocab_size, state_names(lm.rnn)
    gen = torch.Generator().manual_seed(0)
    lengths, other = example_lengths(2, 6), example_lengths(3, 9)
    tokens = torch.randint(V, (2, int(lengths.max())), generator=gen)   # (B, T)
    more = torch.randint(V, (3, int(other.max())), generator=gen)       # another batch and length
    outs = tuple(f"final_{n}" for n in names)
    return [
        ExportGraph("sequence", EventSequence(lm), (tokens, lengths, *random_state(lm.rnn, 2)),
                    (more, other, *random_state(lm.rnn, 3, seed=1)), ("tokens", "lengths", *names),
                    ("logits", *outs), {"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                                        **dynamic_state(names)},
                    about=f"event tokens (B, T), lengths and the state -> next-token logits (B, T, {V}) and the "
                          f"state at each end"),
        ExportGraph("step", EventStep(lm), (tokens[:, 0], *random_state(lm.rnn, 2)),
                    (more[:, 0], *random_state(lm.rnn, 3, seed=1)), ("token", *names), ("logits", *outs),
                    {"token": {0: "batch"}, **dynamic_state(names)},
                    about=f"one generation step: token (B,) and the state -> logits (B, {V}) and the new state"),
    ]
