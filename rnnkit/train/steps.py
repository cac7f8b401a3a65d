"""How one update's loss is computed: stateless batches or truncated BPTT.

The trainer's loop is shared; only this small strategy object varies.

* :class:`StatelessStep` - ``out = model(batch)``.
* :class:`TBPTTStep` - ``out = model(chunk, state)``; the state is carried from
  chunk to chunk, detached, and zeroed per stream at document starts.  With
  ``k2 = m * k1`` each update re-runs the previous ``m - 1`` chunks (kept in a
  small queue) from the state saved before them, so gradients flow back
  through ``k2`` steps while the loss covers only the newest ``k1`` steps
  (Williams & Peng's BPTT(k2, k1)).

Under several processes each one carries the state of its own streams (columns); a checkpoint holds
the state of all streams (gathered), and a resumed process takes its columns of it again, for any
number of processes.
"""
from __future__ import annotations

from collections import deque

import torch

from rnnkit.train import distributed
from rnnkit.train.distributed import SINGLE, World
from rnnkit.train.tbptt import Chunk, detach_state, reset_state

STATE_DIM = 1  # streams of a state tensor (layers*dirs, B, H)


def _flatten(state, prefix: str, out: dict, world: World) -> object:
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        out[prefix] = distributed.gather(state, STATE_DIM, world)
        return prefix
    return [_flatten(s, f"{prefix}.{i}", out, world) for i, s in enumerate(state)]


def _unflatten(spec, tensors: dict, device, world: World):
    if spec is None:
        return None
    if isinstance(spec, str):
        return distributed.take(tensors[spec], STATE_DIM, world).to(device)
    return tuple(_unflatten(s, tensors, device, world) for s in spec)


class StatelessStep:
    def begin_epoch(self) -> None:
        pass

    def forward(self, model, batch):
        return model(batch)

    def after_update(self) -> None:
        pass

    def state_dict(self, tensors: dict) -> dict:
        return {}

    def load_state_dict(self, sd: dict, tensors: dict, device) -> None:
        pass


class TBPTTStep:
    """Carries the recurrent state; ``k2`` must be a multiple of ``k1``; ``world``: the processes whose
    streams the checkpointed state covers (this one's columns are its share)."""

    def __init__(self, k1: int, k2: int, world: World = SINGLE):
        if k2 < k1 or k2 % k1:
            raise ValueError(f"k2={k2} must be a multiple of k1={k1}")
        self.m = k2 // k1
        self.world = world
        self.begin_epoch()

    def begin_epoch(self) -> None:
        self.state = None  # state before the oldest chunk of the window (detached)
        self.context: deque[Chunk] = deque(maxlen=self.m - 1)
        self._next_state = None

    def forward(self, model, chunk: Chunk):
        """Run the window (context chunks + ``chunk``); the loss is the newest chunk's."""
        window = list(self.context) + [chunk]
        state = self.state
        for i, c in enumerate(window):
            out = model(c, reset_state(state, c.reset))
            state = out.state
            if i == 0:
                after_first = state
        full = len(self.context) == self.m - 1
        self._next_state = after_first if (full or self.m == 1) else self.state
        self._pending = chunk
        return out

    def after_update(self) -> None:
        self.state = detach_state(self._next_state)
        if self.m > 1:
            self.context.append(self._pending)

    def state_dict(self, tensors: dict) -> dict:
        spec = _flatten(self.state, "tbptt.state", tensors, self.world)
        w = self.world
        for i, c in enumerate(self.context):  # chunks (k1, B) and resets (B,): all streams
            tensors[f"tbptt.ctx.{i}.inputs"] = distributed.gather(c.inputs, 1, w)
            tensors[f"tbptt.ctx.{i}.targets"] = distributed.gather(c.targets, 1, w)
            tensors[f"tbptt.ctx.{i}.reset"] = distributed.gather(c.reset, 0, w)
        return {"state": spec, "context": [c.index for c in self.context]}

    def load_state_dict(self, sd: dict, tensors: dict, device) -> None:
        self.begin_epoch()
        w = self.world
        self.state = _unflatten(sd["state"], tensors, device, w)
        for i, index in enumerate(sd["context"]):
            self.context.append(Chunk(distributed.take(tensors[f"tbptt.ctx.{i}.inputs"], 1, w).to(device),
                                      distributed.take(tensors[f"tbptt.ctx.{i}.targets"], 1, w).to(device),
                                      distributed.take(tensors[f"tbptt.ctx.{i}.reset"], 0, w).to(device), index))
