"""One training loop for every rnnkit task.

Contract for task models
------------------------
* A task model is an ``nn.Module`` whose ``forward(batch)`` returns an object
  with ``.loss`` (a scalar mean over ``.n`` items, when targets are present),
  ``.logits`` and ``.n`` (how many items - tokens, sequences - the loss
  averages over; used to weight means).  :class:`ModelOutput` is such an
  object.
* A stateful model (truncated BPTT) sets ``stateful = True`` and has
  ``forward(chunk, state) -> out`` with ``out.state`` (the recurrent state at
  the chunk's end, torch layout ``(layers*dirs, B, H)`` or a tuple of those).
  The trainer carries, detaches and resets it (:mod:`rnnkit.train.tbptt`).
* Optional: ``diagnostic_pass(batch, last_step_only=False) -> (loss,
  SequenceResult)`` running the recurrent layer with ``probe_grads=True,
  record_gates=True`` (the loss of the last step only when asked); enables
  ``TrainConfig.diagnose`` and ``rnnkit diagnose`` (:mod:`rnnkit.train.diagnostics`).

Usage::

    trainer = Trainer(model, TrainConfig(epochs=5, lr=1e-3), run_dir="runs/x",
                      meter=MyMeter, run_config=to_dict(full_config), metadata={...})
    result = trainer.fit(train_data, val_data)           # or fit(..., resume=True)
    metrics = trainer.evaluate(val_data)                 # {"loss": ..., ...}

``train_data`` / ``val_data``: a list of batches, or any object with
``__len__`` and ``iter_epoch(epoch, start)`` (:mod:`rnnkit.train.data`).
``meter`` is a factory of objects with ``update(out, batch)`` and
``compute() -> dict``; the trainer prefixes its keys with ``val_``.
``callbacks``: objects with any of ``on_step(trainer, stats)`` (after each
update) and ``on_eval(trainer, metrics)`` (after each evaluation); raising
stops training (the last checkpoint stays resumable).

A run directory holds ``checkpoints/{last,best}.safetensors``,
``metrics.jsonl``, ``plots/*.png`` and ``diagnostics/`` (when enabled).

Under torchrun (``RANK``, ``WORLD_SIZE``, ... set) the trainer joins the process group and trains
data-parallel with DDP: each process keeps its rows of every batch, rank 0 validates and writes
(:mod:`rnnkit.train.distributed`).
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from rnnkit.config import ConfigError, TrainConfig, to_dict
from rnnkit.engines.cpp.build import settle as settle_kernels, waited_seconds as kernel_build_waits
from rnnkit.train import distributed, runtime
from rnnkit.train.budget import UpdateTimes
from rnnkit.train.checkpoint import (Checkpoint, join_state_dict, load_checkpoint, save_checkpoint,
                                     split_state_dict)
from rnnkit.train.data import as_epoch_data
from rnnkit.train.guard import NonFiniteGuard
from rnnkit.train.layer_groups import GradualUnfreezing, check_layer_settings
from rnnkit.train.log import MetricsLog, Progress, read_metrics
from rnnkit.train.optim import Schedule, build_optimizer
from rnnkit.train.steps import StatelessStep, TBPTTStep
from rnnkit.train.tbptt import reset_state


# TrainConfig fields whose effect lives in the checkpoint's optimiser / schedule / data position
RESUME_FIXED = ("optimizer", "lr", "layer_lr_decay", "momentum", "nesterov", "beta2", "weight_decay", "schedule",
                "warmup_steps", "step_size", "gamma", "min_lr", "batch_size", "bptt", "bptt_k2",
                "accumulate", "seed")


@dataclass
class ModelOutput:
    """What a task model returns: logits, optional mean loss over ``n`` items, optional state."""
    logits: torch.Tensor | None
    loss: torch.Tensor | None = None
    state: Any = None
    n: int = 1


class LossMeter:
    """Item-weighted mean loss over an evaluation pass."""

    def __init__(self):
        self.total, self.n = 0.0, 0

    def update(self, out, batch) -> None:
        self.total += float(out.loss) * out.n
        self.n += out.n

    def compute(self) -> dict:
        return {"loss": self.total / max(self.n, 1)}


@dataclass
class FitResult:
    steps: int
    epochs: float
    best: float | None
    best_step: int | None
    best_metrics: dict
    stopped: str
    elapsed_s: float
    run_dir: Path | None
    train_s: float = 0.0  # what max_time counts: elapsed_s less evaluations, checkpoints and kernel builds


class TrainingClock:
    """Seconds of training since it started: wall time less the paused spans (evaluations, checkpoints)
    and less the time this process spent waiting for one-time kernel builds (rnnkit.engines.cpp.build),
    so that ``max_time`` buys training however long the set-up took. ``offset``: the seconds a resumed
    run had already trained; ``now``: the clock (wall time, this process's CPU time, or a fake one in tests);
    ``waits``: whether waiting for kernel builds shows on it (not on a CPU clock: waiting takes no CPU)."""

    def __init__(self, offset: float = 0.0, now: Callable[[], float] = time.perf_counter, waits: bool = True):
        self.now, self.offset, self.waits = now, offset, waits
        self.t0 = now()
        self.waited0 = kernel_build_waits()
        self.paused_s = 0.0

    @contextlib.contextmanager
    def paused(self):
        t = self.now()
        try:
            yield
        finally:
            self.paused_s += self.now() - t

    def seconds(self) -> float:
        waited = kernel_build_waits() - self.waited0 if self.waits else 0.0
        return self.offset + self.now() - self.t0 - self.paused_s - waited


class Trainer:
    def __init__(self, model: nn.Module, config: TrainConfig, *, run_dir: str | Path | None = None,
                 meter: Callable[[], Any] = LossMeter, run_config: dict | None = None,
                 metadata: dict | None = None, callbacks: Sequence[Any] = (),
                 clock: Callable[[], float] | None = None):
        self.cfg = config
        # what max_time is measured on: config.clock's, unless a test hands in a fake one
        self.clock = clock or (time.process_time if config.clock == "cpu" else time.perf_counter)
        self.world = distributed.launch_world()
        distributed.check_batch(config.batch_size, self.world)
        self.device = distributed.start(self.world, config.device)
        runtime.check_precision(self.device, config.precision)
        runtime.set_threads(config.threads, config.deterministic)
        self.model = model.to(self.device)
        self.net = distributed.wrap(self.model, self.world)  # what training runs through
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.meter = meter
        self.run_config = run_config if run_config is not None else {"train": to_dict(config)}
        self.metadata = dict(metadata or {})
        self.callbacks = list(callbacks)
        self.stateful = bool(getattr(model, "stateful", False))
        self.stepper = TBPTTStep(config.bptt, config.k2, self.world) if self.stateful else StatelessStep()
        check_layer_settings(self.model, config.layer_lr_decay, config.unfreeze)
        if config.unfreeze == "gradual" and self.world.distributed:
            raise ConfigError("unfreeze=gradual changes which parameters train from epoch to epoch, which DDP does "
                              "not allow; train in one process or use --unfreeze all")
        # which layer groups train is a function of the epoch, so a resumed run freezes the same ones
        self.unfreezer = GradualUnfreezing(self.model) if config.unfreeze == "gradual" else None
        self.optimizer = build_optimizer(self.model, config)
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.precision == "fp16")
        self.guard = NonFiniteGuard(config.nan_policy, config.max_bad_steps)
        self.schedule: Schedule | None = None
        self.step = self.epoch = self.pos = 0
        self.best: float | None = None
        self.best_step: int | None = None
        self.best_metrics: dict = {}
        self.bad_evals = 0
        self.tokens = 0
        self.times = UpdateTimes()  # measured update durations: how many more fit in max_time
        self._good: dict | None = None
        self.memory: dict[str, Checkpoint] = {}
        self._last_eval = -1
        self.epoch_sums = [0.0, 0]  # loss * items and items so far in this epoch
        self._data_digest: str | None = None  # the training data's fingerprint, set by fit()
        self._all_used = False  # every parameter seen with a gradient (checked once under several processes)
        if config.diagnose and not hasattr(model, "diagnostic_pass"):
            raise ConfigError(f"diagnose=true needs {type(model).__name__}.diagnostic_pass(batch, last_step_only)")

    # ------------------------------------------------------------------ fit
    def fit(self, train_data, val_data=None, *, resume: bool | str | Path = False) -> FitResult:
        """Train; ``resume``: True continues from the last checkpoint, a path from that checkpoint."""
        cfg = self.cfg
        train = as_epoch_data(train_data)
        val = as_epoch_data(val_data) if val_data is not None else None
        per_epoch = math.ceil(len(train) / cfg.accumulate)
        # the step cap (0 = none: epochs=0 runs until max_time or max_steps)
        total = self._total = cfg.max_steps or per_epoch * cfg.epochs
        self.schedule = Schedule(self.optimizer, cfg, total)
        # what resume compares: a run continues only on the batches it was started on
        self._data_digest = train.fingerprint() if hasattr(train, "fingerprint") else None
        if cfg.deterministic:  # on resume too: a resumed run is bit-identical only under the same kernels
            runtime.use_deterministic_algorithms()
            settle_kernels()  # the same engines from the first update to the last, and after a resume
        if resume:
            self.restore(self._path("last") if resume is True else resume)
        else:
            self.times = UpdateTimes()  # a new run: the whole max_time ahead
            runtime.seed_everything(cfg.seed + self.world.rank)  # rank 0: as in one process
        self.log = MetricsLog(self._dir() / "metrics.jsonl", cfg.tensorboard, resume_step=self.step if resume else None
                              ) if self.run_dir and self.world.main else None
        self._snapshot()
        self._n_batches = len(train)
        t0 = time.perf_counter()
        # a resumed run goes on with the budget it had used
        self.budget = TrainingClock(self.times.used_s, self.clock, waits=cfg.clock == "wall")
        self.progress = Progress(cfg.progress if self.world.main else "none", cfg.log_every, max_time=cfg.max_time,
                                 clock=self.budget.seconds)
        if cfg.max_time and self.budget.seconds() >= cfg.max_time:
            self.progress.message(f"the time budget (max_time {cfg.max_time:g} s) was used up before this resume; "
                                  "give a larger --max-time to train on")
            stopped = "max_time"
        else:
            stopped = self._loop(train, val, per_epoch)
        return self._finish(stopped, val, time.perf_counter() - t0)

    def _loop(self, train, val, per_epoch: int) -> str:
        cfg = self.cfg
        while not cfg.epochs or self.epoch < cfg.epochs:  # epochs=0: until max_time or max_steps
            if self.pos == 0:
                self.stepper.begin_epoch()
            if self.unfreezer is not None:
                self.unfreezer.set_epoch(self.epoch)
            self.progress.start_epoch(self.epoch, cfg.epochs, per_epoch, self.pos // cfg.accumulate)
            reason = self._epoch(train, val, per_epoch, len(train))
            self.progress.end_epoch()
            if reason:
                return reason
            self._log_epoch()
            self.epoch, self.pos = self.epoch + 1, 0
            with self.budget.paused():
                if not cfg.eval_every and self._evaluate_and_save(val):
                    return "early stopping"
        return "epochs done"

    def _log_epoch(self) -> None:
        """The item-weighted mean training loss of the epoch just finished."""
        loss_sum, n = self.epoch_sums
        if self.log:
            self.log.write("epoch", self.step, epoch=self.epoch + 1, loss=loss_sum / max(n, 1), items=n)
        self.epoch_sums = [0.0, 0]

    def _epoch(self, train, val, per_epoch: int, n_batches: int) -> str | None:
        cfg, micro = self.cfg, 0
        window_t, window_tokens, losses = time.perf_counter(), 0, []
        for batch in train.iter_epoch(self.epoch, self.pos):
            ends_group = micro + 1 >= cfg.accumulate or self.pos + 1 >= n_batches
            loss, n = self._backward(batch, sync=ends_group)
            self.pos += 1
            micro += 1
            if loss is None:  # the guard dropped this accumulation group
                micro, losses, window_tokens = 0, [], 0
                continue
            losses.append(loss)
            window_tokens += n
            self.epoch_sums[0] += loss * n
            self.epoch_sums[1] += n
            if micro < cfg.accumulate and self.pos < n_batches:
                continue
            micro = 0
            norm = self._update()
            if norm is None:
                losses, window_tokens = [], 0
                continue
            self.tokens += window_tokens
            stats = self._step_stats(losses, norm, window_tokens, window_t)
            window_tokens, losses = 0, []
            self.progress.update(self.pos // cfg.accumulate + (self.pos % cfg.accumulate > 0), stats)
            self._notify("on_step", stats)
            with self.budget.paused():  # max_time counts training, not evaluations and checkpoints
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    if self._evaluate_and_save(val):
                        return "early stopping"
                elif cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save("last")
            window_t = time.perf_counter()  # the next update's tokens/s counts none of the evaluation
            if cfg.max_steps and self.step >= cfg.max_steps:
                return "max_steps"
            if cfg.max_time and distributed.sum_all([self.budget.seconds() >= cfg.max_time], self.world,
                                                    self.device)[0]:  # every process stops at the same update
                return "max_time"
        return None

    def _backward(self, batch, sync: bool = True) -> tuple[float | None, int]:
        """Forward + backward of one micro-batch (this process's rows of it); its loss and items over
        every process; ``(None, 0)`` when the loss was not finite. ``sync``: the last micro-batch of an
        update, whose backward averages the gradients over the processes."""
        self.net.train()
        batch, empty = distributed.shard_batch(batch, self.world)
        batch = runtime.to_device(batch, self.device)
        with distributed.no_sync(self.net, sync):
            with runtime.autocast(self.device, self.cfg.precision):
                out = self.stepper.forward(self.net, batch)
            loss, n, weight = float(out.loss.detach()), 0 if empty else int(out.n), 1.0
            if self.world.distributed:
                loss, n, weight = self._whole_batch(loss, n)
            if not math.isfinite(loss):
                self._on_bad("loss", loss)
                return None, 0
            self.scaler.scale(out.loss * weight / self.cfg.accumulate).backward()
        self.stepper.after_update()
        return loss, n

    def _whole_batch(self, loss: float, n: int) -> tuple[float, int, float]:
        """The mean loss and items of the whole batch (every process's rows) and this process's loss weight
        ``W * n / n_all``: DDP averages gradients over the W processes, which then equal the gradient of
        the whole batch's mean loss, as in one process."""
        bad = float(n > 0 and not math.isfinite(loss))
        total, items, bad = distributed.sum_all([loss * n if n else 0.0, n, bad], self.world, self.device)
        if bad:
            return math.nan, 0, 0.0
        if not items:  # no item anywhere (all padding): each process's own loss, as one process would
            return loss, 0, 1.0
        return total / items, int(items), self.world.world_size * n / items

    def _update(self) -> float | None:
        """Clip and apply the accumulated gradients; ``None`` when they were not finite."""
        cfg = self.cfg
        if self.world.distributed and not self._all_used:
            distributed.check_all_used(self.model)
            self._all_used = True
        self.scaler.unscale_(self.optimizer)
        if cfg.clip_value:
            nn.utils.clip_grad_value_(self.model.parameters(), cfg.clip_value)
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = float(nn.utils.clip_grad_norm_(params, cfg.clip_norm or float("inf")))
        if not math.isfinite(norm) and not self.scaler.is_enabled():
            self._on_bad("gradient norm", norm)
            return None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.times.record(self.budget.seconds())
        self.schedule.step(self._updates_left())
        self.guard.ok()
        return norm

    def _updates_left(self) -> float:
        """Updates still to come, the next one included: to the step cap, or fewer when the measured update
        times say the time budget ends first (the same estimate on every process)."""
        left = self._total - self.step if self._total else math.inf
        if self.cfg.max_time:
            budget = self.times.updates_left(self.cfg.max_time)
            if self.world.distributed:
                budget = distributed.sum_all([budget], self.world, self.device)[0] / self.world.world_size
            left = min(left, budget)
        return left

    def _notify(self, hook: str, payload: dict) -> None:
        for cb in self.callbacks:
            if hasattr(cb, hook):
                getattr(cb, hook)(self, payload)

    def _on_bad(self, what: str, value: float) -> None:
        msg = self.guard.bad(self.step + 1, what, value)
        self.optimizer.zero_grad(set_to_none=True)
        self.stepper.begin_epoch()  # a poisoned carried state must not flow on
        if self.cfg.nan_policy == "rollback":
            self._rollback()
        self.progress.message(msg)
        if self.log:
            self.log.write("nonfinite", self.step, what=what, value=str(value), policy=self.cfg.nan_policy)

    def _step_stats(self, losses, norm, n_tokens, t0) -> dict:
        dt = max(time.perf_counter() - t0, 1e-9)
        stats = {"loss": sum(losses) / len(losses), "lr": max(g["lr"] for g in self.optimizer.param_groups),
                 "grad_norm": norm, "tokens_per_s": n_tokens / dt}
        if self.best is not None:
            stats[self.cfg.monitor] = self.best
        if self.log and self.step % self.cfg.log_every == 0:
            self.log.write("step", self.step, epoch=round(self.epoch + self.pos / self._n_batches, 4), **stats)
        return {k: stats[k] for k in ("loss", self.cfg.monitor, "tokens_per_s") if k in stats}

    # ----------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, data, max_batches: int = 0) -> dict:
        """Metrics of the model on ``data`` (state carried for stateful models), keys unprefixed."""
        data = as_epoch_data(data)
        self.model.eval()
        meter, state = self.meter(), None
        for i, batch in enumerate(data.iter_epoch(0)):
            if max_batches and i >= max_batches:
                break
            batch = runtime.to_device(batch, self.device)
            with runtime.autocast(self.device, self.cfg.precision):
                if self.stateful:
                    out = self.model(batch, reset_state(state, batch.reset))
                    state = out.state
                else:
                    out = self.model(batch)
            meter.update(out, batch)
        self.model.train()
        return meter.compute()

    def _evaluate_and_save(self, val) -> bool:
        """Evaluate, keep the best checkpoint, save the last one; True to stop early."""
        self._last_eval = self.step
        if val is None:
            self.save("last")
            return False
        metrics = None  # rank 0 validates on the whole data; every process takes the same decisions from it
        if self.world.main:
            metrics = {f"val_{k}": v for k, v in self.evaluate(val, self.cfg.max_eval_batches).items()}
        metrics = distributed.from_main(metrics, self.world)
        if self.cfg.monitor not in metrics:
            raise ConfigError(f"monitor={self.cfg.monitor!r} is not a validation metric; "
                              f"available: {', '.join(sorted(metrics))}")
        value = metrics[self.cfg.monitor]
        self.schedule.on_eval(value)
        better = self.best is None or (value < self.best if self.cfg.monitor_mode == "min" else value > self.best)
        if better:
            self.best, self.best_step, self.bad_evals = value, self.step, 0
            self.best_metrics = metrics
        else:
            self.bad_evals += 1
        if self.log:
            self.log.write("eval", self.step, epoch=self.epoch, **metrics, best=self.best)
        self.progress.message(f"eval at update {self.step}: " + " ".join(
            f"{k} {v:.4f}" for k, v in metrics.items()) + (" (best)" if better else ""))
        if self.cfg.diagnose and self.world.main:
            self.diagnose(val)
        self._notify("on_eval", metrics)
        self.save("last")
        if better:
            self.save("best")
        return bool(self.cfg.patience and self.bad_evals >= self.cfg.patience)

    def diagnose(self, data) -> dict:
        from rnnkit.train.diagnostics import run_diagnostics
        batch = runtime.to_device(next(iter(as_epoch_data(data).iter_epoch(0))), self.device)
        return run_diagnostics(self.model, batch, self._dir() / "diagnostics", step=self.step)

    def _finish(self, stopped: str, val, elapsed: float) -> FitResult:
        train_s = self.budget.seconds()
        if self.unfreezer is not None:  # the trained model leaves with every group trainable again
            self.unfreezer.set_epoch(len(self.unfreezer.groups))
        if stopped != "early stopping" and self._last_eval != self.step:
            self._evaluate_and_save(val)  # the final weights are always evaluated and saved
        if self.log:
            self.log.close()
            from rnnkit.train.plots import plot_curves
            plot_curves(read_metrics(self._dir() / "metrics.jsonl"), self._dir() / "plots" / "curves.png",
                        self.cfg.monitor)
        return FitResult(self.step, self.epoch + self.pos / self._n_batches, self.best, self.best_step,
                         self.best_metrics, stopped,
                         elapsed, self.run_dir, train_s=train_s)

    # ---------------------------------------------------------- checkpoints
    def _dir(self) -> Path:
        if self.run_dir is None:
            raise ConfigError("this needs a run directory: Trainer(..., run_dir=...)")
        return self.run_dir

    def _path(self, name: str) -> Path:
        return self._dir() / "checkpoints" / f"{name}.safetensors"

    def checkpoint(self) -> Checkpoint:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        optim = split_state_dict(self.optimizer.state_dict(), "optim", tensors)
        meta = {"config": self.run_config, "metadata": self.metadata,
                "trainer": {"epoch": self.epoch, "pos": self.pos, "step": self.step, "best": self.best,
                            "best_step": self.best_step, "best_metrics": self.best_metrics,
                            "bad_evals": self.bad_evals, "tokens": self.tokens, "epoch_sums": self.epoch_sums,
                            "data": self._data_digest, "world_size": self.world.world_size,
                            "times": self.times.state_dict()},
                "optimizer": optim, "schedule": split_state_dict(self.schedule.state_dict(), "sched", tensors),
                "scaler": self.scaler.state_dict(), "stepper": self.stepper.state_dict(tensors),
                "rng": distributed.rng_states(tensors, self.world)}
        return Checkpoint(tensors, meta)

    def save(self, name: str) -> Path | None:
        """Write checkpoint ``name`` (last / best); kept in ``self.memory`` when there is no run_dir."""
        self._snapshot()
        ck = self.checkpoint()  # on every process: the carried state and RNG states are gathered
        if self.run_dir is None:
            self.memory[name] = Checkpoint({k: v.detach().clone() for k, v in ck.tensors.items()}, ck.meta)
            return None
        path = self._path(name)
        if self.world.main:
            save_checkpoint(path, ck)
        distributed.barrier(self.world)  # no process reads the checkpoint before it is written
        return path

    def load_best(self) -> None:
        """Put the best checkpoint's weights into the model."""
        ck = self.memory["best"] if self.run_dir is None else load_checkpoint(self._path("best"))
        self.model.load_state_dict(ck.group("model"))

    def restore(self, path: str | Path) -> None:
        """Continue exactly where a checkpoint left off (model, optimiser, schedule, RNG, position)."""
        ck = load_checkpoint(path)
        self._check_resume_config(path, ck.meta.get("config", {}).get("train", {}))
        self.model.load_state_dict(ck.group("model"))
        self.optimizer.load_state_dict(join_state_dict(ck.meta["optimizer"], ck.tensors))
        self.schedule.load_state_dict(join_state_dict(ck.meta["schedule"], ck.tensors))
        self.schedule.retarget(self.cfg, self._total)  # more epochs than before: stretch the decay
        if ck.meta["scaler"]:
            self.scaler.load_state_dict(ck.meta["scaler"])
        t = ck.meta["trainer"]
        if t.get("data") and self._data_digest and t["data"] != self._data_digest:
            raise ConfigError(f"{path}: the training data is not what this run was started on (other data, "
                              "batch size or bptt, or batches laid out by another rnnkit version), so its data "
                              "position and carried state would not apply; resume with the same data, or start "
                              "a new run")
        self.epoch, self.pos, self.step = t["epoch"], t["pos"], t["step"]
        self.best, self.best_step, self.bad_evals, self.tokens = t["best"], t["best_step"], t["bad_evals"], t["tokens"]
        self.best_metrics, self.epoch_sums = t["best_metrics"], t["epoch_sums"]
        if "times" in t:  # the training seconds used so far count against max_time
            self.times.load_state_dict(t["times"])
        self.stepper.load_state_dict(ck.meta["stepper"], ck.tensors, self.device)
        distributed.set_rng_states(ck.meta["rng"], ck.tensors, self.world, saved_by=t.get("world_size", 1),
                                   reseed=self.cfg.seed + 1_000_003 * self.step)

    def _check_resume_config(self, path, saved: dict) -> None:
        """Settings held by the checkpoint's state cannot change on resume: say so instead of ignoring them."""
        now = to_dict(self.cfg)
        fixed = RESUME_FIXED + (("threads",) if self.cfg.deterministic else ())  # see runtime.set_threads
        changed = [f"{k}: {saved[k]!r} -> {now[k]!r}" for k in fixed if k in saved and saved[k] != now[k]]
        if changed:
            raise ConfigError(f"{path}: cannot resume with changed {', '.join(changed)} (the optimiser, "
                              "schedule and data position in the checkpoint depend on them); start a new run")

    def _snapshot(self) -> None:
        """In-memory copy of the last good weights for ``nan_policy=rollback``."""
        if self.cfg.nan_policy == "rollback":
            self._good = {"model": copy.deepcopy(self.model.state_dict()),
                          "optim": copy.deepcopy(self.optimizer.state_dict())}

    def _rollback(self) -> None:
        self.model.load_state_dict(self._good["model"])
        self.optimizer.load_state_dict(self._good["optim"])
