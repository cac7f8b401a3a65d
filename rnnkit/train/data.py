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


def as_epoch_data(data: Any) -> EpochData:
    if isinstance(data, EpochData):
        return data
    if isinstance(data, (list, tuple)):
        return ListData(data)
    raise TypeError(f"training data must be a list of batches or have __len__ and iter_epoch(epoch, start), "
                    f"got {type(data).__name__}")
