"""The reference engine: the per-step autograd loop over the cell's step. The ground truth.

Every other engine is tested against this one; it supports every cell, regulariser and feature
(per-step states, gradient probes, gate traces) and runs on any device.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .base import DirectionJob, DirectionResult, Engine, Request, State


def zoneout_mix(old: State, new: State, z_t) -> State:
    """state' = z * old + (1 - z) * new, per component (Krueger et al. 2017)."""
    return tuple(n + z * (o - n) for o, n, z in zip(old, new, z_t))


def freeze_past_end(old: State, new: State, valid_t: Tensor) -> State:
    """Keep the old state where the step is past a sequence's end (valid_t: (B, 1) bool)."""
    return tuple(torch.where(valid_t, n, o) for o, n in zip(old, new))


class ReferenceEngine(Engine):
    name = "reference"
    scope = "direction"
    runs_cell_code = True

    def supports(self, req: Request) -> Optional[str]:
        return None

    def run_direction(self, cell, x: Tensor, state0: State, job: DirectionJob) -> DirectionResult:
        xp = cell.project_input(x)  # (T, B, G)
        ctx = cell.step_context(job.masks.dropconnect, job.masks.h_mask, job.trace)
        zone = job.masks.zoneout
        state = tuple(state0)
        hidden, per_step = [], []
        for t in range(x.shape[0]):
            new = cell.recur(xp[t], state, ctx)
            if zone is not None:
                new = zoneout_mix(state, new, [z[t] for z in zone])
            if job.probe is not None:
                new = (new[0] + job.probe[t],) + tuple(new[1:])
            if job.valid is not None:
                new = freeze_past_end(state, new, job.valid[t])
            state = new
            hidden.append(cell.hidden_of(state))
            if job.want_states:
                per_step.append(state)
        out = torch.stack(hidden)  # (T, B, S0)
        if job.valid is not None:
            out = out * job.valid
        states = None
        if job.want_states:
            states = tuple(torch.stack(comp) for comp in zip(*per_step))
            if job.valid is not None:
                states = tuple(s * job.valid for s in states)
        return DirectionResult(hidden=out, state=state, states=states)
