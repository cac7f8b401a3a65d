"""The engine contract: how a whole sequence runs.

Two scopes:

* a **direction engine** runs one cell over one sequence in one direction
  (``run_direction``); the layer stacks layers and directions around it. reference, bptt, scan and
  the GPU kernels are direction engines.
* a **stack engine** runs the whole stacked, possibly bidirectional layer in one call
  (``run_stack``); native (torch's fused cuDNN/oneDNN RNNs) is one.

Every engine answers ``supports(request)`` with ``None`` (it can run the call) or a sentence saying
why it cannot: capability only. Which of the engines that can run a call is faster is not an
engine's business: the measured preferences are rows of ``policy.POLICY``.

A ``Request`` describes the call (cell configuration, regularisation, shapes, features), never the
layer that makes it: engines know nothing of ``rnnkit.layers``.
"""
from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..cells.base import check_probability

if TYPE_CHECKING:  # pragma: no cover
    from ..cells.base import Cell

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
class Regularization:
    """A layer's regularisation settings, the probabilities of each regulariser (0: off); see
    ``rnnkit.layers.regularizers`` for what each does."""

    dropout: float = 0.0
    variational_dropout: float = 0.0
    recurrent_dropout: float = 0.0
    dropconnect: float = 0.0
    zoneout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("dropout", "variational_dropout", "recurrent_dropout", "dropconnect", "zoneout"):
            check_probability(name, getattr(self, name))


@dataclass
class Request:
    """What a forward call asks of an engine: the cells (their configuration and, for the engines that
    run a whole stack, their parameters), the regularisation, the input's device, dtype and shape
    (T = ``steps``, B = ``batch``) and the features asked for. ``cells`` is every cell of the stack
    in order (index layer * D + direction); all share the first one's family and configuration."""

    cells: Tuple["Cell", ...]
    regularization: Regularization
    device: torch.device
    dtype: torch.dtype
    num_layers: int = 1
    bidirectional: bool = False
    has_lengths: bool = False
    all_states: bool = False
    probe_grads: bool = False
    record_gates: bool = False
    training: bool = False
    needs_grad: bool = False
    steps: int = 0  # T, the number of time steps of the call
    batch: int = 0  # B, the number of sequences of the call

    @property
    def cell(self) -> "Cell":
        """The first layer's forward cell: the configuration every cell of the stack shares."""
        return self.cells[0]

    @property
    def family(self) -> str:
        return self.cells[0].family

    @property
    def hidden_size(self) -> int:
        return self.cells[0].hidden_size

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1


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
    #: the dtype of the whole-sequence matrix products (CPU autocast's lower precision, for the engines that
    #: honour it: cpp's LSTM); the time loop and the state stay in the input's dtype. None: the input's dtype
    products: Optional[torch.dtype] = None


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

    def prepare(self) -> None:
        """Called before :meth:`supports` when a layer names this engine: an engine whose resources come
        up in the background (the cpp engine's kernels) waits for them here instead of being refused while
        they do. ``auto`` never calls it. Default: nothing to wait for."""

    def supports(self, req: Request) -> Optional[str]:
        """None if this engine can run the request, else why it cannot (capability, never speed)."""
        raise NotImplementedError

    def run_direction(self, cell: "Cell", x: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
        raise NotImplementedError(f"{self.name} is not a direction engine")

    def run_stack(self, req: Request, x: Tensor, state0: List[State], lengths: Optional[Tensor],
                  masks: List[DirectionMasks]):
        """The whole stack of ``req.cells``; ``masks`` has one entry per cell (index layer*D + direction),
        drawn by the layer as for the direction engines."""
        raise NotImplementedError(f"{self.name} is not a stack engine")

    def __repr__(self) -> str:
        return f"<engine {self.name}>"


class LazyEngine(Engine):
    """An engine whose module is imported on first use (GPU kernels: CPU installs never import them)."""

    def __init__(self, name: str, module: str, attr: str, devices: Tuple[str, ...], scope: str = "direction",
                 install_hint: str = ""):
        self.name, self.scope = name, scope
        self._module, self._attr, self._devices, self._hint = module, attr, devices, install_hint
        self._engine: Optional[Engine] = None
        self._import_error: Optional[str] = None

    def _load(self) -> Optional[str]:
        if self._engine is None and self._import_error is None:
            try:
                self._engine = getattr(importlib.import_module(self._module), self._attr)()
            except ImportError as exc:  # the optional dependency is missing: say so, never hide it
                self._import_error = f"cannot import {self._module} ({exc}){self._hint}"
        return self._import_error

    def supports(self, req: Request) -> Optional[str]:
        if req.device.type not in self._devices:
            return f"runs on {'/'.join(self._devices)} only; the input is on {req.device.type}"
        err = self._load()
        return err if err is not None else self._engine.supports(req)

    def __getattr__(self, item):  # run_direction / run_stack and engine-specific helpers
        if item.startswith("_"):
            raise AttributeError(item)
        err = self._load()
        if err is not None:
            raise EngineError(f"engine {self.name!r} is unavailable: {err}")
        return getattr(self._engine, item)

    def run_direction(self, cell, x, state0, job):
        return self.__getattr__("run_direction")(cell, x, state0, job)

    def run_stack(self, layer, x, state0, lengths, masks):
        return self.__getattr__("run_stack")(layer, x, state0, lengths, masks)
