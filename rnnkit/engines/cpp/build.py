"""Build and load rnnkit's C++ CPU kernels (``csrc/*.cpp``): once per install, never inside a caller's budget.

The library is compiled against the installed torch with ``torch.utils.cpp_extension`` (a C++ compiler and
ninja). Measured on a 2-core machine: about 85 CPU-seconds, so 45-130 s of wall time depending on how many
cores are free. Hence:

* **auto dispatch never waits.** The first call that could use the kernels starts the build in a separate
  *process* (``python -m rnnkit.engines.cpp.build``; a process, so the GIL does not slow the caller, but it
  does take one CPU core while it compiles) and meanwhile the cpp engine answers "being built"; the native and
  bptt engines serve. When the child finishes, the next call loads the library and the cpp engine serves.
* **a forced ``engine="cpp"``, ``kernels()`` and ``rnnkit doctor --build`` wait**, with a progress bar.
  The time spent waiting is counted (``waited_seconds()``) so a training budget can leave it out.

The cache (``cache_dir()``) is one folder per *key*: a hash of everything that changes the binary (rnnkit
version, the C++ sources, the compiler flags and the compiler, torch's version, git commit, CUDA/CPU build
and C++ ABI, the Python version, the CPU capability), with a readable prefix. A folder is immutable once it
exists: builds go into a temporary folder under a file lock and are renamed into place when they have
loaded, so two installs never rebuild each other's kernels and two processes with the same key build once
(the second waits on the lock, then loads the first one's library).

Environment:
  RNNKIT_CPP=0            do not build or use the kernels (the engine then says it is disabled)
  RNNKIT_CPP_CACHE=DIR    where builds are kept (default: ~/.cache/rnnkit/cpp)
  MAX_JOBS=N              compiler processes of a build (default: 1 in the background, all cores in front)
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from rnnkit.version import __version__

#: the kernel sources, compiled into one library
SOURCES = ("lstm.cpp", "gru.cpp", "elman.cpp", "jordan.cpp", "blas.cpp", "panel_mm.cpp", "panel_avx2.cpp",
           "step.cpp", "pool.cpp")
CSRC = Path(__file__).resolve().parent / "csrc"
LIB_NAME = "rnnkit_cpu_kernels"
LIB_FILE = f"{LIB_NAME}.so"
#: written last into a finished build folder: the key's parts and the build's duration
INFO_FILE = "BUILD_INFO.json"
#: the measured cost of one build (2-core AMD Zen 3, gcc 12, torch 2.13): what the messages promise
MEASURED_CPU_S = 85
#: ninja's progress lines in a build log: "[3/10] c++ ..."
_NINJA_STEP = re.compile(r"^\[(\d+)/(\d+)\]", re.M)


class CppBuildError(RuntimeError):
    """The kernels are disabled or could not be built; the message says why."""


def disabled_reason() -> Optional[str]:
    if os.environ.get("RNNKIT_CPP", "1").strip().lower() in ("0", "false", "no", "off"):
        return "disabled by the environment variable RNNKIT_CPP=0"
    return None


# ------------------------------------------------------------------ the key

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


def cache_root() -> Path:
    return Path(os.environ.get("RNNKIT_CPP_CACHE") or Path.home() / ".cache" / "rnnkit" / "cpp")


def _compiler() -> str:
    """The C++ compiler torch will call and its version line ("none" when there is none)."""
    cxx = os.environ.get("CXX", "c++")
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return f"{cxx}: none"
    return f"{cxx}: {out.strip().splitlines()[0] if out.strip() else 'unknown'}"


@dataclass(frozen=True)
class KernelKey:
    """Everything that changes the binary; ``folder`` names the cache folder."""

    parts: Dict[str, str]

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.parts, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def folder(self) -> str:
        p = self.parts
        torch_version = p["torch"].replace("+", "_")
        return f"rnnkit{p['rnnkit']}-torch{torch_version}-py{p['python']}-{p['cpu'].lower()}-{self.digest}"


def sources_digest(csrc: Path = CSRC) -> str:
    """sha256 of every C++ source and header, names included."""
    h = hashlib.sha256()
    for path in sorted(csrc.glob("*")):
        if path.suffix in (".cpp", ".h", ".hpp"):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _key_for(csrc: str, cxx_env: Optional[str], capability_env: Optional[str]) -> KernelKey:

    cap = _capability()
    return KernelKey({
        "rnnkit": __version__,
        "sources": sources_digest(Path(csrc)),
        "flags": " ".join(compile_flags(cap)),
        "compiler": _compiler(),
        "torch": torch.__version__,
        "torch_git": str(getattr(torch.version, "git_version", "")),
        "torch_build": f"cuda{torch.version.cuda}" if torch.version.cuda else "cpu",
        "cxx11_abi": str(torch.compiled_with_cxx11_abi()),
        "python": f"{sys.version_info[0]}{sys.version_info[1]}",
        "python_impl": sys.implementation.cache_tag or sys.implementation.name,
        "machine": platform.machine(),
        "cpu": cap,
    })


def build_key() -> KernelKey:
    return _key_for(str(CSRC), os.environ.get("CXX"), os.environ.get("ATEN_CPU_CAPABILITY"))


def cache_dir() -> Path:
    """This install's kernel folder: the cache root and the key's folder name."""
    return cache_root() / build_key().folder


def is_built(folder: Path) -> bool:
    return (folder / INFO_FILE).is_file() and (folder / LIB_FILE).is_file()


# ----------------------------------------------------------- building a key

def compile_into(folder: Path) -> None:
    """Compile and load the library in ``folder`` (verbose: ninja's "[k/n]" lines go to stdout)."""
    try:
        from torch.utils import cpp_extension
        import ninja  # noqa: F401  (cpp_extension needs the ninja build tool)
    except ImportError as exc:
        raise CppBuildError(f"cannot build: {exc} (pip install ninja)") from exc
    cpp_extension.load(name=LIB_NAME, sources=[str(CSRC / s) for s in SOURCES], extra_cflags=compile_flags(),
                       extra_ldflags=["-fopenmp"], build_directory=str(folder), is_python_module=False,
                       verbose=True)


def build_into(folder: Path, compile_fn: Callable[[Path], None] = compile_into, info: Optional[dict] = None) -> bool:
    """Make ``folder`` a finished build; True if this call built it, False if it was built already.

    Under a file lock next to it (``<folder>.lock``): a process that finds the folder finished returns at
    once; otherwise it compiles into ``.<folder>.tmp-<pid>`` and renames that into place, so a reader never
    sees half a build and a killed build leaves only a temporary folder (removed by the next builder)."""
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    if is_built(folder):
        return False
    with FileLock(str(folder.parent / f"{folder.name}.lock")):
        if is_built(folder):
            return False
        for stale in folder.parent.glob(f".{folder.name}.tmp-*"):  # under the lock, nobody else is building
            shutil.rmtree(stale, ignore_errors=True)
        if folder.exists():  # not finished (an older rnnkit's in-place build): never load or reuse it
            shutil.rmtree(folder)
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
        tmp.mkdir()
        t0 = time.time()
        try:
            compile_fn(tmp)
            record = {"key": info or {}, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      "seconds": round(time.time() - t0, 1), "pid": os.getpid()}
            (tmp / INFO_FILE).write_text(json.dumps(record, indent=1))
            os.rename(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return True


def build_seconds(folder: Path) -> Optional[float]:
    """How long the build of a finished folder took."""
    try:
        return float(json.loads((folder / INFO_FILE).read_text())["seconds"])
    except (OSError, ValueError, KeyError):
        return None


def _error_line(text: str) -> str:
    """The compiler's first 'error' line of a failed build (else its last line)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        low = line.lower()
        if "error" in low and not low.startswith("error building extension") and not low.startswith("traceback"):
            return line
    return lines[-1] if lines else ""


def progress_of(log_text: str) -> tuple:
    """(steps done, steps in all) of the ninja build in a log, (0, 0) before it starts."""
    steps = _NINJA_STEP.findall(log_text)
    return (int(steps[-1][0]), int(steps[-1][1])) if steps else (0, 0)


# ------------------------------------------------------------ the build child

def child_command(folder: Path) -> List[str]:
    """The command of a build process (tests replace it with a fake)."""
    script = "import sys; from rnnkit.engines.cpp.build import main; sys.exit(main())"
    return [sys.executable, "-c", script, str(folder)]


def _spawn(folder: Path, log_path: Path, background: bool) -> subprocess.Popen:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[3])  # the folder holding the rnnkit package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    if background and not env.get("MAX_JOBS"):
        env["MAX_JOBS"] = "1"  # one core for the compiler, the other(s) for the caller's work
    env["RNNKIT_CPP"] = "1"
    log = open(log_path, "w")
    try:
        # a session of its own: Ctrl-C on the caller does not kill a build that is half done
        return subprocess.Popen(child_command(folder), stdout=log, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        log.close()


def main(argv: Optional[List[str]] = None) -> int:
    """The build process (``child_command``): builds FOLDER, which must be the folder this process's key gives."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0])
    if folder != cache_dir():
        print(f"rnnkit build: {folder} is not this environment's kernel folder ({cache_dir()})", flush=True)
        return 2
    print(f"rnnkit build: {folder} (waiting for the lock if another process is building it)", flush=True)
    try:
        built = build_into(folder, info=build_key().parts)
    except (CppBuildError, RuntimeError, OSError, ImportError) as exc:
        print(f"\nrnnkit build failed: {exc}", flush=True)
        return 1
    print("rnnkit build: done" if built else "rnnkit build: built by another process", flush=True)
    return 0


# ------------------------------------------------- one key's build, per process

def _say(text: str) -> None:
    print(f"rnnkit: {text}", file=sys.stderr, flush=True)


class KernelBuild:
    """The kernels of one cache folder in this process: loaded, being built by a child, or failed."""

    def __init__(self, folder: Path, loader: Callable[[str], None] = torch.ops.load_library):
        self.folder = folder
        self.loader = loader
        self.ops = None
        self.error: Optional[str] = None
        self.proc: Optional[subprocess.Popen] = None
        self.started: Optional[float] = None  # time.monotonic() of the start
        self.log_path = folder.parent / f".{folder.name}.build-{os.getpid()}.log"
        self.generation = 0  # bumped whenever the answer of status() changes
        self._lock = threading.RLock()

    # --- answers
    def status(self, start: bool = True) -> Optional[str]:
        """None when the kernels are loaded, else why not; starts a background build if none runs. Never waits
        for a build (loading a finished one takes a fraction of a second)."""
        if self.ops is not None:
            return None
        with self._lock:
            self.poll()
            if self.ops is None and self.error is None and self.proc is None:
                if is_built(self.folder):
                    self._load()
                elif start:
                    self._start(background=True)
            if self.ops is not None:
                return None
            if self.error is not None:
                return self.error
            return self.building_reason() if self.proc is not None else "the C++ kernels are not built yet"

    def building_reason(self) -> str:
        done, total = self.progress()
        steps = f", {done}/{total} build steps done" if total else ""
        return (f"kernels are being built in the background (started {self.elapsed():.0f} s ago{steps}); "
                f"the next calls use them once they are ready")

    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started is not None else 0.0

    def progress(self) -> tuple:
        """(steps done, steps in all) of the furthest build of this folder: ours, or another process's that
        ours waits for (every builder logs to ``.<folder>.build-<pid>.log``)."""
        best = (0, 0)
        for log in self.folder.parent.glob(f".{self.folder.name}.build-*.log"):
            try:
                best = max(best, progress_of(log.read_text(errors="replace")))
            except OSError:  # finished and removed meanwhile
                continue
        return best

    # --- actions
    def poll(self) -> None:
        """Take a finished child's result: load the library, or record its error (said once)."""
        with self._lock:
            if self.proc is None or self.proc.poll() is None:
                return
            code, self.proc = self.proc.returncode, None
            log = self._read_log()
            if code == 0 and is_built(self.folder):
                self._load()
                if self.ops is not None:
                    took = build_seconds(self.folder)
                    _say(f"the C++ kernels are ready ({self.elapsed():.0f} s after the build started"
                         + (f", {took:.0f} s compiling" if took else "") + "); the cpp engine serves from now on")
                    self.log_path.unlink(missing_ok=True)
            else:
                detail = _error_line(log) or f"the build process exited with status {code}"
                self._fail(f"building the C++ kernels in {self.folder} failed ({detail}); full log: {self.log_path}; "
                           f"a C++ compiler (g++ or clang++) and ninja are needed; set RNNKIT_CPP=0 to stop trying")
                _say(self.error)

    def wait(self, progress: bool = True, poll_s: float = 0.25):
        """The loaded kernels, building them in the foreground (or waiting for the running build) first."""
        with self._lock:
            self.poll()
            if self.ops is None and self.error is None and self.proc is None:
                if is_built(self.folder):
                    self._load()
                else:
                    self._start(background=False)
            if self.proc is not None:
                self._watch(progress, poll_s)
            if self.error is not None:
                raise CppBuildError(self.error)
            return self.ops

    def _start(self, background: bool) -> None:
        where = "in the background" if background else "now"
        cores = "one core (MAX_JOBS=1)" if background and not os.environ.get("MAX_JOBS") else "all cores"
        meanwhile = (" Meanwhile the native and bptt engines run; the cpp engine takes over when it is ready."
                     if background else "")
        _say(f"building the C++ CPU kernels {where}, once per install (measured: about {MEASURED_CPU_S} CPU-seconds, "
             f"1-2 minutes on a 2-core machine; it uses {cores}) into {self.folder}.{meanwhile} "
             f"`rnnkit doctor --build` builds them up front.")
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.proc = _spawn(self.folder, self.log_path, background)
        except OSError as exc:
            self._fail(f"cannot start the C++ kernel build ({exc})")
            return
        self.started = time.monotonic()
        self.generation += 1

    def _watch(self, progress: bool, poll_s: float) -> None:
        """Wait for the build process: a tqdm bar of ninja's steps on a terminal, a line per step otherwise."""
        t0 = time.perf_counter()
        bar, shown = None, (-1, -1)
        if progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=len(SOURCES) + 1, desc="rnnkit: building C++ kernels", file=sys.stderr,
                       bar_format="{desc} |{bar:12}| {n}/{total} steps [{elapsed}]")
        try:
            while self.proc is not None:
                step = self.progress()
                if bar is not None:
                    bar.total, bar.n = step[1] or bar.total, step[0]
                    bar.refresh()
                elif progress and step != shown and step[1]:
                    _say(f"building C++ kernels: {step[0]}/{step[1]} steps, {time.perf_counter() - t0:.0f} s")
                shown = step
                time.sleep(poll_s)
                self.poll()
        finally:
            if bar is not None:
                bar.close()
            _state["waited"] += time.perf_counter() - t0

    def cancel(self) -> None:
        """Stop a running build process (its temporary folder is removed by the next builder)."""
        with self._lock:
            if self.proc is not None:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                self.generation += 1

    def _load(self) -> None:
        try:
            self.loader(str(self.folder / LIB_FILE))
            self.ops = torch.ops.rnnkit_cpu
        except (OSError, RuntimeError) as exc:
            self._fail(f"loading {self.folder / LIB_FILE} failed ({exc}); delete {self.folder} to rebuild")
        self.generation += 1

    def _fail(self, message: str) -> None:
        self.error = message
        self.generation += 1

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


# ------------------------------------------------- the module-level interface

_lock = threading.Lock()
#: this process's KernelBuild, and the seconds it spent waiting for builds in the foreground
_state: Dict[str, object] = {"build": None, "waited": 0.0}


def current() -> KernelBuild:
    """This process's build: the loaded one (a library cannot be unloaded), else the one of ``cache_dir()``."""
    build = _state["build"]
    if build is not None and build.ops is not None:
        return build
    with _lock:
        folder = cache_dir()
        if build is None or build.folder != folder:  # (a build of another folder runs on; its result stays on disk)
            build = _state["build"] = KernelBuild(folder)
        return build


def kernels():
    """``torch.ops.rnnkit_cpu``, waiting for (or running) the build first; CppBuildError says why not."""
    reason = disabled_reason()
    if reason:
        raise CppBuildError(reason)
    return current().wait()


def settle() -> Optional[str]:
    """Wait (in the foreground, counted in :func:`waited_seconds`) until the kernels are loaded or have
    failed, so that the engines ``auto`` may pick stay the same for the rest of the process. Deterministic
    training calls it: a background build finishing mid-run (or only in the resumed process) would move
    calls from the native or bptt engine to cpp and change the low bits. Returns :func:`build_error`'s
    answer, which from then on does not change."""
    if disabled_reason() is None:
        try:
            kernels()
        except CppBuildError:
            pass  # a failed build stays failed: build_error() below reports it, and cpp serves no call
    return build_error()


def loaded_kernels():
    """``torch.ops.rnnkit_cpu`` if this process has loaded the library already, else None."""
    build = _state["build"]
    return build.ops if build is not None else None


def build_error() -> Optional[str]:
    """Why the kernels cannot be used right now (None: they can). Starts a background build when none is
    built or running; never waits for one."""
    reason = disabled_reason()
    if reason:
        return reason
    return current().status()


def state_token() -> tuple:
    """Changes whenever the answer of ``build_error()`` may change (a build finished, RNNKIT_CPP flipped)."""
    build = _state["build"]
    if build is not None and build.ops is None:
        build.poll()
    return (os.environ.get("RNNKIT_CPP"), id(build), build.generation if build is not None else -1)


def waited_seconds() -> float:
    """Seconds this process has spent waiting in the foreground for kernel builds."""
    return _state["waited"]

