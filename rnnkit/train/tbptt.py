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

With ``reset_every = R`` chunks each stream's state is also zeroed every ``R``
chunks, stream ``b``'s resets shifted by ``b * R // B`` chunks (staggered)::

    R = 4, B = 4     chunk  0 1 2 3 4 5 6 7 8
    stream 0 (shift 0)      r . . . r . . . r      r: reset (starts[j, b])
    stream 1 (shift 1)      r . . r . . . r .
    stream 2 (shift 2)      r . r . . . r . .
    stream 3 (shift 3)      r r . . . r . . .

so no state is carried through more than ``R * k1`` steps, and every batch
holds states of every age from 0 to ``R * k1`` steps, in equal shares.  Without
it, a corpus cut into B long streams couples a state's age to the position in
the epoch: every update of an epoch's later part sees states hundreds of chunks
old (an LSTM's cell state keeps growing with them, by up to one per step),
while validation and generation start from zero, and the model drifts to
states the evaluation never produces (docs/lm.md, "Session 14").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import Tensor

from rnnkit.layers.state import detach_state

IGNORE_INDEX = -100
__all__ = ["Streams", "Chunk", "batchify", "staggered_resets", "state_ages", "windows", "detach_state", "reset_state", "cast_state"]


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


def batchify(docs: Sequence[Sequence[int] | Tensor], batch_size: int, k1: int, reset_every: int = 0) -> Streams:
    """Lay documents (token id sequences) out as ``batch_size`` streams (see module picture);
    ``reset_every``: also reset each stream's state every that many chunks, staggered (0 = only at
    document starts)."""
    if batch_size < 1 or k1 < 1:
        raise ValueError(f"batch_size and k1 must be positive, got {batch_size}, {k1}")
    if reset_every < 0:
        raise ValueError(f"reset_every must be >= 0 chunks (0 = only at document starts), got {reset_every}")
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
    if reset_every:
        starts |= staggered_resets(starts.shape[0], batch_size, reset_every)
    return Streams(inputs, targets, starts, k1)


def staggered_resets(n_chunks: int, batch_size: int, every: int) -> Tensor:
    """(n_chunks, batch_size) bool: True at chunk ``j`` of stream ``b`` when ``(j + b * every // batch_size)``
    is a multiple of ``every`` (see the module picture)."""
    j = torch.arange(n_chunks).view(-1, 1)
    shift = torch.arange(batch_size).view(1, -1) * every // batch_size
    return (j + shift) % every == 0


def state_ages(starts: Tensor) -> Tensor:
    """(N, B) long: how many chunks each stream's state has been carried through when chunk ``j`` starts
    (0 = a fresh state), from ``starts`` (N, B) bool."""
    ages = torch.zeros(starts.shape, dtype=torch.long)
    for j in range(1, starts.shape[0]):
        ages[j] = torch.where(starts[j], 0, ages[j - 1] + 1)
    return ages


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
