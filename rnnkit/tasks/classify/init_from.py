"""Starting a text classifier from an ``rnnkit train lm`` run (``--init-from RUN``).

The run is read through its saved form (checkpoint metadata, config and tensors), not through the lm
package: a language-model run is ``embed`` (V, E) -> ``rnn`` (one direction, ``layers`` x ``hidden``, its
cell) -> ``decoder``. The classifier takes its vocabulary and the weights of ``embed`` and ``rnn``; so the
classifier's tokenizer, cell and sizes follow the run. A setting the user gave that disagrees with the run
is an error naming the flag and the run's value, never silently replaced; unset ones are taken from it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from rnnkit.config import ConfigError
from rnnkit.data.vocab import Vocabulary, vocabulary_from_dict
from rnnkit.train import load_checkpoint
from rnnkit.train.checkpoint import CheckpointError, find_run_checkpoint

# the lm run's tokenizer kind -> the classifier's --tokenizer that reads the same units
TOKENIZER_OF_LM = {"char": "char", "word": "word"}


@dataclass
class LMStart:
    """What a language-model run gives the classifier: its vocabulary, architecture and weights."""
    run: str
    vocab: Vocabulary
    model: dict                  # the run's saved model section (cell, hidden, layers, embedding, ...)
    weights: dict[str, torch.Tensor]

    @property
    def embedding(self) -> int:
        return int(self.model.get("embedding") or self.model["hidden"])


def read_lm_run(run: str) -> LMStart:
    ck = load_checkpoint(find_run_checkpoint(run))
    meta = ck.meta.get("metadata", {})
    if meta.get("task") != "lm":
        raise CheckpointError(f"--init-from {run}: not a language-model run (task {meta.get('task')!r}); give a "
                              "run of `rnnkit train lm`")
    model = ck.meta["config"]["model"]
    if model.get("model", "rnn") != "rnn":
        raise ConfigError(f"--init-from {run}: a {model['model']} language model has no recurrent layers to "
                          "start from; give a model=rnn run")
    return LMStart(run, vocabulary_from_dict(meta["tokenizer"]), model, ck.group("model"))


def follow_lm(cfg, start: LMStart, given: frozenset):
    """``cfg`` (a ClassifyRunConfig) with the tokenizer, cell and sizes of the lm run; a flag given
    (``(section, field)`` in ``given``) with another value is an error."""
    lm_tok = TOKENIZER_OF_LM.get(start.vocab.kind)
    if lm_tok is None:
        raise ConfigError(f"--init-from {start.run}: its {start.vocab.kind} vocabulary cannot be read by the "
                          f"classifier (it reads {', '.join(TOKENIZER_OF_LM)} runs); train the lm run with "
                          "--tokenizer char or word")
    wanted = {("data", "tokenizer"): lm_tok, ("data", "lowercase"): False,
              ("model", "model"): "rnn", ("model", "cell"): start.model["cell"],
              ("model", "hidden"): int(start.model["hidden"]), ("model", "layers"): int(start.model["layers"]),
              ("model", "embedding"): start.embedding, ("model", "bidirectional"): False}
    clashes = [f"--{name.replace('_', '-')} {getattr(getattr(cfg, section), name)!r} (the run has {value!r})"
               for (section, name), value in wanted.items()
               if (section, name) in given and getattr(getattr(cfg, section), name) != value
               and (section, name) != ("data", "lowercase")]  # lower-casing the text is the user's choice
    for section, name in (("data", "min_freq"), ("data", "max_vocab")):
        if (section, name) in given:
            clashes.append(f"--{name.replace('_', '-')} (the vocabulary is the run's)")
    if clashes:
        raise ConfigError(f"--init-from {start.run}: the classifier takes the language model's vocabulary and "
                          f"layers, so these flags disagree with it: {'; '.join(clashes)}. Drop them")
    sections = {}
    for section in ("data", "model"):
        values = {name: v for (s, name), v in wanted.items() if s == section and (s, name) not in given}
        sections[section] = replace(getattr(cfg, section), **values)
    return replace(cfg, **sections)


def load_lm_weights(start: LMStart, embed: nn.Module, encoder: nn.Module) -> None:
    """Copy the run's ``embed`` and ``rnn`` tensors into the classifier's embedding and encoder layer."""
    own = {"embed.weight": embed.weight}
    own.update({f"rnn.{k}": v for k, v in encoder.rnn.state_dict().items()})
    missing = [k for k in own if k not in start.weights]
    bad = [f"{k} {tuple(start.weights[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
           if k in start.weights and start.weights[k].shape != v.shape]
    if missing or bad:
        raise ConfigError(f"--init-from {start.run}: its layers do not fit the classifier "
                          f"({', '.join(missing + bad)})")
    with torch.no_grad():
        embed.weight.copy_(start.weights["embed.weight"])
    encoder.rnn.load_state_dict({k[4:]: start.weights[k] for k in own if k.startswith("rnn.")})

