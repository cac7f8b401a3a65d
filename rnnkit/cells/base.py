"""The cell contract: the equations of one time step, the state it carries, its initialisation.

A cell never loops over time. The layer (``rnnkit.Recurrent``) owns the time loop through an
engine; the engine calls, for a whole sequence ``x`` of shape ``(T, B, I)``::

    xp = cell.project_input(x)            # (T, B, G)  all input projections in one matmul
    ctx = cell.step_context(masks)        # weights with DropConnect applied, dropout masks
    for t in range(T):
        state = cell.recur(xp[t], state, ctx)      # tuple of (B, S_k)
        out_t = cell.hidden_of(state)              # (B, H) what the step emits
    y = cell.readout(stack(out_t))       # (T, B, O) optional per-step output layer

``cell.step(x_t, state)`` is the same maths for one step (generation, tests).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

State = Tuple[Tensor, ...]

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}

Activation = Union[str, Callable[[Tensor], Tensor]]


def resolve_activation(act: Activation, argument: str = "activation") -> Callable[[Tensor], Tensor]:
    """Map an activation name (tanh, relu, sigmoid, identity) or a callable to a function."""
    if callable(act):
        return act
    if isinstance(act, str) and act in _ACTIVATIONS:
        return _ACTIVATIONS[act]
    raise ValueError(f"{argument} must be one of {sorted(_ACTIVATIONS)} or a callable, got {act!r}")


def activation_name(act: Activation) -> Optional[str]:
    """The registered name of an activation, or None for a user callable (engines need names)."""
    return act if isinstance(act, str) else None


def check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_probability(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= float(value) < 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")


@dataclass
class CellConfig:
    """Options every cell shares. Families subclass this with their own fields."""

    input_size: int
    hidden_size: int
    bias: bool = True
    learn_initial_state: bool = False

    def __post_init__(self) -> None:
        check_positive("input_size", self.input_size)
        check_positive("hidden_size", self.hidden_size)


@dataclass
class OutputLayerConfig(CellConfig):
    """Options of cells with an activation and a per-step output layer y = out_act(W_yh h + b_y)
    (Elman, Jordan)."""

    activation: Activation = "tanh"
    #: size of the output layer; 0 = no output layer (Elman) or the hidden size (Jordan)
    output_size: int = 0
    out_activation: Activation = "identity"

    def __post_init__(self) -> None:
        super().__post_init__()
        resolve_activation(self.activation, "activation")
        resolve_activation(self.out_activation, "out_activation")
        if self.output_size:
            check_positive("output_size", self.output_size)


@dataclass
class StepContext:
    """What stays fixed over one sequence: effective recurrent weights and dropout masks.

    ``weights`` maps parameter names to the tensors the step must use (DropConnect already applied).
    ``h_mask`` is the variational recurrent-dropout mask on the state entering the recurrent matmul
    (B, S0), already scaled by 1/(1-p). ``trace``: when not None, cells append their gate activations.
    """

    weights: dict = field(default_factory=dict)
    h_mask: Optional[Tensor] = None
    trace: Optional[list] = None


class Cell(nn.Module):
    """Base class of every recurrent cell. Subclasses set ``family`` and implement the maths."""

    family: str = "cell"
    config_class = CellConfig
    #: parameter name of the recurrent weight DropConnect applies to (None: not applicable)
    recurrent_weight_name: Optional[str] = "weight_hh"
    #: names of the state components, for messages and per-step state dictionaries
    state_names: Tuple[str, ...] = ("h",)

    def __init__(self, config: CellConfig):
        super().__init__()
        self.config = config
        self.input_size = config.input_size
        self.hidden_size = config.hidden_size

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_options(cls, input_size: int, hidden_size: int, **options) -> "Cell":
        return cls(cls.config_class(input_size=input_size, hidden_size=hidden_size, **options))

    def clone(self, input_size: Optional[int] = None) -> "Cell":
        """A freshly initialised cell of the same configuration (for deeper layers, reverse direction)."""
        from dataclasses import replace

        cfg = replace(self.config, input_size=input_size or self.config.input_size)
        return type(self)(cfg)

    def _parameter(self, name: str, *shape: int, present: bool = True) -> None:
        """Register an uninitialised parameter of this shape, or None when the option is off."""
        if present:
            setattr(self, name, nn.Parameter(torch.empty(*shape)))
        else:
            self.register_parameter(name, None)

    def reset_parameters(self) -> None:
        """torch.nn's U(-1/sqrt(H), 1/sqrt(H)) for weights and biases; layer-norm gains 1 and
        shifts 0; learned initial states 0. Families add their own offsets (forget-gate bias)."""
        uniform_init_([p for n, p in self.named_parameters()
                       if not n.startswith(("initial_states", "ln_"))], self.hidden_size)
        with torch.no_grad():
            for n, p in self.named_parameters():
                if n.startswith("ln_"):
                    p.fill_(1.0 if n.endswith("weight") else 0.0)

    def _init_initial_state(self) -> None:
        if self.config.learn_initial_state:
            self.initial_states = nn.ParameterList(
                [nn.Parameter(torch.zeros(s)) for s in self.state_sizes]
            )
        else:
            self.initial_states = None

    # -- sizes ------------------------------------------------------------------------
    @property
    def state_sizes(self) -> Tuple[int, ...]:
        """Sizes of the state components, e.g. (H,) for GRU, (P, H) for LSTM (h, c)."""
        raise NotImplementedError

    @property
    def output_size(self) -> int:
        """Size of what the cell emits per step (after ``readout``)."""
        return self.state_sizes[0]

    # -- state --------------------------------------------------------------------------
    def initial_state(self, batch: int, device=None, dtype=None) -> State:
        """Zeros, or the learned initial state broadcast over the batch."""
        if self.initial_states is not None:
            return tuple(p.to(dtype=dtype).unsqueeze(0).expand(batch, -1) for p in self.initial_states)
        return tuple(torch.zeros(batch, s, device=device, dtype=dtype) for s in self.state_sizes)

    # -- the maths ------------------------------------------------------------------------
    def project_input(self, x: Tensor) -> Tensor:
        """Input projection of every step at once: (..., I) -> (..., G)."""
        raise NotImplementedError

    def step_context(self, dropconnect_mask: Optional[Tensor] = None,
                     h_mask: Optional[Tensor] = None, trace: Optional[list] = None) -> StepContext:
        """Weights used by ``recur`` over one sequence; DropConnect mask (already scaled) applied."""
        weights = {}
        name = self.recurrent_weight_name
        if name is not None:
            w = getattr(self, name)
            weights[name] = w * dropconnect_mask if dropconnect_mask is not None else w
        elif dropconnect_mask is not None:
            raise ValueError(f"DropConnect is not defined for the {self.family} cell")
        return StepContext(weights=weights, h_mask=h_mask, trace=trace)

    def recur(self, xp_t: Tensor, state: State, ctx: StepContext) -> State:
        """One step given the projected input xp_t (B, G) and the state; returns the new state."""
        raise NotImplementedError

    def hidden_of(self, state: State) -> Tensor:
        """What one step emits (before ``readout``): the first state component by default."""
        return state[0]

    def readout(self, hidden_seq: Tensor) -> Tensor:
        """Optional per-step output layer applied to all steps at once; identity by default."""
        return hidden_seq

    def step(self, x_t: Tensor, state: Optional[State] = None) -> Tuple[Tensor, State]:
        """One time step from the raw input x_t (B, I): returns (output_t, new_state)."""
        if state is None:
            state = self.initial_state(x_t.shape[0], x_t.device, x_t.dtype)
        new_state = self.recur(self.project_input(x_t), tuple(state), self.step_context())
        return self.readout(self.hidden_of(new_state)), new_state

    def forward(self, x_t: Tensor, state: Optional[State] = None) -> Tuple[Tensor, State]:
        return self.step(x_t, state)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in vars(self.config).items() if not k.startswith("_"))


def uniform_init_(params: Sequence[Tensor], hidden_size: int) -> None:
    """torch.nn's RNN initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in params:
            p.uniform_(-bound, bound)


#: epsilon of every cell's layer normalisation (engines that write LN out use the same)
LAYER_NORM_EPS = 1e-5

#: the methods that hold a cell's maths; fast engines implement a family's own versions of them
MATHS_METHODS = ("project_input", "step_context", "recur", "hidden_of", "readout")


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = LAYER_NORM_EPS) -> Tensor:
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def family_class(cell: "Cell") -> type:
    """The class that defines the cell's family (LSTMCell for a user's LSTMCell subclass)."""
    for klass in type(cell).__mro__:
        if "family" in vars(klass):
            return klass
    return Cell


def overridden_maths(cell: "Cell") -> Optional[str]:
    """A reason when a subclass replaces its family's equations (only the reference engine then
    runs the cell's own code), else None."""
    base = family_class(cell)
    for name in MATHS_METHODS:
        if getattr(type(cell), name) is not getattr(base, name):
            return (f"{type(cell).__name__} overrides {base.__name__}.{name}; this engine implements "
                    f"the {base.family} equations, only the reference engine runs a cell's own code")
    return None
