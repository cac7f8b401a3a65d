"""Training data as seen by the :class:`~rnnkit.train.Trainer`.

The trainer needs, per epoch, a deterministic sequence of batches that it can
enter at any position (to resume mid-epoch).  Anything with
``__len__`` (batches per epoch) and ``iter_epoch(epoch, start)`` works:

* :class:`ListData` - a list of batches (dicts or dataclasses of tensors),
  optionally shuffled with a generator seeded by ``(seed, epoch)``;
* :class:`StreamData` - TBPTT chunks of a :class:`~rnnkit.train.tbptt.Streams`
  layout, always in order (the state flows from chunk to chunk).

Plain lists / tuples given to the trainer are wrapped in ``ListData``.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import torch

from rnnkit.train.tbptt import Chunk, Streams, windows


@runtime_checkable
class EpochData(Protocol):
    def __len__(self) -> int: ...

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Any]: ...


class ListData:
    """Batches from a sequence, shuffled per epoch when ``shuffle``."""
    stateful = False

    def __init__(self, batches: Sequence[Any], shuffle: bool = False, seed: int = 0):
        if len(batches) == 0:
            raise ValueError("no batches to train or evaluate on")
        self.batches, self.shuffle, self.seed = batches, shuffle, seed

    def __len__(self) -> int:
        return len(self.batches)

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(len(self.batches)))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.batches), generator=gen).tolist()

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Any]:
        for i in self.order(epoch)[start:]:
            yield self.batches[i]

    def fingerprint(self) -> str:
        """A digest of every batch's contents and of the shuffling: equal iff an epoch yields the same."""
        return _digest([self.shuffle, self.seed, *self.batches])


class StreamData:
    """TBPTT chunks of ``streams`` (k1 steps each), in order, every epoch."""
    stateful = True

    def __init__(self, streams: Streams):
        self.streams = streams

    def __len__(self) -> int:
        return len(self.streams)

    @property
    def n_tokens(self) -> int:
        return self.streams.n_tokens

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Chunk]:
        return windows(self.streams, start)

    def fingerprint(self) -> str:
        """A digest of the stream layout (tokens, targets, document starts, k1)."""
        s = self.streams
        return _digest([s.k1, s.inputs, s.targets, s.starts])


def _digest(items: Sequence[Any]) -> str:
    """blake2b over tensors' shapes, dtypes and bytes, plain values' repr and other objects' type names,
    nested through dicts, lists, tuples and dataclasses: what the trainer stores to tell, on resume,
    whether the data it is given is the data the run was started on."""
    h = hashlib.blake2b(digest_size=16)

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{tuple(t.shape)}{t.dtype}".encode())
            # reshape: a 0-d tensor cannot be viewed as bytes of another element size
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            h.update(b"{")
            for k in x:
                h.update(repr(k).encode())
                feed(x[k])
            h.update(b"}")
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for v in x:
                feed(v)
            h.update(b"]")
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            feed({f.name: getattr(x, f.name) for f in dataclasses.fields(x)})
        elif x is None or isinstance(x, (bool, int, float, str, bytes)):
            h.update(repr(x).encode())
        else:  # other objects: their type only (a default repr holds an address that changes per process)
            h.update(type(x).__qualname__.encode())

    feed(list(items))
    return h.hexdigest()


def as_epoch_data(data: Any) -> EpochData:
    if isinstance(data, EpochData):
        return data
    if isinstance(data, (list, tuple)):
        return ListData(data)
    raise TypeError(f"training data must be a list of batches or have __len__ and iter_epoch(epoch, start), "
                    f"got {type(data).__name__}")
