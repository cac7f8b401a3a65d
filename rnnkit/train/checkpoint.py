"""Checkpoints: one safetensors file holding every tensor, plus JSON metadata.

Layout of ``<run>/checkpoints/{last,best}.safetensors``:

* tensors: ``model.*`` (the state_dict), ``optim.*`` (optimiser tensors such
  as Adam moments), ``rng.*`` (torch CPU/CUDA generator states) and
  ``extra.*`` (trainer tensors, e.g. the carried TBPTT state);
* the safetensors header metadata key ``rnnkit`` holds JSON: ``format``
  (``FORMAT``), ``version`` (``FORMAT_VERSION``), the fully resolved config,
  the non-tensor optimiser / scheduler state, trainer position, Python and
  NumPy RNG states, and a SHA-256 of the tensor bytes.

Files are written atomically (temporary file in the same directory, fsync,
rename), and loading never unpickles anything: a damaged or foreign file
raises :class:`CheckpointError` naming the file and the problem.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from rnnkit.atomic import atomic_write

FORMAT = "rnnkit-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not match; the message names the file."""


@dataclass
class Checkpoint:
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def group(self, prefix: str) -> dict[str, torch.Tensor]:
        """Tensors under ``prefix.``, with the prefix stripped."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.tensors.items() if k.startswith(p)}


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key]
        h.update(key.encode())
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # clone: tied weights share storage, which safetensors refuses
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> None:
    tensors = _cpu(ckpt.tensors)
    meta = dict(ckpt.meta, format=FORMAT, version=FORMAT_VERSION, sha256=_digest(tensors))
    atomic_write(path, save(tensors, metadata={"rnnkit": json.dumps(meta)}))


def how_to_continue(path: Path) -> str:
    """What to do about a damaged checkpoint of a run, with the real flags."""
    run = path.parent.parent if path.parent.name == "checkpoints" else None
    if run is None:
        return "use another checkpoint file"
    other = "best" if path.stem == "last" else "last"
    return (f"to continue training, `rnnkit train TASK --out {run} --resume` falls back to the newest valid "
            f"checkpoint (or pick one: --resume-from best|last|FILE); to use the run, pass --checkpoint {other}")


def _read_meta(path: Path, raw: bytes, size: int | None = None) -> dict:
    size = len(raw) if size is None else size
    if size < 8:
        raise CheckpointError(f"{path}: truncated checkpoint ({size} bytes); {how_to_continue(path)}")
    n = int.from_bytes(raw[:8], "little")
    if n <= 0 or 8 + n > size:
        raise CheckpointError(f"{path}: damaged checkpoint header (says {n} bytes, file has {size}); "
                              f"{how_to_continue(path)}")
    try:
        header = json.loads(raw[8:8 + n])
        meta = json.loads(header["__metadata__"]["rnnkit"])
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: not an rnnkit checkpoint (no readable 'rnnkit' metadata)") from err
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnkit checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('version')} "
                              f"is not supported (this rnnkit reads version {FORMAT_VERSION})")
    return meta


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and verify a checkpoint (format, version, checksum); tensors on CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    raw = path.read_bytes()
    meta = _read_meta(path, raw)
    try:
        tensors = load(raw)
    except SafetensorError as err:
        raise CheckpointError(f"{path}: damaged checkpoint: {err}; {how_to_continue(path)}") from err
    if _digest(tensors) != meta.get("sha256"):
        raise CheckpointError(f"{path}: checksum mismatch, the file is corrupted; {how_to_continue(path)}")
    return Checkpoint(tensors, meta)


def find_run_checkpoint(run: str | Path, which: str = "best") -> Path:
    """The checkpoint of a run: ``run`` itself if it is a file, else ``run/checkpoints/<which>``,
    else ``run/checkpoints/last`` (a run stopped before its first evaluation has no best yet)."""
    run = Path(run)
    if run.is_file():
        if run.suffix != ".safetensors":
            raise CheckpointError(f"{run}: not a run directory nor a .safetensors checkpoint; expected {EXPECTED_RUN}")
        return run
    if not run.is_dir():
        raise CheckpointError(f"{run}: no such run directory; expected {EXPECTED_RUN}")
    for name in (which, "last"):
        path = run / "checkpoints" / f"{name}.safetensors"
        if path.is_file():
            return path
    raise CheckpointError(f"{run}: not a run directory (no checkpoints/best.safetensors or last.safetensors in it; "
                          f"train first); expected {EXPECTED_RUN}")


EXPECTED_RUN = "the --out directory of `rnnkit train TASK` (holding checkpoints/*.safetensors) or a .safetensors file"


def resume_checkpoint(run: str | Path, which: str = "") -> tuple[Path, str | None]:
    """The checkpoint a resumed run continues from, and a notice when it is not the newest one.

    ``which``: "" (plain ``--resume``): ``last``, else ``best`` when ``last`` is missing or damaged;
    ``best`` / ``last``: that one; anything else: a checkpoint file. The file is fully verified here.
    """
    run = Path(run)
    if which not in ("", "best", "last"):
        path = Path(which)
        if path.suffix != ".safetensors":
            raise CheckpointError(f"--resume-from {which}: expected best, last or a .safetensors file")
        load_checkpoint(path)
        return path, None
    if not (run / "checkpoints").is_dir():
        raise CheckpointError(f"{run}: nothing to resume (no {run / 'checkpoints'}); expected {EXPECTED_RUN}")
    names = (which,) if which else ("last", "best")
    problems = []
    for name in names:
        path = run / "checkpoints" / f"{name}.safetensors"
        try:
            load_checkpoint(path)
        except CheckpointError as err:
            problems.append(str(err).split("; ", 1)[0])
            continue
        notice = None
        if problems:
            step = read_meta(path).get("trainer", {}).get("step")
            notice = (f"{problems[0]}; resuming from {path} instead (update {step}: the updates after it are "
                      "trained again)")
        return path, notice
    raise CheckpointError(f"{run}: no usable checkpoint to resume from ({'; '.join(problems)}); "
                          "start a new run with another --out")


def read_meta(path: str | Path) -> dict:
    """Only the JSON metadata of a checkpoint (no tensor loading, no checksum)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else 0
        if n <= 0 or 8 + n > size:
            return _read_meta(path, head, size)  # raises, without reading a bogus length
        return _read_meta(path, head + fh.read(n))


