"""The export engine: the reference engine's step loop written with torch's ``scan`` operator.

The reference engine loops in Python (``for t in range(T)``): ``torch.export`` and the ONNX exporters
unroll such a loop into T copies of the step, so the graph only takes sequences of the traced length.
This engine runs the same cell methods (``project_input``, ``step_context``, ``recur``,
``hidden_of``; it runs a cell's own code, like the reference engine) inside
``torch._higher_order_ops.scan``, which ``torch.export`` keeps as one loop over a symbolic length
and ``torch.onnx.export(..., dynamo=True)`` writes as one ONNX ``Scan`` node: the exported graph takes
any batch and any sequence length. A call whose length is fixed at one step (a generation step graph)
runs the step once, without a loop.

It serves evaluation-mode calls only (an exported model does not train): no dropout masks, per-step
states, gradient probes or gate traces. ``auto`` never picks it (it is registered after the
reference engine); the exporter pins it by name on every layer of the model it exports
(``rnnkit.export``). Eagerly it computes exactly what the reference engine computes (tested).
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from .base import DirectionJob, DirectionResult, Engine, Request, State
from .reference import freeze_past_end


def _scan():
    """torch's scan operator (a private module in torch 2.x; imported when a call needs it)."""
    from torch._higher_order_ops.scan import scan

    return scan


class ExportEngine(Engine):
    name = "export"
    scope = "direction"
    runs_cell_code = True

    def supports(self, req: Request) -> Optional[str]:
        reg = req.regularization
        if req.training and any(vars(reg).values()):
            return ("exports evaluation-mode layers only; this layer is in training mode with regularisation "
                    "on (call model.eval() first)")
        if req.all_states:
            return "does not return per-step states (all_states)"
        if req.probe_grads:
            return "does not record gradient probes"
        if req.record_gates:
            return "does not record gate traces"
        return None

    def run_direction(self, cell, x: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
        if job.masks.dropconnect is not None or job.masks.h_mask is not None or job.masks.zoneout is not None:
            raise ValueError("the export engine runs evaluation-mode layers only (no dropout masks)")
        xp = cell.project_input(x)  # (T, B, G)
        ctx = cell.step_context()
        valid = job.valid           # (T, B, 1) bool, or None when every sequence fills T

        def step(state, inputs):
            new = cell.recur(inputs[0], tuple(state), ctx)
            if valid is not None:
                new = freeze_past_end(tuple(state), new, inputs[1])
            # scan's outputs may not alias its carried state: the emitted hidden is a copy
            return list(new), cell.hidden_of(new).clone()

        if isinstance(x.shape[0], int) and x.shape[0] == 1:
            # a fixed single step (a generation step graph): no loop to write, one step of the same maths
            final, h = step(list(state0), [t[0] for t in ([xp] if valid is None else [xp, valid])])
            hidden = h.unsqueeze(0)                          # (1, B, S0)
        else:
            inputs = [xp] if valid is None else [xp, valid]
            final, hidden = _scan()(step, list(state0), inputs)  # hidden: (T, B, S0)
        if valid is not None:
            hidden = hidden * valid
        return DirectionResult(hidden=hidden, state=tuple(final))
