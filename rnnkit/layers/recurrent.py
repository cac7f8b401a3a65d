"""``rnnkit.Recurrent``: the time loop for any cell: stacking, bidirectionality, lengths, packed
input, regularisers, initial states; it asks the engine registry which engine runs the call."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..cells.base import Cell
from ..engines.base import DirectionJob, EngineError, Request, autocast_enabled, cpu_autocast_dtype
from ..engines.registry import REGISTRY, Explanation
from .regularizers import Regularization, locked_dropout, sample_direction_masks
from .sequence import finish_output, prepare_input, reverse_padded, valid_mask
from .state import join_state, split_state


@dataclass
class SequenceResult:
    """What ``Recurrent.run`` returns.

    output: like torch's output (T, B, D*O) or batch-first, or a PackedSequence.
    state: the final state in torch's layout (tensor, or tuple for LSTM).
    states: with all_states, for each layer*direction (index layer*D + d), a dict
        component name -> per-step state (T, B, S) (batch-first if the layer is), in input time order.
    probes: with probe_grads, per layer*direction a zero tensor (T, B, S0) added to h_t inside the
        loop; after backward, ``probe.grad[t]`` is dLoss/dh_t (time-major, input time order).
    gates: with record_gates, per layer*direction a dict gate name -> (T, B, H) activations.
    engine: the name of the engine that ran.
    """

    output: object
    state: object
    states: Optional[List[dict]] = None
    probes: Optional[List[Tensor]] = None
    gates: Optional[List[dict]] = None
    engine: str = ""


class Recurrent(nn.Module):
    """A stacked, optionally bidirectional recurrent layer over any ``rnnkit.cells`` cell.

    ``cell`` is the first layer's forward cell; the other layers and the reverse direction get fresh
    cells of the same configuration (``cell.clone``), with input size D*output_size past layer 0.
    """

    def __init__(self, cell: Cell, num_layers: int = 1, *, bidirectional: bool = False,
                 batch_first: bool = False, dropout: float = 0.0, variational_dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, dropconnect: float = 0.0, zoneout: float = 0.0,
                 engine: str = "auto"):
        super().__init__()
        if not isinstance(cell, Cell):
            raise ValueError(f"cell must be an rnnkit.cells.Cell, got {type(cell).__name__}")
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
            raise ValueError(f"num_layers must be an integer >= 1, got {num_layers!r}")
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.batch_first = bool(batch_first)
        self.regularization = Regularization(dropout, variational_dropout, recurrent_dropout,
                                             dropconnect, zoneout)
        if engine != "auto":
            REGISTRY.get(engine)  # unknown names fail here, at construction
        self.engine = engine
        D = self.num_directions
        cells = []
        for k in range(num_layers):
            for d in range(D):
                if k == 0 and d == 0:
                    cells.append(cell)
                else:
                    cells.append(cell.clone(input_size=cell.input_size if k == 0 else D * cell.output_size))
        self.cells = nn.ModuleList(cells)

    # -- description ----------------------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def first_cell(self) -> Cell:
        """cells[0], the first layer's forward cell (without ModuleList's index arithmetic: this runs on
        every call, and at one time step a call is a few hundred microseconds)."""
        return next(iter(self._modules["cells"]._modules.values()))

    def _cell_list(self) -> List[Cell]:
        """The cells in order, as a list (without ModuleList's per-index arithmetic, for the per-call path)."""
        return list(self._modules["cells"]._modules.values())

    @property
    def family(self) -> str:
        return self.first_cell.family

    @property
    def input_size(self) -> int:
        return self.first_cell.input_size

    @property
    def hidden_size(self) -> int:
        return self.first_cell.hidden_size

    @property
    def output_size(self) -> int:
        return self.num_directions * self.first_cell.output_size

    @property
    def dropout(self) -> float:
        return self.regularization.dropout

    def extra_repr(self) -> str:
        parts = [f"num_layers={self.num_layers}"]
        if self.bidirectional:
            parts.append("bidirectional=True")
        if self.batch_first:
            parts.append("batch_first=True")
        parts += [f"{k}={v}" for k, v in vars(self.regularization).items() if v]
        if self.engine != "auto":
            parts.append(f"engine={self.engine!r}")
        return ", ".join(parts)

    # -- API ----------------------------------------------------------------------------
    def forward(self, input, hx=None, *, lengths=None):
        """(output, final_state) as torch.nn's recurrent layers return them."""
        result = self.run(input, hx, lengths=lengths)
        return result.output, result.state

    def explain(self, input, hx=None, *, lengths=None, all_states: bool = False,
                probe_grads: bool = False, record_gates: bool = False) -> Explanation:
        """Which engine would run this call and, for each engine ahead of it, why not that one: it cannot
        run the call, or a measured preference (``rnnkit.engines.policy``) chose another."""
        prep = prepare_input(input, lengths, self.batch_first, self.input_size)
        req = self._request(prep, all_states, probe_grads, record_gates)
        return REGISTRY.explain(req, self.engine)

    def run(self, input, hx=None, *, lengths=None, all_states: bool = False, probe_grads: bool = False,
            record_gates: bool = False) -> SequenceResult:
        prep = prepare_input(input, lengths, self.batch_first, self.input_size)
        autocast = autocast_enabled(prep.x.device.type)
        # the engines that honour it run their whole-sequence products in CPU autocast's precision
        products = cpu_autocast_dtype() if autocast and prep.x.device.type == "cpu" else None
        if autocast:  # compute in the parameters' dtype; torch's autocast casts inside native ops
            prep.x = prep.x.to(self._parameter_dtype(prep.x.dtype))
        x = prep.x
        state0 = self._initial_state(hx, x, prep.unbatched, cast=autocast)
        req = self._request(prep, all_states, probe_grads, record_gates)
        engine, _ = REGISTRY.choose(req, self.engine)
        result = SequenceResult(output=None, state=None, engine=engine.name)
        if engine.scope == "stack":
            masks = [sample_direction_masks(c, self.regularization, x.shape[1], x.shape[0], self.training,
                                            x.device, x.dtype) for c in self.cells]
            out, final = engine.run_stack(req, x, state0, prep.lengths, masks)
        else:
            # rnnkit's own engines run one dtype end to end: autocast stays off inside them
            with torch.autocast(x.device.type, enabled=False) if autocast else contextlib.nullcontext():
                out, final = self._run_directions(engine, x, state0, prep.lengths, req, result, products)
        result.output = finish_output(out, prep, self.batch_first)
        result.state = join_state(final, prep.unbatched)
        return result

    # -- internals ------------------------------------------------------------------------
    def _request(self, prep, all_states, probe_grads, record_gates) -> Request:
        x = prep.x
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        return self.request(x.device, x.dtype, steps=x.shape[0], batch=x.shape[1],
                            has_lengths=prep.lengths is not None, all_states=all_states, probe_grads=probe_grads,
                            record_gates=record_gates, needs_grad=needs_grad)

    def request(self, device, dtype: torch.dtype, **call) -> Request:
        """The engine request for a call of this layer on ``device``/``dtype``: its cells, regularisation,
        stacking and mode; ``call`` sets the call's fields (steps, batch, has_lengths, needs_grad...)."""
        return Request(cells=tuple(self._cell_list()), regularization=self.regularization,
                       device=torch.device(device), dtype=dtype, num_layers=self.num_layers,
                       bidirectional=self.bidirectional, training=self.training, **call)

    def _parameter_dtype(self, default: torch.dtype) -> torch.dtype:
        for p in self.parameters():
            if p.is_floating_point():
                return p.dtype
        return default

    def _initial_state(self, hx, x: Tensor, unbatched: bool, cast: bool = False) -> List[Tuple[Tensor, ...]]:
        B = x.shape[1]
        if hx is None:
            return [tuple(s.to(x.dtype) for s in c.initial_state(B, x.device, x.dtype)) for c in self._cell_list()]
        cell = self.first_cell
        names = tuple(f"{n}_0" for n in cell.state_names)
        states = split_state(hx, names, cell.state_sizes, len(self.cells), B, unbatched)
        if cast:  # under autocast a state may come back in the lower precision: accept it as torch does
            states = [tuple(c.to(x.dtype) if c.is_floating_point() else c for c in s) for s in states]
        for name, comp in zip(names, states[0]):
            if comp.dtype != x.dtype or comp.device != x.device:
                raise ValueError(f"hx {name} must have the input's dtype and device ({x.dtype}, {x.device}), "
                                 f"got ({comp.dtype}, {comp.device})")
        return states

    def _run_directions(self, engine, x: Tensor, state0, lengths, req: Request, result: SequenceResult,
                        products: Optional[torch.dtype] = None):
        T, B = x.shape[0], x.shape[1]
        D, reg = self.num_directions, self.regularization
        valid = valid_mask(lengths, T, x.device, x.dtype)
        finals, states, probes, gates = [], [], [], []
        layer_input = x
        cells = self._cell_list()
        for k in range(self.num_layers):
            if k > 0 and reg.dropout and self.training:
                layer_input = nn.functional.dropout(layer_input, reg.dropout, True)
            layer_input = locked_dropout(layer_input, reg.variational_dropout, self.training)
            outs = []
            for d in range(D):
                i = k * D + d
                cell = cells[i]
                job = DirectionJob(valid=valid, want_states=req.all_states, products=products,
                                   masks=sample_direction_masks(cell, reg, B, T, self.training, x.device, x.dtype))
                if req.probe_grads:
                    probe = torch.zeros(T, B, cell.state_sizes[0], device=x.device, dtype=x.dtype,
                                        requires_grad=True)
                    probes.append(probe)
                    job.probe = probe if d == 0 else reverse_padded(probe, lengths)
                if req.record_gates:
                    job.trace = []
                xin = layer_input if d == 0 else reverse_padded(layer_input, lengths)
                res = engine.run_direction(cell, xin, state0[i], job)
                out = cell.readout(res.hidden)  # (T, B, O)
                if valid is not None and out is not res.hidden:
                    out = out * valid
                if d == 1:
                    out = reverse_padded(out, lengths)
                outs.append(out)
                finals.append(tuple(res.state))
                if req.all_states:
                    per = res.states if d == 0 else tuple(reverse_padded(s, lengths) for s in res.states)
                    states.append({n: (s.transpose(0, 1) if self.batch_first else s)
                                   for n, s in zip(cell.state_names, per)})
                if req.record_gates:
                    g = {n: torch.stack([step[n] for step in job.trace]) for n in job.trace[0]} if job.trace else {}
                    if d == 1:
                        g = {n: reverse_padded(v, lengths) for n, v in g.items()}
                    gates.append(g)
            layer_input = outs[0] if D == 1 else torch.cat(outs, dim=-1)
        if req.all_states:
            result.states = states
        if req.probe_grads:
            result.probes = probes
        if req.record_gates:
            result.gates = gates
        return layer_input, finals


def check_engine_ran(result: SequenceResult, name: str) -> None:
    """Raise if the call did not run on the named engine (for tests and benchmarks)."""
    if result.engine != name:
        raise EngineError(f"expected engine {name!r}, but {result.engine!r} ran")
