r"""Truncated BPTT as small named helpers: ``batchify``, ``windows``, ``detach_state``.

A corpus of documents is laid out as ``B`` parallel streams.  Each document
``d`` becomes inputs ``d[:-1]`` and targets ``d[1:]``, padded to a multiple of
``k1`` (pad input 0, pad target -100 = ignored by the loss), so documents start
on chunk boundaries.  Documents are dealt longest first, each to the stream
that is shortest so far (the LPT rule: the streams end within about one
document of each other, so little of an epoch is padding), and each stream
then reads its documents in corpus order::

    documents   A = a0..a9    B = b0..b4    C = c0..c6          k1 = 4, B = 2

                 stream 0   stream 1
    chunk 0  t0    a0         b0        <- reset: both streams start a document
             t1    a1         b1
             t2    a2         b2
             t3    a3         b3
    chunk 1  t4    a4         c0        <- reset in stream 1 only (C begins)
             t5    a5         c1
             ...   ..         ..
    chunk 2  t8    a8         pad       (pad targets are ignored)

    inputs, targets: (N, B) with N a multiple of k1;  starts: (N // k1, B) bool

Training walks the chunks in order (:func:`windows`), carrying each column's
recurrent state from chunk ``j`` to ``j + 1`` - detached, so gradients stop at
the chunk edge - and zeroing it where ``starts[j, b]`` (:func:`reset_state`):
the state never leaks from one document into the next.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import Tensor

from rnnkit.layers.state import detach_state

IGNORE_INDEX = -100
__all__ = ["Streams", "Chunk", "batchify", "windows", "detach_state", "reset_state", "cast_state"]


@dataclass
class Chunk:
    """One TBPTT window: ``inputs``/``targets`` (k1, B) long, ``reset`` (B,) bool."""
    inputs: Tensor
    targets: Tensor
    reset: Tensor
    index: int = 0

    def to(self, device) -> "Chunk":
        return Chunk(self.inputs.to(device), self.targets.to(device), self.reset.to(device), self.index)

    @property
    def n_tokens(self) -> int:
        return int((self.targets != IGNORE_INDEX).sum())


@dataclass
class Streams:
    """B parallel token streams cut into ``len(self)`` chunks of ``k1`` steps."""
    inputs: Tensor   # (N, B) long
    targets: Tensor  # (N, B) long, IGNORE_INDEX at padding
    starts: Tensor   # (N // k1, B) bool, True where a document begins
    k1: int

    def __len__(self) -> int:
        return self.inputs.shape[0] // self.k1

    def chunk(self, j: int) -> Chunk:
        t = slice(j * self.k1, (j + 1) * self.k1)
        return Chunk(self.inputs[t], self.targets[t], self.starts[j], j)

    @property
    def n_tokens(self) -> int:
        return int((self.targets != IGNORE_INDEX).sum())


def _pad_to(x: Tensor, n: int, value: int) -> Tensor:
    return torch.cat([x, x.new_full((n - x.numel(),), value)])


def batchify(docs: Sequence[Sequence[int] | Tensor], batch_size: int, k1: int) -> Streams:
    """Lay documents (token id sequences) out as ``batch_size`` streams (see module picture)."""
    if batch_size < 1 or k1 < 1:
        raise ValueError(f"batch_size and k1 must be positive, got {batch_size}, {k1}")
    tensors = [torch.as_tensor(doc, dtype=torch.long) for doc in docs]
    kept = [i for i, doc in enumerate(tensors) if doc.numel() >= 2]
    padded = {i: -(-(tensors[i].numel() - 1) // k1) * k1 for i in kept}  # rounded up to a multiple of k1
    owner: dict[int, int] = {}
    lengths = [0] * batch_size
    for i in sorted(kept, key=lambda i: -padded[i]):  # longest first (stable: ties in corpus order)
        b = min(range(batch_size), key=lengths.__getitem__)
        owner[i] = b
        lengths[b] += padded[i]
    columns: list[list[tuple[Tensor, Tensor]]] = [[] for _ in range(batch_size)]
    for i in kept:  # each stream in corpus order
        doc, n = tensors[i], padded[i]
        columns[owner[i]].append((_pad_to(doc[:-1], n, 0), _pad_to(doc[1:], n, IGNORE_INDEX)))
    total = max(lengths)
    if total == 0:
        raise ValueError("no document has two or more tokens; nothing to train on")
    inputs = torch.zeros(total, batch_size, dtype=torch.long)
    targets = torch.full((total, batch_size), IGNORE_INDEX, dtype=torch.long)
    starts = torch.ones(total // k1, batch_size, dtype=torch.bool)  # padding tail: fresh state
    for b, col in enumerate(columns):
        pos = 0
        starts[:, b] = True
        for x, y in col:
            inputs[pos:pos + x.numel(), b] = x
            targets[pos:pos + x.numel(), b] = y
            starts[pos // k1 + 1:(pos + x.numel()) // k1, b] = False
            pos += x.numel()
    return Streams(inputs, targets, starts, k1)


def windows(streams: Streams, start: int = 0) -> Iterator[Chunk]:
    """The chunks of ``streams`` in order, from chunk ``start`` (for resuming mid-epoch)."""
    for j in range(start, len(streams)):
        yield streams.chunk(j)


def reset_state(state, reset: Tensor):
    """Zero the batch columns of ``state`` where ``reset`` (B,) is True.

    State tensors are (layers*dirs, B, H) as in torch.nn; nested tuples are handled.
    """
    if state is None:
        return None
    if isinstance(state, Tensor):
        keep = (~reset).to(state.dtype).view(1, -1, *([1] * (state.dim() - 2)))
        return state * keep
    return type(state)(reset_state(s, reset) for s in state)


def cast_state(state, dtype: torch.dtype):
    """``state`` in ``dtype`` (under autocast a layer returns its state in the autocast dtype)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state if state.dtype == dtype else state.to(dtype)
    return type(state)(cast_state(s, dtype) for s in state)
