"""How one update's loss is computed: stateless batches or truncated BPTT.

The trainer's loop is shared; only this small strategy object varies.

* :class:`StatelessStep` - ``out = model(batch)``.
* :class:`TBPTTStep` - ``out = model(chunk, state)``; the state is carried from
  chunk to chunk, detached, and zeroed per stream at document starts.  With
  ``k2 = m * k1`` each update re-runs the previous ``m - 1`` chunks (kept in a
  small queue) from the state saved before them, so gradients flow back
  through ``k2`` steps while the loss covers only the newest ``k1`` steps
  (Williams & Peng's BPTT(k2, k1)).
"""
from __future__ import annotations

from collections import deque

import torch

from rnnkit.train.tbptt import Chunk, detach_state, reset_state


def _flatten(state, prefix: str, out: dict) -> object:
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        out[prefix] = state
        return prefix
    return [_flatten(s, f"{prefix}.{i}", out) for i, s in enumerate(state)]


def _unflatten(spec, tensors: dict, device):
    if spec is None:
        return None
    if isinstance(spec, str):
        return tensors[spec].to(device)
    return tuple(_unflatten(s, tensors, device) for s in spec)


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
    """Carries the recurrent state; ``k2`` must be a multiple of ``k1``."""

    def __init__(self, k1: int, k2: int):
        if k2 < k1 or k2 % k1:
            raise ValueError(f"k2={k2} must be a multiple of k1={k1}")
        self.m = k2 // k1
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
        spec = _flatten(self.state, "tbptt.state", tensors)
        for i, c in enumerate(self.context):
            tensors[f"tbptt.ctx.{i}.inputs"] = c.inputs
            tensors[f"tbptt.ctx.{i}.targets"] = c.targets
            tensors[f"tbptt.ctx.{i}.reset"] = c.reset
        return {"state": spec, "context": [c.index for c in self.context]}

    def load_state_dict(self, sd: dict, tensors: dict, device) -> None:
        self.begin_epoch()
        self.state = _unflatten(sd["state"], tensors, device)
        for i, index in enumerate(sd["context"]):
            self.context.append(Chunk(tensors[f"tbptt.ctx.{i}.inputs"].to(device),
                                      tensors[f"tbptt.ctx.{i}.targets"].to(device),
                                      tensors[f"tbptt.ctx.{i}.reset"].to(device), index))
