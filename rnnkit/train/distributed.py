r"""Data-parallel training over processes: torch.distributed (DDP), launched by torchrun.

Launch (every task, through the one :class:`~rnnkit.train.Trainer`)::

    torchrun --nproc-per-node 2 -m rnnkit train TASK ...        # one machine, 2 processes
    rnnkit train TASK ... --devices 2                           # the same, torchrun started for you

The process group is torch's own (``init_process_group`` from the environment torchrun sets): gloo
on the CPU, NCCL on CUDA (one GPU per process, ``cuda:LOCAL_RANK``). Nothing here schedules or
connects processes itself.

What changes under ``W`` processes
----------------------------------
* ``batch_size`` stays the *global* batch: every process builds the same batches and keeps its rows
  of each one (:func:`shard_batch`), so ``W`` must divide ``batch_size``. For truncated BPTT the
  ``B`` streams are split by columns, each process carrying the state of its own columns::

        chunk (k1, B=4)      rank 0      rank 1
        s0 s1 s2 s3    ->    s0 s1       s2 s3      state (layers, 2, H) per rank

* Each process weights its mean loss by its share of the items (``W * n_rank / n_all``), so that
  DDP's gradient average equals the gradient of the single-process mean over the whole batch;
  the training loss and item counts are summed over processes (``all_reduce``) before logging.
* Validation runs on rank 0 over the whole validation data and its metrics are broadcast, so
  early stopping, schedules and "best" agree everywhere (and equal the single-process metrics).
* Only rank 0 writes checkpoints, metrics and plots. A checkpoint holds the *global* layout (the
  carried state of all streams, every rank's RNG state), so a run resumes on another number of
  processes: each process takes its columns again.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from rnnkit.config import ConfigError
from rnnkit.train import runtime
from rnnkit.train.tbptt import Chunk

# what torchrun sets for every process; all of them or none
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
HOW_TO_LAUNCH = ("start training with `torchrun --nproc-per-node N -m rnnkit train TASK ...` (or `rnnkit train "
                 "TASK ... --devices N`), which sets all of " + ", ".join(LAUNCH_VARS))
# collectives wait this long for a slow rank (rank 0 validating, writing checkpoints) before failing
TIMEOUT = datetime.timedelta(hours=2)


class LaunchError(ConfigError):
    """The processes were started in a way that cannot train together; the message says how to launch."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (``world_size`` 1: a plain single process)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self):
        if self.world_size < 1 or not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise LaunchError(f"RANK={self.rank}, WORLD_SIZE={self.world_size}, LOCAL_RANK={self.local_rank}: "
                              "expected WORLD_SIZE >= 1, 0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0; " + HOW_TO_LAUNCH)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = World()


def launch_world(environ: Mapping[str, str] | None = None) -> World:
    """The :class:`World` the launch environment describes; a partial environment is a :class:`LaunchError`."""
    env = os.environ if environ is None else environ
    present = [v for v in LAUNCH_VARS if env.get(v, "") != ""]
    if not present:
        return SINGLE
    missing = [v for v in LAUNCH_VARS if v not in present]
    if missing:
        raise LaunchError(f"incomplete launch environment: {', '.join(f'{v}={env[v]}' for v in present)} "
                          f"set but {', '.join(missing)} not; {HOW_TO_LAUNCH} (or unset "
                          f"{', '.join(present)} to train in one process)")
    values = {}
    for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        try:
            values[v] = int(env[v])
        except ValueError:
            raise LaunchError(f"{v}={env[v]!r} is not an integer; {HOW_TO_LAUNCH}") from None
    return World(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])


