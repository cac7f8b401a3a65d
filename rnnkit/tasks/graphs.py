"""What a task hands the exporter: :class:`ExportGraph`, one per graph a trained run is exported as.

A run exports as one or more graphs of plain tensors in and out (``rnnkit export``, :mod:`rnnkit.export`):
the whole-sequence model, and for the tasks that generate or stream, the graphs of one step with the
recurrent state as explicit inputs and outputs (a language model's step, a translator's encoder and
decoder step). Each task builds them in its own ``export.py`` from its loaded run
(:meth:`~rnnkit.tasks.task.Task.export_graphs`); the helpers here turn an rnnkit layer's state into named
tensors and back.

State layout at a graph's boundary: one tensor per state component of the cell (``state_h``, and
``state_c`` for an LSTM; a Jordan network's ``state_y``...), each ``(layers * directions, B, S_k)`` as
torch.nn's recurrent layers take them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor, nn

from rnnkit.layers import Recurrent

#: default parity tolerances of an exported graph against the PyTorch model (float32 on the CPU)
RTOL, ATOL = 1e-4, 1e-5


@dataclass
class ExportGraph:
    """One graph to export: ``module(*inputs)`` returns a tuple of tensors named by ``output_names``.

    inputs: example tensors to trace; every axis named in ``dynamic`` must have a size of at least 2
        there (torch.export specialises sizes 0 and 1).
    check_inputs: tensors of other sizes on those axes: the parity check runs the exported graph and the
        PyTorch model on these, so a graph that kept a traced size fails it.
    dynamic: input name -> {axis: dimension name}; inputs sharing a dimension name share its size.
    multiples: dimension name -> k where the graph takes multiples of k only (a model that stacks k frames).
    rtol / atol: the parity tolerance of every output (``torch.testing.assert_close``).
    about: one line for people (what the graph computes, how to use it).
    """

    name: str
    module: nn.Module
    inputs: tuple
    check_inputs: tuple
    input_names: tuple
    output_names: tuple
    dynamic: dict = field(default_factory=dict)
    rtol: float = RTOL
    atol: float = ATOL
    about: str = ""
    multiples: dict = field(default_factory=dict)  # dimension name -> the graph takes sizes k * n only

    def __post_init__(self) -> None:
        for what, tensors in (("inputs", self.inputs), ("check_inputs", self.check_inputs)):
            if len(tensors) != len(self.input_names):
                raise ValueError(f"graph {self.name}: {len(self.input_names)} input names but {len(tensors)} "
                                 f"{what}")
        unknown = set(self.dynamic) - set(self.input_names)
        if unknown:
            raise ValueError(f"graph {self.name}: dynamic axes for unknown inputs {sorted(unknown)}")
        for name, axes in self.dynamic.items():
            example = self.inputs[self.input_names.index(name)]
            for axis, dim in axes.items():
                k, n = self.multiples.get(dim, 1), example.shape[axis]
                if n < 2 * k or n % k:  # torch.export would specialise a size 1 (or 0)
                    raise ValueError(f"graph {self.name}: input {name} axis {axis} ({dim}) must be traced with a "
                                     f"size of at least {2 * k}" + (f" that is a multiple of {k}" if k > 1 else "")
                                     + f", got {n}")


def state_names(layer: Recurrent, prefix: str = "state") -> tuple[str, ...]:
    """``state_h`` (and ``state_c``...): the graph names of the layer's state components."""
    return tuple(f"{prefix}_{n}" for n in layer.first_cell.state_names)


def zero_state(layer: Recurrent, batch: int, dtype=torch.float32) -> tuple[Tensor, ...]:
    """Zeros for each state component: (layers * directions, B, S_k)."""
    n = layer.num_layers * layer.num_directions
    return tuple(torch.zeros(n, batch, s, dtype=dtype) for s in layer.first_cell.state_sizes)


def random_state(layer: Recurrent, batch: int, seed: int = 0) -> tuple[Tensor, ...]:
    """A non-zero state of the layer's shape (so that a parity check sees the state enter the graph)."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(0.5 * torch.randn(z.shape, generator=gen) for z in zero_state(layer, batch))


def as_components(state) -> tuple[Tensor, ...]:
    """A layer's state (a tensor, or a tuple for an LSTM) as a tuple of components."""
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


def from_components(parts: Sequence[Tensor]):
    """The inverse of :func:`as_components`: one component is the tensor itself."""
    return parts[0] if len(parts) == 1 else tuple(parts)


def dynamic_state(names: Sequence[str], batch_axis: int = 1) -> dict:
    """Dynamic axes of state inputs: their batch axis."""
    return {n: {batch_axis: "batch"} for n in names}


class BatchGraph(nn.Module):
    """A task model taking a batch dict, as a graph of plain tensors: ``forward(*tensors)`` puts them in a
    dict under ``keys`` and returns ``outputs(model, batch)`` (default: the model output's logits)."""

    def __init__(self, model: nn.Module, keys: Sequence[str], outputs=None):
        super().__init__()
        self.model, self.keys = model, tuple(keys)
        self.outputs = outputs or (lambda model, batch: (model(batch).logits,))

    def forward(self, *tensors: Tensor):
        return tuple(self.outputs(self.model, dict(zip(self.keys, tensors))))


def example_lengths(batch: int, steps: int) -> Tensor:
    """(B,) lengths for an example batch: the first fills all ``steps``, the others are shorter, one is 1
    when the batch has three rows or more (a padded batch exercises the masking)."""
    lengths = [steps] + [max(1, steps - 2 * b) for b in range(1, batch)]
    if batch >= 3:
        lengths[-1] = 1
    return torch.tensor(lengths, dtype=torch.int64)


def padded_ids(lengths: Tensor, vocab: int, gen: torch.Generator, *extra: int, low: int = 1) -> Tensor:
    """(B, T, *extra) random ids in [low, vocab), 0 (padding) past each length."""
    B, T = len(lengths), int(lengths.max())
    ids = torch.randint(low, vocab, (B, T, *extra), generator=gen)
    keep = torch.arange(T)[None, :] < lengths[:, None]                        # (B, T)
    return ids * keep.view(B, T, *([1] * len(extra)))


def padded_floats(lengths: Tensor, features: int, gen: torch.Generator) -> Tensor:
    """(B, T, F) random features, zeros past each length."""
    B, T = len(lengths), int(lengths.max())
    x = torch.randn(B, T, features, generator=gen)
    return x * (torch.arange(T)[None, :] < lengths[:, None]).unsqueeze(-1)
