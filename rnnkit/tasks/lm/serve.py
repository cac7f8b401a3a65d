"""What ``rnnkit serve`` offers for a language-model run: streamed generation and the neuron view.

The neuron view (Karpathy, Johnson and Fei-Fei 2015, "Visualizing and Understanding Recurrent Networks"):
the hidden state of one layer at every token of a text, so that the page can colour the text by one unit's
activation, and the share of saturated gate activations (below 0.05 or above 0.95) over that text.
"""
from __future__ import annotations

from typing import Iterator

import torch

from rnnkit.config import ConfigError
from rnnkit.tasks.lm.commands import stream
from rnnkit.tasks.lm.model import LoadedLM, check_sampling
from rnnkit.tasks.serving import Route, integer, number, obj, text

MAX_NEURON_TOKENS = 2000  # tokens of text the neuron view runs over (the answer holds T x H values)
SATURATED = (0.05, 0.95)


def generate_input() -> dict:
    return obj(("prompt",),
               prompt=text("the text generation starts from"),
               length=integer("tokens to generate", 0),
               temperature=number("softmax temperature; 0 = greedy", 0),
               top_k=integer("sample from the k most likely tokens (0 = off)", 0),
               top_p=number("nucleus sampling mass (1 = off)", 0, 1),
               seed=integer("random seed for sampling"))


def _options(request: dict) -> dict:
    options = {"length": 200, "temperature": 0.8, "top_k": 0, "top_p": 1.0, **request}
    check_sampling(options["length"], options["temperature"], options["top_k"], options["top_p"])
    return options


def _stream(loaded: LoadedLM, request: dict) -> Iterator[str]:
    return stream(loaded, _options(request))


def _generate(loaded: LoadedLM, request: dict) -> dict:
    return {"text": "".join(_stream(loaded, request))}


@torch.no_grad()
def neurons(loaded: LoadedLM, request: dict) -> dict:
    """Tokens of ``text``, the hidden state (T, H) of ``layer`` at each, and gate saturation per layer."""
    tok, layer = loaded.tokenizer, request.get("layer", 0)
    ids = tok.encode(request["text"])
    if not ids:
        raise ConfigError(f"text: {request['text']!r} encodes to no tokens")
    if len(ids) > MAX_NEURON_TOKENS:
        raise ConfigError(f"text: {len(ids)} tokens; the neuron view reads at most {MAX_NEURON_TOKENS}")
    rnn = loaded.model.rnn
    layers = loaded.config.model.layers
    if not 0 <= layer < layers:
        raise ConfigError(f"layer: this run has {layers} layer(s), 0 to {layers - 1}; got {layer}")
    x = loaded.model.embed(torch.tensor(ids, device=loaded.device).view(-1, 1))  # (T, 1, E)
    result = rnn.run(x, all_states=True, record_gates=True)
    directions = len(result.states) // layers
    states = result.states[layer * directions]                              # forward direction
    h = states["h"] if "h" in states else next(iter(states.values()))      # (T, 1, H)
    saturation = {}
    for k, gates in enumerate(result.gates or []):
        name = f"layer {k // directions}" + (" reverse" if k % directions else "")
        saturation[name] = {g: float(((v < SATURATED[0]) | (v > SATURATED[1])).float().mean())
                            for g, v in gates.items()}
    return {"tokens": [tok.decode([i]) for i in ids], "layer": layer, "units": int(h.shape[-1]),
            "activations": [[round(float(v), 4) for v in row] for row in h[:, 0].float().cpu()],  # (T, H)
            "saturation": saturation, "cell": loaded.config.model.cell}


def routes(loaded: LoadedLM) -> list[Route]:
    out = [Route("generate", "generate text from a prompt (streamed token by token at /stream)", generate_input(),
                 lambda r: _generate(loaded, r), stream=lambda r: _stream(loaded, r), length_field="length",
                 panel="generate", output=obj(text={"type": "string"}))]
    if loaded.config.model.model == "rnn":  # an n-gram run has no hidden units
        out.append(Route("neurons", "hidden-unit activations over a text and gate saturation (the neuron view)",
                         obj(("text",), text=text("the text to run the model over"),
                             layer=integer("which layer (0 = the first)", 0)),
                         lambda r: neurons(loaded, r), panel="neurons"))
    return out

