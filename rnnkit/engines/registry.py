"""Engine dispatch: which engine runs a forward call, and ``explain()`` saying why.

``engine="auto"`` walks the priority list for the input's device type and takes the first engine
whose ``supports(request)`` is None. A named engine is used as asked, or an ``EngineError`` says why
it cannot serve. Nothing falls back silently: ``explain()`` lists every faster engine's reason.

One-step calls without gradients on the CPU (generation, beam search: a call per token) keep their
layer's last choice: walking the list cost 50-100 us a token on the 2-core test machine, a quarter to
a third of what a token of a 2-layer GRU, LSTM or Elman layer of 128 units took there. The choice
is reused only while everything the built-in engines' ``supports`` reads is unchanged: the request's
fields, the layer's first cell and regularisation, the registry (a new engine or order), CPU autocast,
``torch.backends.mkldnn.enabled``, ``RNNKIT_CPP`` and the state of the C++ kernel build (a background
build that finishes changes the key, so the next call can pick the cpp engine up).
An engine registered from outside whose ``supports`` reads other state should be registered with
``one_step_memo=False``, which turns the reuse off.
"""
from __future__ import annotations

import importlib
import weakref
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

import torch

from ..cells.base import overridden_maths
from .base import Engine, EngineError, Request, cpu_autocast_dtype
from .cpp.build import state_token as cpp_build_state
from .single_step import auto_single_step_without_grad


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


@dataclass
class Explanation:
    """Which engine runs a call and, for each engine ahead of it in priority, why it did not."""

    engine: str
    requested: str
    device: str
    family: str
    rejected: List[Tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.family} layer on {self.device}: engine '{self.engine}' runs"
                 f" (requested: {self.requested})"]
        for name, reason in self.rejected:
            lines.append(f"  - {name}: not used: {reason}")
        return "\n".join(lines)


class EngineRegistry:
    def __init__(self) -> None:
        self._engines: Dict[str, Engine] = {}
        #: priority per device type, fastest first; families may override (measured in bench/)
        self._order: Dict[str, List[str]] = {"cpu": [], "cuda": []}
        self._family_order: Dict[Tuple[str, str], List[str]] = {}
        #: per device type, the engine that goes first for calls of a single time step
        self._single_step_first: Dict[str, str] = {}
        #: layer -> (key, engine, explanation) of its last one-step CPU call under auto (see one_step_key)
        self._memo: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        #: bumped by every change of engines or order, so that no kept choice outlives one
        self._version = 0
        self._memo_enabled = True

    def register(self, engine: Engine, priority: Dict[str, int], one_step_memo: bool = True) -> None:
        """Add an engine at the given index of each device type's priority list. ``one_step_memo=False``:
        the engine's ``supports`` reads state beyond the request, the layer and the switches listed in
        this module's docstring, so one-step choices are never reused (see ``one_step_key``)."""
        self._engines[engine.name] = engine
        self._version += 1
        self._memo_enabled = self._memo_enabled and one_step_memo
        for dev, index in priority.items():
            order = self._order.setdefault(dev, [])
            if engine.name in order:
                order.remove(engine.name)
            order.insert(min(index, len(order)), engine.name)

    def set_family_order(self, device: str, family: str, names: List[str]) -> None:
        """Override the priority list for one family on one device type (from benchmark results)."""
        self._family_order[(device, family)] = list(names)
        self._version += 1

    def set_single_step_first(self, device: str, name: str) -> None:
        """Put one engine first for calls of one time step on a device type (from benchmark results)."""
        self._single_step_first[device] = name
        self._version += 1

    def names(self) -> List[str]:
        return sorted(self._engines)

    def get(self, name: str) -> Engine:
        if name not in self._engines:
            raise ValueError(f"engine must be 'auto' or one of {self.names()}, got {name!r}")
        return self._engines[name]

    def order(self, req: Request) -> List[str]:
        dev = req.device.type if req.device.type in self._order else "cpu"
        base = self._family_order.get((dev, req.family), self._order[dev])
        names = [n for n in base if n in self._engines] + \
                [n for n in self._order[dev] if n not in base and n in self._engines]
        first = self._single_step_first.get(dev)
        if req.steps == 1 and first in names:
            names = [first] + [n for n in names if n != first]
        return names

    @staticmethod
    def reason(engine: Engine, req: Request) -> Optional[str]:
        """Why the engine cannot serve the request (None: it can)."""
        if not getattr(engine, "runs_cell_code", False):
            overridden = overridden_maths(req.layer.first_cell)
            if overridden:
                return overridden
        return engine.supports(req)

    def one_step_key(self, req: Request) -> Optional[tuple]:
        """What auto's choice for a one-step CPU call without gradients depends on, or None for any other
        call (those walk the list each time). Two calls of one layer with equal keys get the same engine."""
        if (not self._memo_enabled or not auto_single_step_without_grad(req)
                or req.has_lengths or req.all_states or req.probe_grads or req.record_gates):
            return None
        layer = req.layer
        return (self._version, id(layer.first_cell), req.dtype, req.batch, req.training,
                tuple(vars(layer.regularization).values()), cpu_autocast_dtype(), torch.backends.mkldnn.enabled,
                cpp_build_state())

    def choose(self, req: Request, requested: str) -> Tuple[Engine, Explanation]:
        key = self.one_step_key(req) if requested == "auto" else None
        if key is not None:
            kept = self._memo.get(req.layer)
            if kept is not None and kept[0] == key:
                return kept[1], replace(kept[2], rejected=list(kept[2].rejected))  # the caller may change it
        engine, explanation = self._walk(req, requested)
        if key is not None:
            self._memo[req.layer] = (key, engine, replace(explanation, rejected=list(explanation.rejected)))
        return engine, explanation

    def _walk(self, req: Request, requested: str) -> Tuple[Engine, Explanation]:
        explanation = Explanation(engine="", requested=requested, device=str(req.device), family=req.family)
        if requested != "auto":
            engine = self.get(requested)
            reason = self.reason(engine, req)
            if reason is not None:
                raise EngineError(f"engine {requested!r} cannot run this {req.family} layer: {reason}")
            explanation.engine = requested
            return engine, explanation
        for name in self.order(req):
            engine = self._engines[name]
            reason = self.reason(engine, req)
            if reason is None:
                explanation.engine = name
                return engine, explanation
            explanation.rejected.append((name, reason))
        raise EngineError("no engine can run this configuration:\n" + str(explanation))


