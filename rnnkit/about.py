"""What this installation is and can do: ``rnnkit --version`` and ``rnnkit doctor``.

``environment_report()`` gathers the versions, the CPU's features, which engines can run here (and why
not), and where the caches live with their sizes; ``report_lines()`` words it; ``build_kernels()`` builds
the C++ kernels in the foreground (``rnnkit doctor --build``). The CLI only prints.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import torch

from rnnkit.version import __version__
from rnnkit.data.cache import KINDS, data_cache_dir
from rnnkit.data.corpus import stdlib_dir
from rnnkit.engines.cpp import build as cpp_build


@dataclass
class EngineStatus:
    name: str
    available: bool
    detail: str


@dataclass
class CacheInfo:
    what: str
    path: Path
    size_bytes: int  # 0 when the folder does not exist
    note: str = ""


@dataclass
class EnvironmentReport:
    rnnkit: str
    torch: str
    torch_build: str
    python: str
    platform: str
    cpu_capability: str
    cpu_flags: List[str]
    cpu_count: int
    engines: List[EngineStatus] = field(default_factory=list)
    caches: List[CacheInfo] = field(default_factory=list)


def version_line() -> str:
    """``rnnkit --version``: rnnkit, torch (and its build) and Python."""
    return f"rnnkit {__version__} (torch {torch.__version__}, {_torch_build()}; Python {platform.python_version()})"


def _torch_build() -> str:
    if torch.version.cuda:
        return f"CUDA {torch.version.cuda}"
    if getattr(torch.version, "hip", None):
        return f"ROCm {torch.version.hip}"
    return "CPU only"


def _cpu_flags() -> List[str]:
    """The vector-instruction flags of /proc/cpuinfo that matter here (empty where it does not exist)."""
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "neon", "asimd")
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return [f for f in wanted if f in have]
    return []


def folder_size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def cpp_status() -> EngineStatus:
    """The cpp engine: disabled, built (and loaded?), being built, failed, or what is missing to build it.
    Looking does not start a build."""
    reason = cpp_build.disabled_reason()
    if reason:
        return EngineStatus("cpp", False, reason)
    folder = cpp_build.cache_dir()
    build = cpp_build.current()
    if build.ops is not None:
        return EngineStatus("cpp", True, f"C++ kernels loaded from {folder}")
    if build.error is not None:
        return EngineStatus("cpp", False, build.error)
    if cpp_build.is_built(folder):
        took = cpp_build.build_seconds(folder)
        return EngineStatus("cpp", True, f"C++ kernels built in {folder}" + (f" (in {took:.0f} s)" if took else ""))
    if build.proc is not None:
        return EngineStatus("cpp", False, build.building_reason())
    others = sorted(folder.parent.glob(f".{folder.name}.tmp-*"))
    if others:
        done, total = build.progress()
        steps = f", {done}/{total} build steps done" if total else ""
        return EngineStatus("cpp", False, f"kernels are being built by another process (in {others[0]}{steps})")
    missing = []
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        missing.append(f"no C++ compiler ({cxx} is not on PATH; install g++ or clang++)")
    if importlib.util.find_spec("ninja") is None:
        missing.append("no ninja (pip install ninja)")
    if missing:
        return EngineStatus("cpp", False, "cannot be built: " + "; ".join(missing))
    return EngineStatus("cpp", False, f"not built yet: the first use builds it in the background (about "
                                      f"{cpp_build.MEASURED_CPU_S} CPU-seconds), or run `rnnkit doctor --build`")


def gpu_status() -> List[EngineStatus]:
    has_cuda = torch.cuda.is_available()
    cuda = (f"CUDA device {torch.cuda.get_device_name(0)}" if has_cuda else
            "no CUDA device" + ("" if torch.version.cuda else " (this torch is a CPU-only build)"))
    triton = importlib.util.find_spec("triton") is not None
    triton_why = "" if triton else "; triton is not installed (pip install 'rnnkit[gpu]')"
    return [EngineStatus("cudnn (native on GPU)", has_cuda, cuda),
            EngineStatus("triton, triton_scan", has_cuda and triton, cuda + triton_why)]


def engine_statuses() -> List[EngineStatus]:
    onednn = torch.backends.mkldnn.is_available()
    return [EngineStatus("reference", True, "the step-by-step autograd loop (always)"),
            EngineStatus("bptt", True, "explicit-BPTT time loops in torch (always)"),
            EngineStatus("native", True, "torch's fused RNNs" + (", oneDNN on the CPU" if onednn else "")),
            EngineStatus("scan", True, "parallel scan for minimal RNNs (torch)"),
            EngineStatus("export", True, "the reference loop as torch's scan, for `rnnkit export` (only when named)"),
            cpp_status(), *gpu_status()]


def cache_infos() -> List[CacheInfo]:
    root = cpp_build.cache_root()
    folder = cpp_build.cache_dir()
    builds = sorted(p.name for p in root.glob("rnnkit*") if p.is_dir()) if root.exists() else []
    others = [b for b in builds if b != folder.name]
    note = f"this install's folder: {folder.name}" + (f"; {len(others)} other key(s) kept: {', '.join(others)}"
                                                        if others else "")
    infos = [CacheInfo("C++ kernel cache (RNNKIT_CPP_CACHE)", root, folder_size(root), note)]
    triton_dir = Path(os.environ.get("TRITON_CACHE_DIR") or Path.home() / ".triton" / "cache")
    if triton_dir.exists():
        infos.append(CacheInfo("Triton kernel cache (TRITON_CACHE_DIR)", triton_dir, folder_size(triton_dir)))
    for kind, what in KINDS.items():
        folder = data_cache_dir(kind)
        infos.append(CacheInfo(f"generated data (RNNKIT_CACHE): {what}", folder,
                               folder_size(folder) if folder.exists() else 0,
                               "" if folder.exists() else "empty: made on first use, never downloaded"))
    infos.append(CacheInfo("demo corpus (read in place, nothing cached)", stdlib_dir(), 0,
                           "the other data sets are embedded in the package; nothing is downloaded"))
    return infos


def environment_report() -> EnvironmentReport:
    return EnvironmentReport(
        rnnkit=__version__, torch=torch.__version__, torch_build=_torch_build(),
        python=f"{platform.python_version()} ({sys.executable})", platform=platform.platform(),
        cpu_capability=cpp_build._capability(), cpu_flags=_cpu_flags(), cpu_count=os.cpu_count() or 1,
        engines=engine_statuses(), caches=cache_infos())


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def report_lines(report: EnvironmentReport) -> List[str]:
    lines = [f"rnnkit     {report.rnnkit}",
             f"torch      {report.torch} ({report.torch_build})",
             f"python     {report.python}",
             f"platform   {report.platform}",
             f"cpu        {report.cpu_count} cores, torch's kernels use {report.cpu_capability}; "
             f"flags: {' '.join(report.cpu_flags) or 'unknown'}",
             "engines:"]
    width = max(len(e.name) for e in report.engines)
    for e in report.engines:
        lines.append(f"  {'yes' if e.available else 'no ':3}  {e.name:<{width}}  {e.detail}")
    lines.append("caches:")
    for c in report.caches:
        size = f", {_size(c.size_bytes)}" if c.size_bytes else ""
        lines.append(f"  {c.what}: {c.path}{size}" + (f"\n      {c.note}" if c.note else ""))
    return lines


def build_kernels() -> tuple:
    """Build (or load) the C++ kernels now, with a progress bar: (folder, seconds the build took or None)."""
    cpp_build.kernels()
    folder = cpp_build.current().folder
    return folder, cpp_build.build_seconds(folder)

