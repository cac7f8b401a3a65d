"""Training: one generic loop (:class:`Trainer`), truncated BPTT streams, checkpoints, diagnostics.

See :mod:`rnnkit.train.trainer` for the contract task models follow.
"""
from rnnkit.train.checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from rnnkit.train.data import ListData, StreamData
from rnnkit.train.guard import NonFiniteError
from rnnkit.train.runtime import resolve_device, seed_everything
from rnnkit.train.tbptt import IGNORE_INDEX, Chunk, Streams, batchify, detach_state, reset_state, windows
from rnnkit.train.trainer import FitResult, LossMeter, ModelOutput, Trainer

__all__ = ["Trainer", "ModelOutput", "LossMeter", "FitResult", "ListData", "StreamData",
           "Streams", "Chunk", "batchify", "windows", "detach_state", "reset_state", "IGNORE_INDEX",
           "CheckpointError", "load_checkpoint", "save_checkpoint", "read_meta",
           "NonFiniteError", "seed_everything", "resolve_device"]