REGISTRY = EngineRegistry()


def register_engine(engine: Engine, priority: Dict[str, int], one_step_memo: bool = True) -> None:
    REGISTRY.register(engine, priority, one_step_memo)


def _register_builtin() -> None:
    from .bptt import BPTTEngine
    from .cpp import CppEngine
    from .native import NativeEngine
    from .reference import ReferenceEngine

    REGISTRY.register(ReferenceEngine(), {"cpu": 99, "cuda": 99})
    REGISTRY.register(BPTTEngine(), {"cpu": 0, "cuda": 0})
    REGISTRY.register(NativeEngine(), {"cpu": 0, "cuda": 0})
    REGISTRY.register(CppEngine(), {"cpu": 1})
    from . import triton as triton_engines  # registers scan (torch) and the lazy Triton engines

    triton_engines.register(REGISTRY)
    # Measured on a 2-core CPU (bench/RESULTS.md, CPU): the explicit-BPTT engine beats torch's
    # unfused GRU and RNN loops at every benchmark shape (1.08-2.61x and 1.02-2.25x per training
    # step); torch's oneDNN LSTM stays ahead of it, so LSTM keeps native first. The cpp engine's
    # C++ loops beat bptt at all four shapes, single thread (GRU 1.05-1.33x, RNN 1.05-1.26x), so
    # they go first; bptt serves what they cannot (bfloat16, a failed build, RNNKIT_CPP=0). The Jordan
    # network's C++ loop comes before bptt in the default order (1.3-3.4x it in float32, 1.0-1.5x in
    # float64, bench/RESULTS.md run L).
    for family in ("gru", "elman"):
        REGISTRY.set_family_order("cpu", family, ["cpp", "bptt", "native"])
    # One time step at a time (generation, beam search) on the CPU: the native engine's cell-function
    # route (NativeEngine.one_step) costs 0.3 ms a token for a 2 x 256 LSTM where torch's fused call
    # costs 2.1 ms and the cpp engine 0.85 ms (bench/RESULTS.md, "one step at a time")
    REGISTRY.set_single_step_first("cpu", "native")


_register_builtin()
