"""Layer groups: discriminative learning rates and gradual unfreezing (Howard & Ruder 2018, ULMFiT).

A model may define ``layer_groups() -> list[list[nn.Parameter]]``, its parameters cut into groups from
the input side (group 0: the embedding) to the output side (the last group: the classifier head). The
trainer then

* gives group ``i`` of ``n`` the learning rate ``lr / decay ** (n - 1 - i)`` (``TrainConfig.layer_lr_decay``;
  ULMFiT's 2.6): the top learns fastest, the pretrained bottom is changed least;
* with ``TrainConfig.unfreeze = "gradual"`` trains only the top group in the first epoch, the top two in
  the second, and so on (:class:`GradualUnfreezing`), so a new head does not wreck pretrained features
  before it has learnt anything.

A model without ``layer_groups`` is one group: both settings then stop with an error, not silently.
"""
from __future__ import annotations

from torch import nn

from rnnkit.config import ConfigError


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The model's parameter groups, input side first; one group when it defines none.

    Every parameter of the model must be in exactly one group (checked: a forgotten parameter would
    silently never train)."""
    if not hasattr(model, "layer_groups"):
        return [list(model.parameters())]
    groups = [list(g) for g in model.layer_groups()]
    seen: dict[int, int] = {}
    for i, group in enumerate(groups):
        for p in group:
            if id(p) in seen:
                raise ValueError(f"{type(model).__name__}.layer_groups(): a parameter is in groups {seen[id(p)]} "
                                 f"and {i}")
            seen[id(p)] = i
    missing = [name for name, p in model.named_parameters() if id(p) not in seen]
    if missing:
        raise ValueError(f"{type(model).__name__}.layer_groups() leaves out {', '.join(missing)}")
    return groups


def check_layer_settings(model: nn.Module, layer_lr_decay: float, unfreeze: str) -> None:
    """Discriminative rates and gradual unfreezing need a model with layer groups: say so, never ignore."""
    if (layer_lr_decay != 1.0 or unfreeze != "all") and not hasattr(model, "layer_groups"):
        raise ConfigError(f"layer_lr_decay={layer_lr_decay} / unfreeze={unfreeze!r} need a model with layer "
                          f"groups; {type(model).__name__} has none (use --layer-lr-decay 1 --unfreeze all)")


def group_lrs(n_groups: int, lr: float, decay: float) -> list[float]:
    """Learning rate of each group, input side first: the top group gets ``lr``, each one below / ``decay``."""
    return [lr / decay ** (n_groups - 1 - i) for i in range(n_groups)]


def optimizer_groups(model: nn.Module, lr: float, decay: float, weight_decay: float) -> list[dict]:
    """torch.optim parameter groups: per layer group, its learning rate; weight decay only on matrices
    (``dim() >= 2``: not on biases and norms). Each group records its ``layer`` index."""
    groups = layer_groups(model)
    out = []
    for i, (params, group_lr) in enumerate(zip(groups, group_lrs(len(groups), lr, decay))):
        decayed = [p for p in params if p.dim() >= 2]
        plain = [p for p in params if p.dim() < 2]
        out += [{"params": decayed, "weight_decay": weight_decay, "lr": group_lr, "layer": i},
                {"params": plain, "weight_decay": 0.0, "lr": group_lr, "layer": i}]
    return out


class GradualUnfreezing:
    """Epoch ``e`` (0-based) trains the top ``e + 1`` layer groups; the ones below have ``requires_grad``
    off, so they get no gradient and the optimiser leaves them (and their weight decay) alone."""

    def __init__(self, model: nn.Module):
        self.groups = layer_groups(model)
        self.trainable = [[p.requires_grad for p in g] for g in self.groups]  # what "unfrozen" restores

    def set_epoch(self, epoch: int) -> int:
        """Freeze / unfreeze for ``epoch``; returns how many groups (from the top) train."""
        n = len(self.groups)
        open_from = max(0, n - 1 - epoch)  # groups open_from .. n-1 train
        for i, (group, flags) in enumerate(zip(self.groups, self.trainable)):
            for p, trainable in zip(group, flags):
                p.requires_grad_(trainable and i >= open_from)
        return n - open_from
