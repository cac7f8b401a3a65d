"""Session-wide set-up: the C++ kernels are built (or loaded) once, before any test runs, so that no test
pays for the one-time build (45-130 s on 2 cores) and every auto-dispatch test sees them loaded.
`.ci/run` builds them in a step of its own first (`rnnkit doctor --build`), so in CI this only loads.

Also the fakes that let tests exercise the build machinery without a real compile."""
import sys
import textwrap

import pytest


@pytest.fixture(scope="session", autouse=True)
def cpp_kernels():
    from rnnkit.engines.cpp import build

    if build.disabled_reason() is not None:
        return None
    try:
        return build.kernels()
    except build.CppBuildError as exc:  # tests that need the kernels skip or fail with this reason
        print(f"\nrnnkit tests: the C++ kernels are unavailable: {exc}", file=sys.stderr)
        return None


#: a stand-in for the build process: prints ninja-like steps, sleeps, then fails or renames a fake build
#: folder into place (argv: folder, seconds, ok|fail, gate). With a gate file named, it compiles until the
#: test creates that file (at most 60 s), so what a test sees mid-build does not hang on the machine's load.
FAKE_BUILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    start = time.time()
    folder, seconds, fail = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "fail"
    gate = Path(sys.argv[4]) if sys.argv[4] != "-" else None
    print("[1/2] c++ -c lstm.cpp", flush=True)
    time.sleep(seconds)
    while gate is not None and not gate.exists() and time.time() < start + 60:
        time.sleep(0.02)
    if fail:
        print("lstm.cpp:12:3: error: 'foo' was not declared in this scope", flush=True)
        sys.exit(1)
    print("[2/2] c++ -shared -o rnnkit_cpu_kernels.so", flush=True)
    tmp = folder.parent / (folder.name + ".tmp")
    tmp.mkdir()
    (tmp / "rnnkit_cpu_kernels.so").write_bytes(b"fake")
    (tmp / "BUILD_INFO.json").write_text(json.dumps({"seconds": seconds}))
    tmp.rename(folder)
""")


@pytest.fixture
def fake_kernel_build(monkeypatch):
    """Build processes run FAKE_BUILD instead of the compiler; the returned dict sets its ``seconds`` and
    ``fail`` (and ``gate``: a path the build waits for). Every process started is killed at the end of the test."""
    from rnnkit.engines.cpp import build

    how = {"seconds": 0.3, "fail": False, "gate": None}
    monkeypatch.setattr(build, "child_command", lambda folder: [sys.executable, "-c", FAKE_BUILD, str(folder),
                                                               str(how["seconds"]), "fail" if how["fail"] else "ok",
                                                               str(how["gate"] or "-")])
    started = []
    real_spawn = build._spawn

    def spawn(*args, **kwargs):
        started.append(real_spawn(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(build, "_spawn", spawn)
    how["started"] = started
    yield how
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def cold_kernel_cache(monkeypatch, tmp_path):
    """This process's kernel state replaced by a cold, private cache (RNNKIT_CPP_CACHE in tmp_path). The real
    library, loaded by the session fixture, stays registered in torch.ops, so a fake build whose loader does
    nothing can serve cpp calls once it 'finishes'. Returns the fresh KernelBuild."""
    from rnnkit.engines.cpp import build

    try:
        build.kernels()
    except build.CppBuildError as exc:  # pragma: no cover - CI has a compiler
        pytest.skip(str(exc))
    monkeypatch.setenv("RNNKIT_CPP_CACHE", str(tmp_path / "kernel-cache"))
    fresh = build.KernelBuild(build.cache_dir(), loader=lambda path: None)
    monkeypatch.setitem(build._state, "build", fresh)
    return fresh


@pytest.fixture
def one_thread():
    """Tiny shapes train fastest on one torch thread, which also spares the parallel test workers' cores;
    the count is restored afterwards. Test modules take it with ``pytestmark = pytest.mark.usefixtures``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
