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

With a time budget (``max_time``) the cosine decay ends at the budget's last update instead
(:class:`BudgetCosine`): how many updates that is, is estimated from the measured update times
(:mod:`rnnkit.train.budget`).
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torch.optim import lr_scheduler

from rnnkit.config import ConfigError, TrainConfig
from rnnkit.train.budget import DecayProgress, cosine
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


def follows_budget(cfg: TrainConfig) -> bool:
    """Whether the learning rate decays to the end of the time budget (a cosine schedule with ``max_time``)."""
    return bool(cfg.max_time) and cfg.schedule == "cosine"


class BudgetCosine:
    """Linear warm-up (update k of ``warmup_steps`` at ``lr * k / warmup_steps``), then a cosine decay from
    each group's rate to ``min_lr`` whose progress follows the updates estimated to remain
    (:class:`~rnnkit.train.budget.DecayProgress`): it reaches ``min_lr`` at the last update."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig):
        self.optimizer, self.warmup, self.min_lr = optimizer, cfg.warmup_steps, cfg.min_lr
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.done = 0  # updates taken
        self.progress = DecayProgress()
        self._set(self._warm(1))

    def _warm(self, k: int) -> float | None:
        """The warm-up factor of update ``k`` (1-based), None after the warm-up."""
        return k / self.warmup if self.warmup > 1 and k <= self.warmup else None

    def _set(self, factor: float | None) -> None:
        decay = cosine(self.progress.p)
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * factor if factor is not None else self.min_lr + (base - self.min_lr) * decay

    def step(self, left: float) -> None:
        """After an update; ``left``: updates estimated to come, the next one included."""
        self.done += 1
        factor = self._warm(self.done + 1)
        if factor is None:
            self.progress.advance(left)
        self._set(factor)

    def state_dict(self) -> dict:
        return {"done": self.done, "base": self.base, **self.progress.state_dict()}

    def load_state_dict(self, sd: dict) -> None:
        self.done, self.base = int(sd["done"]), [float(b) for b in sd["base"]]
        self.progress.load_state_dict(sd)

    def adopt(self, per_step: dict) -> None:
        """Go on from a schedule that followed the step count (a run started without a time budget, or by an
        rnnkit from before budgets): the decay continues from the rate the optimiser has reached (restored
        before this), spread over the budget left."""
        self.done = int(per_step["last_epoch"])
        group = self.optimizer.param_groups[0]
        self.base = [float(g.get("initial_lr", g["lr"])) for g in self.optimizer.param_groups]
        if self._warm(self.done + 1) is None and self.base[0] > self.min_lr:
            share = (group["lr"] - self.min_lr) / (self.base[0] - self.min_lr)  # cosine(p), in [0, 1]
            self.progress.p = math.acos(min(max(2.0 * share - 1.0, -1.0), 1.0)) / math.pi


class Schedule:
    """Warm-up then the configured decay; ``step(left)`` per update, ``on_eval(metric)`` per evaluation."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
        self.kind = cfg.schedule
        self.plateau = None
        self.budget = BudgetCosine(optimizer, cfg) if follows_budget(cfg) else None
        if self.budget is not None:
            self.main = self.per_step = None
            return
        scheds, milestones = [], []
        if cfg.warmup_steps > 1:  # update k (1-based) of the warm-up runs at lr * k / warmup_steps
            scheds.append(lr_scheduler.LinearLR(optimizer, start_factor=1.0 / cfg.warmup_steps,
                                                end_factor=1.0, total_iters=cfg.warmup_steps - 1))
            milestones.append(cfg.warmup_steps - 1)
        # the decay starts at update max(warmup, 1) and reaches its end at the last update
        main = self._main(optimizer, cfg, self._decay_steps(cfg, total_steps))
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

    @staticmethod
    def _main(optimizer, cfg: TrainConfig, steps: int):
        if cfg.schedule == "step":
            return lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
        if cfg.schedule == "cosine":
            return lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=cfg.min_lr)
        if cfg.schedule == "slanted":
            return lr_scheduler.LambdaLR(optimizer, lambda t: slanted_factor(t, steps))
        return None

    def step(self, left: float = math.inf) -> None:
        """After an update; ``left``: updates estimated to come (read by the budget's decay only)."""
        if self.budget is not None:
            self.budget.step(left)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.per_step.step()

    def on_eval(self, metric: float) -> None:
        if self.plateau is not None:
            self.plateau.step(metric)

    def state_dict(self) -> dict:
        if self.budget is not None:
            return {"budget": self.budget.state_dict(), "plateau": None}
        return {"per_step": self.per_step.state_dict(),
                "plateau": self.plateau.state_dict() if self.plateau else None}

    def load_state_dict(self, sd: dict) -> None:
        if self.budget is not None and "budget" not in sd:
            self.budget.adopt(sd["per_step"])
            return
        if self.budget is None and "budget" in sd:
            raise ConfigError("this run was started with --max-time: its cosine decay ends at the time budget; "
                              "resume it with a --max-time (the total budget, as long or longer)")
        if self.budget is not None:
            self.budget.load_state_dict(sd["budget"])
            return
        self.per_step.load_state_dict(sd["per_step"])
        if self.plateau is not None:
            self.plateau.load_state_dict(sd["plateau"])


def slanted_factor(t: int, total: int, cut_frac: float = SLANT_CUT, ratio: float = SLANT_RATIO) -> float:
    """Slanted triangular learning rate at update ``t`` of ``total``, as a factor of the peak (Howard & Ruder
    2018, eq. 3): ``1 / ratio`` at the start, 1 after ``cut_frac * total`` updates, ``1 / ratio`` at the end."""
    cut = max(1, int(total * cut_frac))
    p = t / cut if t < cut else 1.0 - (t - cut) / max(1, total - cut)
    return (1.0 + max(p, 0.0) * (ratio - 1.0)) / ratio
