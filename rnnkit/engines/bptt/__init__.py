"""The bptt engine: backpropagation through time written out, one ``torch.autograd.Function`` per
cell family.

Forward keeps what the backward pass needs (gate activations, states); backward walks from T-1 to 0
carrying dh (and dc) from step t to t-1, and accumulates the parameter gradients. The input
projections of all steps are one matrix product (outside the Function, so autograd differentiates
it), and so are the recurrent weight gradients (one matmul over all steps after the loop).

Each family module provides::

    supports(cell, req) -> None or a reason
    run(cell, x, state0, job) -> DirectionResult
"""
from __future__ import annotations

from typing import Optional

from ..base import DirectionJob, DirectionResult, Engine, Request, family_module_loader

#: family -> module implementing it (filled as families land)
FAMILY_MODULES = {
    "lstm": "rnnkit.engines.bptt.lstm",
    "gru": "rnnkit.engines.bptt.gru",
    "elman": "rnnkit.engines.bptt.elman",
    "jordan": "rnnkit.engines.bptt.jordan",
    "indrnn": "rnnkit.engines.bptt.indrnn",
}


_family_module = family_module_loader(FAMILY_MODULES)


class BPTTEngine(Engine):
    name = "bptt"
    scope = "direction"

    def supports(self, req: Request) -> Optional[str]:
        mod = _family_module(req.family)
        if mod is None:
            return f"no explicit-BPTT implementation for the {req.family} cell"
        if req.probe_grads or req.record_gates:
            return "gradient probes and gate traces need the step-by-step reference engine"
        return mod.supports(req.cell, req)

    def run_direction(self, cell, x, state0, job: DirectionJob) -> DirectionResult:
        return _family_module(cell.family).run(cell, x, state0, job)
