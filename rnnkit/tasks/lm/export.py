"""The language model's export graphs: the whole sequence, and one generation step.

* ``sequence``: tokens (T, B) int64 + the state -> logits (T, B, V) + the final state (priming,
  scoring, streaming chunk by chunk with the state carried);
* ``step``: token (B,) + the state -> logits (B, V) + the new state (generation, one token a call).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.config import ConfigError
from rnnkit.tasks.graphs import ExportGraph, as_components, dynamic_state, from_components, random_state, state_names
from rnnkit.tasks.lm.model import LanguageModel


class LMSequence(nn.Module):
    def __init__(self, model: LanguageModel):
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, *state: Tensor):
        logits, final = self.model.logits(tokens, from_components(state))  # (T, B, V)
        return (logits, *as_components(final))


class LMStep(nn.Module):
    def __init__(self, model: LanguageModel):
        super().__init__()
        self.model = model

    def forward(self, token: Tensor, *state: Tensor):
        logits, final = self.model.logits(token.unsqueeze(0), from_components(state))  # (1, B, V)
        return (logits[0], *as_components(final))


def lm_graphs(loaded) -> list[ExportGraph]:
    model = loaded.model
    if not isinstance(model, LanguageModel):
        raise ConfigError(f"this lm run is a {loaded.config.model.model} model, not a neural network; "
                          "only recurrent language models export")
    V, names = loaded.meta["vocab_size"], state_names(model.rnn)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(V, (5, 2), generator=gen)         # (T, B)
    other = torch.randint(V, (9, 3), generator=gen)          # another length and batch
    outs = tuple(f"final_{n}" for n in names)
    return [
        ExportGraph("sequence", LMSequence(model), (tokens, *random_state(model.rnn, 2)),
                    (other, *random_state(model.rnn, 3, seed=1)), ("tokens", *names), ("logits", *outs),
                    {"tokens": {0: "time", 1: "batch"}, **dynamic_state(names)},
                    about="tokens (T, B) and the state -> logits (T, B, V) and the final state"),
        ExportGraph("step", LMStep(model), (tokens[0], *random_state(model.rnn, 2)),
                    (other[0], *random_state(model.rnn, 3, seed=1)), ("token", *names), ("logits", *outs),
                    {"token": {0: "batch"}, **dynamic_state(names)},
                    about="one generation step: token (B,) and the state -> logits (B, V) and the new state"),
    ]
