"""Recurrent state: torch's layout (L*D, B, S) per component at the API, a list of per
(layer, direction) tuples inside; ``detach_state`` for truncated BPTT."""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor

StateLike = Union[Tensor, Tuple[Tensor, ...], List[Tensor], None]


def detach_state(state):
    """Detach every tensor in a (nested) tuple/list/dict of states: cut the graph between chunks."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # namedtuple
        return type(state)(*(detach_state(s) for s in state))
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    raise TypeError(f"detach_state expects tensors in tuples, lists or dicts, got {type(state).__name__}")


def split_state(hx: StateLike, names: Sequence[str], sizes: Sequence[int], layers_dirs: int,
                batch: int, unbatched: bool) -> List[Tuple[Tensor, ...]]:
    """Check a user-supplied state and split it into per (layer, direction) tuples."""
    comps = (hx,) if isinstance(hx, Tensor) else tuple(hx)
    if len(comps) != len(sizes):
        form = names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"
        raise ValueError(f"hx must be {form} ({len(sizes)} tensor(s)), got {len(comps)}")
    out = []
    for name, comp, size in zip(names, comps, sizes):
        if not isinstance(comp, Tensor):
            raise ValueError(f"hx {name} must be a Tensor, got {type(comp).__name__}")
        expected = (layers_dirs, size) if unbatched else (layers_dirs, batch, size)
        if tuple(comp.shape) != expected:
            raise ValueError(f"hx {name} must have shape {expected} (num_layers*num_directions, "
                             f"{'' if unbatched else 'batch, '}size), got {tuple(comp.shape)}")
        out.append(comp.unsqueeze(1) if unbatched else comp)
    return [tuple(c[i] for c in out) for i in range(layers_dirs)]


def join_state(states: List[Tuple[Tensor, ...]], unbatched: bool):
    """Per (layer, direction) tuples -> torch layout: a tensor (1 component) or a tuple."""
    comps = tuple(torch.stack([s[k] for s in states]) for k in range(len(states[0])))
    if unbatched:
        comps = tuple(c.squeeze(1) for c in comps)
    return comps[0] if len(comps) == 1 else comps
