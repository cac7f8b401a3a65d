"""Engine dispatch: which engine runs a forward call, and ``explain()`` saying why.

``engine="auto"``: the first engine of the device type's priority list (a family may have its own)
that can run the call (``supports(request)`` is None), then the measured preferences of
``policy.POLICY`` (see there). A named engine runs if it can, else an ``EngineError`` gives its
reason; preferences never refuse it. Nothing falls back silently: ``explain()`` lists, for every
engine ahead of the one that runs, either why it cannot run or which preference passed it over.

One-step calls without gradients on the CPU (generation, beam search: a call per token) keep their
layer's last choice: deciding cost 50-100 us a token on the 2-core test machine, a quarter to a third
of what a token of a 2-layer GRU, LSTM or Elman layer of 128 units took there. The choice is reused
only while everything the built-in engines' ``supports`` and the policy's one-step rows read is
unchanged: the request's fields, its first cell and regularisation, the registry (a new engine or
order), CPU autocast, ``torch.backends.mkldnn.enabled``, ``RNNKIT_CPP`` and the state of the C++ kernel build (a background
build that finishes changes the key, so the next call can pick the cpp engine up). An engine registered from
outside whose ``supports`` reads other state should be registered with ``one_step_memo=False``, which
turns the reuse off.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

import torch

from ..cells.base import overridden_maths
from .base import Engine, EngineError, Request, cpu_autocast_dtype
from .cpp.build import state_token as cpp_build_state
from .policy import ANY, NEXT, POLICY, Preference, one_step_without_grad


@dataclass
class Explanation:
    """Which engine runs a call and, for each engine ahead of it in priority, why not that one:
    ``rejected`` (name, why it cannot run) and ``passed_over`` (name, the preference that chose another
    engine although this one can run)."""

    engine: str
    requested: str
    device: str
    family: str
    rejected: List[Tuple[str, str]] = field(default_factory=list)
    passed_over: List[Tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.family} layer on {self.device}: engine '{self.engine}' runs"
                 f" (requested: {self.requested})"]
        lines += [f"  - {name}: cannot run: {why}" for name, why in self.rejected]
        lines += [f"  - {name}: can run; passed over: {why}" for name, why in self.passed_over]
        return "\n".join(lines)

    def copy(self) -> "Explanation":
        return replace(self, rejected=list(self.rejected), passed_over=list(self.passed_over))


class EngineRegistry:
    def __init__(self, policy: Optional[List[Preference]] = None) -> None:
        self._engines: Dict[str, Engine] = {}
        #: priority per device type, fastest first; families may override (measured in bench/)
        self._order: Dict[str, List[str]] = {"cpu": [], "cuda": []}
        self._family_order: Dict[Tuple[str, str], List[str]] = {}
        #: the measured preferences among capable engines (policy.py), in the order they apply
        self._policy: List[Preference] = list(POLICY if policy is None else policy)
        #: first cell -> (key, engine, explanation) of its layer's last one-step CPU call under auto
        self._memo: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        #: bumped by every change of engines, order or policy, so that no kept choice outlives one
        self._version = 0
        self._memo_enabled = True

    def register(self, engine: Engine, priority: Dict[str, int], one_step_memo: bool = True) -> None:
        """Add an engine at the given index of each device type's priority list. ``one_step_memo=False``:
        the engine's ``supports`` reads state beyond the request and the switches listed in this module's
        docstring, so one-step choices are never reused (see ``one_step_key``)."""
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

    @property
    def policy(self) -> List[Preference]:
        """The preference rows, in the order they apply (a copy)."""
        return list(self._policy)

    def set_policy(self, policy: List[Preference]) -> None:
        """Replace the preference rows (tests, or measurements of another machine)."""
        self._policy = list(policy)
        self._version += 1

    def names(self) -> List[str]:
        return sorted(self._engines)

    def get(self, name: str) -> Engine:
        if name not in self._engines:
            raise ValueError(f"engine must be 'auto' or one of {self.names()}, got {name!r}")
        return self._engines[name]

    def order(self, req: Request) -> List[str]:
        """The default priority order for the request's device type and family (no preferences applied)."""
        dev = req.device.type if req.device.type in self._order else "cpu"
        base = self._family_order.get((dev, req.family), self._order[dev])
        return [n for n in base if n in self._engines] + \
               [n for n in self._order[dev] if n not in base and n in self._engines]

    @staticmethod
    def reason(engine: Engine, req: Request) -> Optional[str]:
        """Why the engine cannot run the request (None: it can). Capability only."""
        if not getattr(engine, "runs_cell_code", False):
            overridden = overridden_maths(req.cell)
            if overridden:
                return overridden
        return engine.supports(req)

    def one_step_key(self, req: Request) -> Optional[tuple]:
        """What auto's choice for a one-step CPU call without gradients depends on, or None for any other
        call (those are decided each time). Two calls of one layer with equal keys get the same engine."""
        if (not self._memo_enabled or not one_step_without_grad(req)
                or req.has_lengths or req.all_states or req.probe_grads or req.record_gates):
            return None
        return (self._version, id(req.cell), len(req.cells), req.bidirectional, req.dtype, req.batch,
                req.training, tuple(vars(req.regularization).values()), cpu_autocast_dtype(),
                torch.backends.mkldnn.enabled, cpp_build_state())

    def choose(self, req: Request, requested: str) -> Tuple[Engine, Explanation]:
        """The engine that runs the call (``requested``: "auto" or an engine's name), with the explanation
        gathered while deciding (``explain`` gives the full one)."""
        key = self.one_step_key(req) if requested == "auto" else None
        if key is not None:
            kept = self._memo.get(req.cell)
            if kept is not None and kept[0] == key:
                return kept[1], kept[2].copy()  # the caller may change it
        engine, explanation = self._decide(req, requested, full=False)
        if key is not None:
            self._memo[req.cell] = (key, engine, explanation.copy())
        return engine, explanation

    def explain(self, req: Request, requested: str) -> Explanation:
        """Why the call runs where it runs: every engine ahead of it in priority, and every engine a
        preference passed over, with the reason (decided afresh, not from the kept one-step choice)."""
        return self._decide(req, requested, full=True)[1]

    def _decide(self, req: Request, requested: str, full: bool) -> Tuple[Engine, Explanation]:
        explanation = Explanation(engine="", requested=requested, device=str(req.device), family=req.family)
        if requested != "auto":
            engine = self.get(requested)
            engine.prepare()
            reason = self.reason(engine, req)
            if reason is not None:
                raise EngineError(f"engine {requested!r} cannot run this {req.family} layer: {reason}")
            explanation.engine = requested
            return engine, explanation
        order = self.order(req)
        can: Dict[str, Optional[str]] = {}

        def cannot(name: str) -> Optional[str]:
            if name not in can:
                can[name] = self.reason(self._engines[name], req)
            return can[name]

        passed: List[Tuple[Optional[str], str, str, Preference]] = []  # (passed over, chosen, detail, row)
        choice = self._apply_policy(req, order, cannot, passed)
        if choice is None:
            explanation.rejected = [(name, cannot(name)) for name in order]
            raise EngineError("no engine can run this configuration:\n" + str(explanation))
        explanation.engine = choice
        ahead = order[:order.index(choice)]
        explanation.rejected = [(name, cannot(name)) for name in ahead
                                if (name in can or full) and cannot(name) is not None]
        said: Dict[str, str] = {}
        for loser, winner, detail, row in passed:
            if loser is not None and loser != choice and loser not in said:
                said[loser] = row.says(winner, loser, detail)
        if full:  # engines ahead that can run but were jumped: by the row that names them, else the last
            for name in ahead:
                if name not in said and cannot(name) is None and passed:
                    _, winner, detail, row = next((p for p in passed if name in p[3].over or ANY in p[3].over),
                                                  passed[-1])
                    said[name] = row.says(winner, name, detail)
        explanation.passed_over = [(name, said[name]) for name in order if name in said]
        return self._engines[choice], explanation

    def _apply_policy(self, req: Request, order: List[str], cannot: Callable[[str], Optional[str]],
                      passed: list) -> Optional[str]:
        """The first engine of ``order`` that can run the call, then each row once, in table order: a row
        over the current choice whose condition holds and whose preferred engine can run the call takes
        the choice. The first capable engine is looked for only when a row or the end needs it (a row
        over any engine does not), so that a call a row sends elsewhere asks no more engines than it must.
        None: no engine can run the call."""
        choice: Optional[str] = None
        found = False  # whether choice was set (by the walk or a row)

        def first_capable() -> Optional[str]:
            return next((name for name in order if cannot(name) is None), None)

        for row in self._policy:
            anywhere = ANY in row.over
            if not anywhere:
                if not found:
                    choice, found = first_capable(), True
                if choice not in row.over:
                    continue
            detail = row.condition(req)
            if detail is None:
                continue
            if row.prefer == NEXT:
                if not found:
                    choice, found = first_capable(), True
                if choice is None:
                    continue
                at = order.index(choice)
                winner = next((n for n in order[at + 1:] if cannot(n) is None), None)
            else:
                winner = row.prefer if row.prefer in self._engines and cannot(row.prefer) is None else None
            if winner is None or winner == choice:
                continue
            passed.append((choice, winner, detail, row))
            choice, found = winner, True
        return choice if found else first_capable()


REGISTRY = EngineRegistry()


def register_engine(engine: Engine, priority: Dict[str, int], one_step_memo: bool = True) -> None:
    REGISTRY.register(engine, priority, one_step_memo)


def _register_builtin() -> None:
    from .bptt import BPTTEngine
    from .cpp import CppEngine
    from .export import ExportEngine
    from .native import NativeEngine
    from .reference import ReferenceEngine

    REGISTRY.register(ReferenceEngine(), {"cpu": 99, "cuda": 99})
    REGISTRY.register(BPTTEngine(), {"cpu": 0, "cuda": 0})
    REGISTRY.register(NativeEngine(), {"cpu": 0, "cuda": 0})
    REGISTRY.register(CppEngine(), {"cpu": 1})
    # in no priority list: auto never picks it; the exporter (rnnkit.export) names it on every layer
    REGISTRY.register(ExportEngine(), {})
    from . import triton as triton_engines  # scan (torch) and the lazy Triton engines

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


_register_builtin()