# ------------------------------------------------- optimiser state <-> tensors + JSON

def split_state_dict(sd: Any, prefix: str, tensors: dict) -> Any:
    """Replace every tensor in a nested state_dict by a ``{"$tensor": key}`` reference."""
    if isinstance(sd, torch.Tensor):
        tensors[prefix] = sd
        return {"$tensor": prefix}
    if isinstance(sd, dict):
        return {"$dict": [[k, split_state_dict(v, f"{prefix}.{k}", tensors)] for k, v in sd.items()]}
    if isinstance(sd, (list, tuple)):
        return [split_state_dict(v, f"{prefix}.{i}", tensors) for i, v in enumerate(sd)]
    if sd is None or isinstance(sd, (bool, int, float, str)):
        return sd
    raise CheckpointError(f"cannot store {type(sd).__name__} at {prefix} in a checkpoint")


def join_state_dict(obj: Any, tensors: dict) -> Any:
    """Inverse of :func:`split_state_dict` (dict keys keep their int/str type)."""
    if isinstance(obj, dict) and "$tensor" in obj:
        return tensors[obj["$tensor"]]
    if isinstance(obj, dict) and "$dict" in obj:
        return {k: join_state_dict(v, tensors) for k, v in obj["$dict"]}
    if isinstance(obj, list):
        return [join_state_dict(v, tensors) for v in obj]
    return obj
