"""Build and load rnnkit's C++ CPU kernels (``csrc/*.cpp``) on first use.

They are compiled against the installed torch with ``torch.utils.cpp_extension.load`` (gcc or clang
and ninja; about ten seconds, once) into a cache folder keyed by the torch version, the Python
version and the CPU's vector capability, so a changed torch or a different machine sharing the
home folder rebuilds instead of loading an incompatible library. Edited sources rebuild as well
(torch hashes them). The operators register as ``torch.ops.rnnkit_cpu.*``.

Environment:
  RNNKIT_CPP=0            do not build or use the kernels (the engine then says it is disabled)
  RNNKIT_CPP_CACHE=DIR    where builds are kept (default: ~/.cache/rnnkit/cpp)
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import List, Optional

import torch

#: the kernel sources, compiled into one library
SOURCES = ("lstm.cpp", "gru.cpp", "elman.cpp", "jordan.cpp", "blas.cpp", "panel_mm.cpp", "panel_avx2.cpp",
           "step.cpp", "pool.cpp")
CSRC = Path(__file__).resolve().parent / "csrc"


class CppBuildError(RuntimeError):
    """The kernels are disabled or could not be built; the message says why."""


_lock = threading.Lock()
_state = {"ops": None, "error": None}


def _capability() -> str:
    try:
        return torch.backends.cpu.get_cpu_capability()  # "DEFAULT", "AVX2", "AVX512", ...
    except AttributeError:  # pragma: no cover - very old torch
        return "DEFAULT"


def compile_flags(capability: Optional[str] = None) -> List[str]:
    """C++ flags: -O3, OpenMP (torch's at::parallel_for is inline OpenMP) and AVX2/FMA where the CPU has them."""
    cap = (capability or _capability()).upper()
    flags = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-fno-semantic-interposition"]
    if cap.startswith("AVX"):
        flags += ["-mavx2", "-mfma"]
    return flags


def cache_dir() -> Path:
    """The build folder for this torch, Python and CPU capability."""
    root = Path(os.environ.get("RNNKIT_CPP_CACHE", Path.home() / ".cache" / "rnnkit" / "cpp"))
    tag = f"torch{torch.__version__.replace('+', '_')}-py{sys.version_info[0]}{sys.version_info[1]}-{_capability().lower()}"
    return root / tag


def disabled_reason() -> Optional[str]:
    if os.environ.get("RNNKIT_CPP", "1").strip().lower() in ("0", "false", "no", "off"):
        return "disabled by the environment variable RNNKIT_CPP=0"
    return None


def kernels():
    """``torch.ops.rnnkit_cpu``, building the library on first use; CppBuildError says why not."""
    reason = disabled_reason()
    if reason:
        raise CppBuildError(reason)
    ops = _state["ops"]
    if ops is not None:  # set once, under the lock, and never unset: no lock needed to read it
        return ops
    with _lock:
        if _state["ops"] is None and _state["error"] is None:
            try:
                _build()
                _state["ops"] = torch.ops.rnnkit_cpu
            except CppBuildError as exc:
                _state["error"] = str(exc)
        if _state["error"] is not None:
            raise CppBuildError(_state["error"])
        return _state["ops"]


def loaded_kernels():
    """``torch.ops.rnnkit_cpu`` if this process has built or loaded the library already, else None."""
    return _state["ops"]


def _build() -> None:
    try:
        from torch.utils import cpp_extension
    except ImportError as exc:  # pragma: no cover - torch always ships it
        raise CppBuildError(f"torch.utils.cpp_extension is unavailable ({exc})") from exc
    try:
        import ninja  # noqa: F401  (cpp_extension.load needs the ninja build tool)
    except ImportError as exc:
        raise CppBuildError("the 'ninja' package is not installed (pip install ninja)") from exc
    out = cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    name = "rnnkit_cpu_kernels"
    if not (out / f"{name}.so").exists():
        print(f"rnnkit: compiling the C++ CPU kernels (first use only, about 10-30 s) into {out}",
              file=sys.stderr, flush=True)
    flags = compile_flags()
    try:
        with _build_lock(out):
            cpp_extension.load(name=name, sources=[str(CSRC / s) for s in SOURCES], extra_cflags=flags,
                               extra_ldflags=["-fopenmp"], build_directory=str(out), is_python_module=False,
                               verbose=False)
    except (RuntimeError, OSError, ImportError) as exc:  # compiler missing or failing: say so, with the cause
        detail = _error_line(str(exc)) or type(exc).__name__
        raise CppBuildError(f"building the C++ kernels in {out} failed ({detail}); a C++ compiler (g++ or "
                            f"clang++) is needed; set RNNKIT_CPP=0 to stop trying") from exc


@contextlib.contextmanager
def _build_lock(out: Path):
    """Hold an OS lock (released by the kernel if this process dies) while torch builds or loads.

    torch's own ``lock`` file in the build folder is a plain file that a killed build leaves behind,
    after which every later ``cpp_extension.load`` waits on it forever. Under our OS lock no other
    rnnkit process can be building, so a ``lock`` file found then is stale and is removed."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: torch's own lock only
        yield
        return
    with open(out / "rnnkit-build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            stale = out / "lock"
            if stale.exists():
                print(f"rnnkit: removing {stale}, left by a build that was killed", file=sys.stderr, flush=True)
                stale.unlink()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _error_line(text: str) -> str:
    """The compiler's first 'error' line of a failed build (else its last line)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() and not line.lower().startswith("error building extension"):
            return line
    return lines[-1] if lines else ""


def build_error() -> Optional[str]:
    """Why the kernels cannot be used (building them if that was not tried yet), or None."""
    try:
        kernels()
    except CppBuildError as exc:
        return str(exc)
    return None
