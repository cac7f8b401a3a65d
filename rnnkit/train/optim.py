"""Optimisers and learning-rate schedules from :class:`~rnnkit.config.TrainConfig`.

Optimisers come from ``torch.optim`` (SGD with momentum / Nesterov, RMSprop,
Adam, AdamW).  Weight decay is not applied to biases, norms and embeddings of
size-1 dims (parameters with ``dim() < 2``).  A model with ``layer_groups()`` gets one learning rate
per group (``layer_lr_decay``, :mod:`rnnkit.train.layer_groups`).

:class:`Schedule` combines a linear warm-up (per update) with one of:
``constant``, ``step`` (x gamma every ``step_size`` updates), ``cosine``
(down to ``min_lr`` at the last update), ``plateau`` (x gamma when the
monitored validation metric stalls for ``plateau_patience`` evaluations) or
``slanted`` (ULMFiT's slanted triangular rates: a linear rise over the first
:data:`SLANT_CUT` of the updates, then a linear fall to ``lr / SLANT_RATIO``;
it is its own warm-up, so ``warmup_steps`` must be 0).

With a time budget (``max_time``) the cosine decay follows the budget: its progress is the larger
of the share of updates done and the share of the budget's seconds spent (:class:`BudgetCosine`),
so the learning rate reaches ``min_lr`` when the time runs out, however fast the machine is.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Optional

import torch
from torch import nn
from torch.optim import lr_scheduler

from rnnkit.config import TrainConfig
from rnnkit.train.layer_groups import optimizer_groups

SLANT_CUT = 0.1     # slanted triangular rates: share of the updates spent rising (Howard & Ruder 2018)
SLANT_RATIO = 32.0  # ... and how much smaller the lowest rate is than the peak


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if hasattr(model, "layer_groups"):  # frozen parameters included: gradual unfreezing opens them later
        groups = optimizer_groups(model, cfg.lr, cfg.layer_lr_decay, cfg.weight_decay)
    else:
        groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=(0.9, cfg.beta2))
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.beta2))
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


class BudgetCosine:
    """Cosine factor of the base learning rate whose progress is ``max(step / steps, seconds() / budget)``.

    ``seconds``: training seconds spent so far (the trainer's clock); ``floor``: ``min_lr / lr``.
    :class:`~torch.optim.lr_scheduler.LambdaLR` gets it wrapped in a function, which it does not try to
    save: everything here follows from the config, the update count and the clock.
    """

    def __init__(self, steps: int, budget: float, seconds: Callable[[], float], floor: float = 0.0):
        self.steps, self.budget, self.floor = max(1, steps), budget, floor
        self.seconds = seconds

    def progress(self, step: int) -> float:
        return min(1.0, max(step / self.steps, self.seconds() / self.budget))

    def __call__(self, step: int) -> float:
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * self.progress(step)))


class Schedule:
    """Warm-up then the configured decay; ``step()`` per update, ``on_eval(metric)`` per evaluation.

    ``seconds``: the training clock; with ``cfg.max_time`` and the cosine schedule the decay follows
    it (:class:`BudgetCosine`), else the update count alone.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int,
                 seconds: Optional[Callable[[], float]] = None):
        self.kind = cfg.schedule
        self.budget_decay: Optional[BudgetCosine] = None
        self.plateau = None
        scheds, milestones = [], []
        if cfg.warmup_steps > 1:  # update k (1-based) of the warm-up runs at lr * k / warmup_steps
            scheds.append(lr_scheduler.LinearLR(optimizer, start_factor=1.0 / cfg.warmup_steps,
                                                end_factor=1.0, total_iters=cfg.warmup_steps - 1))
            milestones.append(cfg.warmup_steps - 1)
        # the decay starts at update max(warmup, 1) and reaches its end at the last update
        steps = self._decay_steps(cfg, total_steps)
        if cfg.schedule == "cosine" and cfg.max_time and seconds is not None:
            self.budget_decay = BudgetCosine(steps, cfg.max_time, seconds, cfg.min_lr / cfg.lr)
            main = lr_scheduler.LambdaLR(optimizer, lambda step: self.budget_decay(step))
        else:
            main = self._main(optimizer, cfg, steps)
        self.main, self.warmup = main, cfg.warmup_steps
        if main is not None:
            scheds.append(main)
        elif not scheds:
            scheds.append(lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0))
        if len(scheds) == 1:
            self.per_step = scheds[0]
        else:
            if main is None:
                scheds.append(lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # SequentialLR's epoch deprecation note
                self.per_step = lr_scheduler.SequentialLR(optimizer, scheds, milestones=milestones)
        if cfg.schedule == "plateau":
            self.plateau = lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=cfg.monitor_mode, factor=cfg.gamma,
                patience=cfg.plateau_patience, min_lr=cfg.min_lr)

    @staticmethod
    def _decay_steps(cfg: TrainConfig, total_steps: int) -> int:
        return max(1, total_steps - max(cfg.warmup_steps, 1))

    def retarget(self, cfg: TrainConfig, total_steps: int) -> None:
        """A resumed run with more (or fewer) epochs: the cosine decay now ends at the new last update."""
        if isinstance(self.main, lr_scheduler.CosineAnnealingLR):
            self.main.T_max = self._decay_steps(cfg, total_steps)
        elif self.budget_decay is not None:
            self.budget_decay.steps = self._decay_steps(cfg, total_steps)

    @staticmethod
    def _main(optimizer, cfg: TrainConfig, steps: int):
        if cfg.schedule == "step":
            return lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
        if cfg.schedule == "cosine":
            return lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=cfg.min_lr)
        if cfg.schedule == "slanted":
            return lr_scheduler.LambdaLR(optimizer, lambda t: slanted_factor(t, steps))
        return None


    def step(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.per_step.step()

    def on_eval(self, metric: float) -> None:
        if self.plateau is not None:
            self.plateau.step(metric)

    def state_dict(self) -> dict:
        return {"per_step": self.per_step.state_dict(),
                "plateau": self.plateau.state_dict() if self.plateau else None}

    def load_state_dict(self, sd: dict) -> None:
        self.per_step.load_state_dict(sd["per_step"])
        if self.plateau is not None:
            self.plateau.load_state_dict(sd["plateau"])


def slanted_factor(t: int, total: int, cut_frac: float = SLANT_CUT, ratio: float = SLANT_RATIO) -> float:
    """Slanted triangular learning rate at update ``t`` of ``total``, as a factor of the peak (Howard & Ruder
    2018, eq. 3): ``1 / ratio`` at the start, 1 after ``cut_frac * total`` updates, ``1 / ratio`` at the end."""
    cut = max(1, int(total * cut_frac))
    p = t / cut if t < cut else 1.0 - (t - cut) / max(1, total - cut)
    return (1.0 + max(p, 0.0) * (ratio - 1.0)) / ratio