def check_batch(batch_size: int, world: World) -> None:
    """``batch_size`` is the global batch, split into equal shares per process."""
    if batch_size % world.world_size:
        up = -(-batch_size // world.world_size) * world.world_size
        raise LaunchError(f"--batch-size {batch_size} is the global batch, split across the {world.world_size} "
                          f"processes, so it must be a multiple of {world.world_size} (e.g. --batch-size {up}), "
                          f"or start a number of processes that divides {batch_size}")


# ------------------------------------------------------------------------- process group

def start(world: World, device: str) -> torch.device:
    """Join the process group (gloo on the CPU, NCCL on CUDA) and return this process's device."""
    resolved = runtime.resolve_device(device)
    if not world.distributed:
        return resolved
    if resolved.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise LaunchError(f"LOCAL_RANK={world.local_rank} but this machine shows {torch.cuda.device_count()} "
                              "CUDA GPU(s); start at most one process per GPU (--nproc-per-node)")
        resolved = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(resolved)
    backend = "nccl" if resolved.type == "cuda" else "gloo"
    if dist.is_initialized():
        if dist.get_backend() != backend or dist.get_world_size() != world.world_size:
            raise LaunchError(f"a {dist.get_backend()} process group of {dist.get_world_size()} is already "
                              f"running; this run needs {backend} over {world.world_size}")
    else:
        dist.init_process_group(backend, timeout=TIMEOUT,
                                device_id=resolved if resolved.type == "cuda" else None)
    return resolved


def wrap(model: nn.Module, world: World) -> nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` (``model`` itself in one process): what the
    trainer runs forward and backward through; gradients are averaged over processes during backward."""
    if not world.distributed:
        return model
    # no device_ids: the trainer has moved each batch already, and some batches keep lengths on the CPU on
    # purpose (rnnkit layers read them as sizes), which DDP's own input move would put on the GPU
    return DistributedDataParallel(model)


def check_all_used(model: nn.Module) -> None:
    """After the first averaged backward: every trainable parameter got a gradient. DDP (without its
    per-update search for unused parameters) waits for all of them, and would fail one update later
    with the first update's gradients only partly averaged."""
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    if unused:
        shown = ", ".join(unused[:5]) + (f" and {len(unused) - 5} more" if len(unused) > 5 else "")
        raise ConfigError(f"{len(unused)} trainable parameter(s) of {type(model).__name__} take no part in the loss "
                          f"({shown}); data-parallel training averages every trainable parameter's gradient in "
                          "every update: train this configuration in one process, or give those parameters "
                          "requires_grad=False")


def no_sync(net: nn.Module, sync: bool):
    """Skip DDP's gradient averaging for a micro-batch whose gradients are accumulated further."""
    if sync or not isinstance(net, DistributedDataParallel):
        return contextlib.nullcontext()
    return net.no_sync()


def shutdown() -> None:
    """Leave the process group (when one was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def sum_all(values: Sequence[float], world: World, device: torch.device) -> list[float]:
    """Element-wise sums of ``values`` over every process (float64)."""
    if not world.distributed:
        return [float(v) for v in values]
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def from_main(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every process (pickled; for small things: metrics, a decision)."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, world: World) -> list:
    """Every process's ``obj``, in rank order, on every process."""
    if not world.distributed:
        return [obj]
    out = [None] * world.world_size
    dist.all_gather_object(out, obj)
    return out


# ------------------------------------------------------------------------ RNG states

def rng_states(tensors: dict, world: World) -> dict:
    """Every process's RNG states for a checkpoint (a collective): rank 0's as one process stores them
    (:func:`~rnnkit.train.runtime.rng_state`), rank r's tensors under ``rank{r}.`` and its JSON part in
    ``ranks[r - 1]``."""
    own: dict = {}
    meta = runtime.rng_state(own)
    if not world.distributed:
        tensors.update(own)
        return meta
    every = gather_objects((own, meta), world)
    tensors.update(every[0][0])
    for r, (t, _) in enumerate(every[1:], 1):
        tensors.update({f"rank{r}.{k}": v for k, v in t.items()})
    return {**every[0][1], "ranks": [m for _, m in every[1:]]}


def set_rng_states(meta: dict, tensors: dict, world: World, saved_by: int, reseed: int) -> None:
    """This process's RNG states from a checkpoint written by ``saved_by`` processes. When that count
    differs, ranks > 0 have no saved states of their own and start fresh streams seeded by
    ``reseed + rank``: reproducible, though not the streams they would have had."""
    r = world.rank
    if r == 0:
        runtime.set_rng_state(meta, tensors)
    elif saved_by == world.world_size:
        prefix = f"rank{r}."
        runtime.set_rng_state(meta["ranks"][r - 1],
                              {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    else:
        runtime.seed_everything(reseed + r)


# ---------------------------------------------------------------------------- shards

def bounds(rows: int, world: World) -> tuple[int, int]:
    """This rank's rows ``[start, stop)`` of ``rows`` (``torch.tensor_split``'s split: sizes differ by <= 1)."""
    q, r = divmod(rows, world.world_size)
    start = world.rank * q + min(world.rank, r)
    return start, start + q + (world.rank < r)


def take(t: torch.Tensor, dim: int, world: World) -> torch.Tensor:
    """This rank's share of ``t`` along ``dim``."""
    start, stop = bounds(t.shape[dim], world)
    return t.narrow(dim, start, stop - start)


def gather(t: torch.Tensor, dim: int, world: World) -> torch.Tensor:
    """The shares of every rank joined along ``dim`` (inverse of :func:`take`; equal shares)."""
    if not world.distributed:
        return t
    parts = [torch.empty_like(t) for _ in range(world.world_size)]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim)


def batch_rows(batch: Any) -> int:
    """How many rows (examples, streams) a batch holds."""
    if isinstance(batch, Chunk):
        return batch.inputs.shape[1]
    if hasattr(batch, "take_rows"):
        return batch.batch_rows()
    for value in _fields(batch).values():
        if isinstance(value, torch.Tensor) and value.dim() >= 1:
            return value.shape[0]
    raise ConfigError(f"cannot tell the rows of a {type(batch).__name__} batch (no tensor with a batch "
                      "dimension); give it batch_rows() and take_rows(start, stop) methods")


def shard_batch(batch: Any, world: World) -> tuple[Any, bool]:
    """This rank's rows of a global ``batch`` and whether it has none of them.

    A rank without rows (a last batch smaller than the world) gets the batch's first row instead, and
    the trainer gives its loss weight 0: every process still runs forward and backward, as DDP needs.
    Batches: :class:`~rnnkit.train.tbptt.Chunk` (split by stream, dim 1), objects with ``batch_rows()`` and
    ``take_rows(start, stop)`` methods (rows grouped in some other way, e.g. several captions per image), and dicts / dataclasses whose tensors all have the rows as dim 0 (0-d
    tensors and plain values are kept whole).
    """
    if not world.distributed:
        return batch, False
    rows = batch_rows(batch)
    start, stop = bounds(rows, world)
    if start == stop:
        return shard_batch(batch, World(0, max(rows, 1)))[0], True
    if isinstance(batch, Chunk):
        return Chunk(take(batch.inputs, 1, world), take(batch.targets, 1, world), take(batch.reset, 0, world),
                     batch.index), False
    if hasattr(batch, "take_rows"):
        return batch.take_rows(start, stop), False
    fields = {k: _rows(k, v, rows, start, stop, batch) for k, v in _fields(batch).items()}
    return (fields if isinstance(batch, dict) else dataclasses.replace(batch, **fields)), False


def _fields(batch: Any) -> dict:
    if isinstance(batch, dict):
        return batch
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch) if f.init}
    raise ConfigError(f"cannot split a {type(batch).__name__} batch across processes: expected a dict or "
                      "dataclass of tensors, a Chunk, or an object with batch_rows() and take_rows(start, stop) methods")


def _rows(key: str, value: Any, rows: int, start: int, stop: int, batch: Any) -> Any:
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            return value
        if value.shape[0] == rows:
            return value[start:stop]
    elif value is None or isinstance(value, (bool, int, float, str)):
        return value
    shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
    raise ConfigError(f"cannot split field {key!r} ({shape}) of a {type(batch).__name__} batch of {rows} rows "
                      "across processes: every tensor needs the rows as dim 0; give the batch type "
                      "batch_rows() and take_rows(start, stop) methods")


# --------------------------------------------------------------------------- launcher

def run_local(nproc: int, argv: Sequence[str]) -> int:
    """``python -m rnnkit ARGV`` in ``nproc`` processes on this machine, started by torchrun; its exit code."""
    if nproc < 1:
        raise LaunchError(f"--devices must be >= 1, got {nproc}")
    if any(os.environ.get(v) for v in LAUNCH_VARS):
        raise LaunchError("--devices starts its own processes; under torchrun (RANK is set) leave it out")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "rnnkit", *argv]
    with contextlib.suppress(KeyboardInterrupt):  # torchrun passes the interrupt on to its processes
        return subprocess.call(cmd)
    return 130
