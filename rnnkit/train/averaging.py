"""Checkpoint averaging: the mean of the weights saved at the last N evaluations.

Averaging the parameters of the last few checkpoints of a run (Vaswani et al. 2017; Junczys-Dowmunt
et al. 2016) smooths the noise of the final updates at no training cost. :class:`KeepLastWeights`
is a :class:`~rnnkit.train.Trainer` callback that writes the model's weights at every evaluation
to ``RUN/checkpoints/eval-<update>.safetensors`` and keeps only the newest ``keep`` of them (they
survive a resume); :func:`average_checkpoints` turns such files into one checkpoint whose floating
tensors are the element-wise mean (integer buffers, such as an update counter, come from the newest).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch

from rnnkit.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint

EVAL_NAME = re.compile(r"^eval-(\d+)\.safetensors$")


def eval_checkpoints(run_dir: str | Path) -> list[Path]:
    """The ``checkpoints/eval-<update>.safetensors`` files of a run, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := EVAL_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


class KeepLastWeights:
    """Trainer callback: the model's weights (``model.*`` tensors, the run's config and metadata) at
    each evaluation, the newest ``keep`` files kept."""

    def __init__(self, keep: int):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.keep = keep

    def on_eval(self, trainer, metrics: dict) -> None:
        if trainer.run_dir is None or not trainer.world.main:
            return
        tensors = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
        meta = {"config": trainer.run_config, "metadata": trainer.metadata,
                "trainer": {"step": trainer.step, "metrics": metrics}}
        save_checkpoint(trainer.run_dir / "checkpoints" / f"eval-{trainer.step:08d}.safetensors",
                        Checkpoint(tensors, meta))
        for old in eval_checkpoints(trainer.run_dir)[:-self.keep]:
            old.unlink()


def average_checkpoints(paths: Sequence[str | Path]) -> Checkpoint:
    """One checkpoint with the mean of the ``model.*`` floating tensors of ``paths`` (same keys and
    shapes in each); other tensors and the metadata come from the last path, and
    ``meta["averaged"]`` lists the files averaged."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    loaded = [load_checkpoint(p) for p in paths]
    last = loaded[-1]
    keys = set(last.group("model"))
    for path, ck in zip(paths, loaded):
        if set(ck.group("model")) != keys:
            raise CheckpointError(f"{path}: its model tensors differ from those of {paths[-1]}; only checkpoints "
                                  "of one run can be averaged")
    tensors = dict(last.tensors)
    for key, value in last.tensors.items():
        if not key.startswith("model.") or not value.is_floating_point():
            continue
        for path, ck in zip(paths, loaded):
            if ck.tensors[key].shape != value.shape:
                raise CheckpointError(f"{path}: {key} has shape {tuple(ck.tensors[key].shape)}, "
                                      f"{paths[-1]} has {tuple(value.shape)}")
        stacked = torch.stack([ck.tensors[key].double() for ck in loaded])  # (N, ...)
        tensors[key] = stacked.mean(0).to(value.dtype)
    meta = dict(last.meta, averaged=[Path(p).name for p in paths])
    return Checkpoint(tensors, meta)
