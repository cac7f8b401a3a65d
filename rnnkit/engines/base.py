"""The engine contract: how a whole sequence runs.

Two scopes:

* a **direction engine** runs one cell over one sequence in one direction
  (``run_direction``); the layer stacks layers and directions around it. reference, bptt, scan and
  the GPU kernels are direction engines.
* a **stack engine** runs the whole stacked, possibly bidirectional layer in one call
  (``run_stack``); native (torch's fused cuDNN/oneDNN RNNs) is one.

Every engine answers ``supports(request)`` with ``None`` (it can serve) or a sentence saying why not.
"""
from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from ..cells.base import Cell
    from ..layers.recurrent import Recurrent

State = Tuple[Tensor, ...]


def autocast_enabled(device_type: str) -> bool:
    """Whether torch.autocast is on for this device type."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 took no device type
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def cpu_autocast_dtype() -> Optional[torch.dtype]:
    """The lower precision of an active CPU autocast region, or None outside one."""
    if not autocast_enabled("cpu"):
        return None
    get = getattr(torch, "get_autocast_dtype", None)  # torch < 2.4: only the per-device getter
    return get("cpu") if get is not None else torch.get_autocast_cpu_dtype()


def family_module_loader(modules: Dict[str, str]) -> Callable[[str], Optional[ModuleType]]:
    """family -> the module implementing it on an engine (``modules`` names them), or None: imported on
    first use and kept, since dispatch asks on every call."""
    loaded: Dict[str, ModuleType] = {}

    def load(family: str) -> Optional[ModuleType]:
        mod = loaded.get(family)
        if mod is None:
            name = modules.get(family)
            if name is None:
                return None
            mod = loaded[family] = importlib.import_module(name)
        return mod

    return load


def without_autocast(backward):
    """Run a hand-written backward with autocast off, as its forward ran (the layer turns autocast
    off around rnnkit's own engines); without it a backward called inside an autocast region would
    mix dtypes. Place it under @staticmethod, above @once_differentiable."""
    import functools

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        devices = {g.device.type for g in grads if isinstance(g, Tensor)} or {"cpu"}
        with contextlib.ExitStack() as stack:
            for device in devices:
                stack.enter_context(torch.autocast(device, enabled=False))
            return backward(ctx, *grads)

    return wrapper


class EngineError(ValueError):
    """A forced engine cannot serve the configuration; the message says why."""


@dataclass
class Request:
    """What a forward call asks of an engine: the layer, the input's device/dtype and the features."""

    layer: "Recurrent"
    device: torch.device
    dtype: torch.dtype
    has_lengths: bool = False
    all_states: bool = False
    probe_grads: bool = False
    record_gates: bool = False
    training: bool = False
    needs_grad: bool = False
    steps: int = 0  # T, the number of time steps of the call
    batch: int = 0  # B, the number of sequences of the call

    @property
    def family(self) -> str:
        return self.layer.family

    @property
    def cells(self) -> List["Cell"]:
        return list(self.layer.cells)


@dataclass
class DirectionMasks:
    """Regularisation masks fixed for one (layer, direction) over one sequence, already scaled.

    dropconnect: same shape as the cell's recurrent weight; h_mask: (B, S0) variational dropout on
    the state entering the recurrent matmul; zoneout: one (T, B, S_k) tensor per state component
    with the probability of keeping the old value (Bernoulli in training, the constant p in eval).
    """

    dropconnect: Optional[Tensor] = None
    h_mask: Optional[Tensor] = None
    zoneout: Optional[Tuple[Tensor, ...]] = None

    @property
    def any(self) -> bool:
        return self.dropconnect is not None or self.h_mask is not None or self.zoneout is not None


@dataclass
class DirectionJob:
    """Everything a direction engine needs besides the cell, the input and the initial state."""

    valid: Optional[Tensor] = None          # (T, B, 1) bool: step t is inside sequence b
    masks: DirectionMasks = field(default_factory=DirectionMasks)
    want_states: bool = False
    probe: Optional[Tensor] = None          # (T, B, S0) zeros added to state[0] at each step
    trace: Optional[list] = None            # cells append gate activations per step


@dataclass
class DirectionResult:
    hidden: Tensor                          # (T, B, S0) what each step emits, zero past lengths
    state: State                            # final state, the state at each sequence's own end
    states: Optional[State] = None          # per component (T, B, S_k) when want_states


class Engine:
    """Base class. Subclasses set ``name``/``scope`` and implement supports + one run method."""

    name: str = "engine"
    scope: str = "direction"  # or "stack"
    #: True only for engines that call the cell's own methods (reference); the others implement a
    #: family's equations and are refused for cells that override them
    runs_cell_code: bool = False

    def supports(self, req: Request) -> Optional[str]:
        raise NotImplementedError

    def run_direction(self, cell: "Cell", x: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
        raise NotImplementedError(f"{self.name} is not a direction engine")

    def run_stack(self, layer: "Recurrent", x: Tensor, state0: List[State], lengths: Optional[Tensor],
                  masks: List[DirectionMasks]):
        """The whole layer; ``masks`` has one entry per cell (index layer*D + direction), drawn by the
        layer as for the direction engines."""
        raise NotImplementedError(f"{self.name} is not a stack engine")

    def __repr__(self) -> str:
        return f"<engine {self.name}>"
