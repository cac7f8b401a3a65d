"""The C++ kernel cache and build: keyed by everything that changes the binary, built once per key (file lock,
temporary folder, atomic rename), in a background process that auto dispatch never waits for.

Real compiles take 45-130 s, so these tests use fake compile functions and fake build processes; the real
build runs once per session (tests/conftest.py)."""
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch

import rnnkit
from rnnkit.engines.cpp import build


def fake_compile(counter: Path, seconds: float = 0.0):
    """A compile function that writes a fake library, records each call in ``counter`` and takes ``seconds``."""
    def compile_fn(folder: Path) -> None:
        with open(counter, "a") as f:
            f.write(f"{os.getpid()} {folder.name}\n")
        time.sleep(seconds)
        (folder / build.LIB_FILE).write_bytes(b"not really a library")
    return compile_fn


def builds(counter: Path) -> list:
    return counter.read_text().splitlines() if counter.exists() else []


# ------------------------------------------------------------------ the key

def test_the_key_changes_with_sources_version_torch_and_flags(monkeypatch, tmp_path):
    build._key_for.cache_clear()
    base = build.build_key()
    assert build.cache_dir().parent == build.cache_root()
    name = base.folder
    assert name.startswith(f"rnnkit{rnnkit.__version__}-torch{torch.__version__.replace('+', '_')}-py3")
    assert {"rnnkit", "sources", "flags", "compiler", "torch", "torch_git", "torch_build", "cxx11_abi", "python",
            "cpu"} <= set(base.parts)

    other_tree = tmp_path / "csrc"
    shutil.copytree(build.CSRC, other_tree)
    assert build._key_for(str(other_tree), None, None).folder == name  # same sources: same folder
    (other_tree / "lstm.cpp").write_text((other_tree / "lstm.cpp").read_text() + "\n// edited\n")
    build._key_for.cache_clear()
    assert build._key_for(str(other_tree), None, None).folder != name  # an edited source: another folder

    monkeypatch.setattr(build, "__version__", "9.9.9")  # the version the key reads (rnnkit.version)
    build._key_for.cache_clear()
    assert build.build_key().folder != name and "rnnkit9.9.9" in build.build_key().folder
    monkeypatch.undo()
    build._key_for.cache_clear()

    cases = [(build, "compile_flags", lambda cap=None: ["-O0"]), (torch, "__version__", "2.99.0+cpu"),
             (torch, "compiled_with_cxx11_abi", lambda abi=torch.compiled_with_cxx11_abi(): not abi),
             (build, "_capability", lambda: "DEFAULT"), (build, "_compiler", lambda: "c++: clang 99")]
    for owner, attr, value in cases:
        with monkeypatch.context() as patch:
            patch.setattr(owner, attr, value)
            build._key_for.cache_clear()
            assert build.build_key().folder != name, attr
    build._key_for.cache_clear()
    assert build.build_key().folder == name
    assert "-mavx2" in build.compile_flags("AVX2") and "-mavx2" not in build.compile_flags("DEFAULT")


# -------------------------------------------------------- building one folder

def test_two_installs_never_rebuild_each_others_kernels(tmp_path):
    """Two keys (two installs, two rnnkit versions) live side by side; each builds once, whatever the order."""
    counter = tmp_path / "builds.txt"
    a, b = tmp_path / "rnnkit0.1.0-a", tmp_path / "rnnkit0.2.0-b"
    assert build.build_into(a, fake_compile(counter)) is True
    a_lib = (a / build.LIB_FILE).stat().st_mtime_ns
    assert build.build_into(b, fake_compile(counter)) is True
    for _ in range(2):
        assert build.build_into(a, fake_compile(counter)) is False
        assert build.build_into(b, fake_compile(counter)) is False
    pid = os.getpid()
    assert [line.split()[1] for line in builds(counter)] == [f".{a.name}.tmp-{pid}", f".{b.name}.tmp-{pid}"]
    assert (a / build.LIB_FILE).stat().st_mtime_ns == a_lib
    assert build.is_built(a) and build.is_built(b)


def _build_and_load(folder: str, counter: str, loaded: str) -> None:  # runs in a forked process
    build.build_into(Path(folder), fake_compile(Path(counter), seconds=0.5))
    kb = build.KernelBuild(Path(folder), loader=lambda path: open(loaded, "a").write(f"{os.getpid()} {path}\n"))
    kb.wait(progress=False)
    os._exit(0 if kb.ops is not None else 1)


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_two_processes_with_one_key_build_once_and_both_load(tmp_path):
    folder, counter, loaded = tmp_path / "rnnkit-key", tmp_path / "builds.txt", tmp_path / "loaded.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_build_and_load, args=(str(folder), str(counter), str(loaded))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(builds(counter)) == 1
    lines = loaded.read_text().splitlines()
    assert len(lines) == 2 and {line.split()[1] for line in lines} == {str(folder / build.LIB_FILE)}
    assert len({line.split()[0] for line in lines}) == 2  # two processes
    assert not list(tmp_path.glob(".rnnkit-key.tmp-*"))


def test_a_failed_or_killed_build_leaves_no_half_folder(tmp_path):
    folder = tmp_path / "rnnkit-key"

    def broken(tmp: Path) -> None:
        (tmp / "lstm.o").write_bytes(b"half")
        raise RuntimeError("lstm.cpp:12:3: error: 'foo' was not declared in this scope")

    with pytest.raises(RuntimeError, match="not declared"):
        build.build_into(folder, broken)
    assert not folder.exists() and not list(tmp_path.glob(".rnnkit-key.tmp-*"))
    (tmp_path / ".rnnkit-key.tmp-999999").mkdir()  # what a killed build leaves
    folder.mkdir()  # an unfinished folder (no BUILD_INFO.json) is never loaded or reused
    assert build.build_into(folder, fake_compile(tmp_path / "builds.txt")) is True
    assert build.is_built(folder) and not list(tmp_path.glob(".rnnkit-key.tmp-*"))


# ----------------------------------------------------- the background process

def wait_until(check, timeout=30.0):
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.05)


def test_a_background_build_is_reported_then_loaded(tmp_path, fake_kernel_build, capsys):
    loaded = []
    kb = build.KernelBuild(tmp_path / "rnnkit-key", loader=loaded.append)
    t0 = time.perf_counter()
    reason = kb.status()
    assert time.perf_counter() - t0 < 0.5  # never waits for the build
    assert "being built in the background" in reason
    assert "building the C++ CPU kernels in the background" in capsys.readouterr().err
    wait_until(lambda: "1/2 build steps" in (kb.status() or ""))
    generation = kb.generation
    wait_until(lambda: kb.status() is None)
    assert loaded == [str(tmp_path / "rnnkit-key" / build.LIB_FILE)] and kb.generation > generation
    assert "the C++ kernels are ready" in capsys.readouterr().err
    assert not kb.log_path.exists()


def test_a_failed_background_build_names_the_compilers_error_once(tmp_path, fake_kernel_build, capsys):
    fake_kernel_build["fail"] = True
    kb = build.KernelBuild(tmp_path / "rnnkit-key", loader=lambda path: None)
    kb.status()
    wait_until(lambda: kb.poll() or kb.error is not None)
    for _ in range(3):
        assert "lstm.cpp:12:3: error: 'foo' was not declared" in kb.status()
    err = capsys.readouterr().err
    assert err.count("failed (lstm.cpp:12:3: error") == 1 and str(kb.log_path) in err
    with pytest.raises(build.CppBuildError, match="not declared"):
        kb.wait(progress=False)


def test_auto_runs_other_engines_while_building_then_takes_cpp(cold_kernel_cache, fake_kernel_build):
    fake_kernel_build["seconds"] = 1.0
    layer = rnnkit.GRU(8, 16)  # the cpp engine goes first for GRUs on the CPU
    x = torch.randn(5, 3, 8)
    explanation = layer.explain(x)
    assert explanation.engine != "cpp" and "being built" in dict(explanation.rejected)["cpp"]
    assert layer.run(x).engine != "cpp"
    wait_until(lambda: cold_kernel_cache.status() is None)
    assert layer.run(x).engine == "cpp"


def test_the_one_step_memo_picks_cpp_up_when_the_build_finishes(cold_kernel_cache, fake_kernel_build):
    fake_kernel_build["seconds"] = 1.0
    layer = rnnkit.GRU(8, 16).eval()
    x = torch.randn(1, 1, 8)
    with torch.no_grad():
        assert layer.run(x).engine != "cpp"
        assert layer.run(x).engine != "cpp"  # (kept by the memo)
        wait_until(lambda: cold_kernel_cache.proc is not None and cold_kernel_cache.proc.poll() is not None)
        assert layer.run(x).engine == "cpp"  # the memo's key changed with the build's state


def test_a_forced_cpp_layer_waits_for_the_build(cold_kernel_cache, fake_kernel_build, capsys):
    fake_kernel_build["seconds"] = 1.0
    layer = rnnkit.GRU(8, 16, engine="cpp")
    t0 = time.perf_counter()
    waited0 = build.waited_seconds()
    assert layer.run(torch.randn(5, 3, 8)).engine == "cpp"
    assert time.perf_counter() - t0 >= 0.9
    assert build.waited_seconds() - waited0 >= 0.9  # a training budget can leave it out
    assert "building the C++ CPU kernels now" in capsys.readouterr().err


def test_disabled_by_the_environment_starts_no_build(cold_kernel_cache, fake_kernel_build, monkeypatch):
    monkeypatch.setenv("RNNKIT_CPP", "0")
    assert build.build_error() == "disabled by the environment variable RNNKIT_CPP=0"
    assert cold_kernel_cache.proc is None


def test_deterministic_training_settles_the_kernels_before_its_first_update(cold_kernel_cache, fake_kernel_build,
                                                                            capsys, tmp_path, monkeypatch):
    """A deterministic run must see the same engines throughout (and after a resume): it waits for a build
    that is still running instead of switching from native/bptt to cpp when the build lands mid-run. A run
    that is not deterministic never waits."""
    from rnnkit.config import TrainConfig
    from rnnkit.train import ModelOutput
    from rnnkit.train.trainer import Trainer

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = rnnkit.GRU(4, 8)
            self.engines = []

        def forward(self, batch):
            self.engines.append(self.gru.explain(batch).engine)
            out, _ = self.gru(batch)
            return ModelOutput(out, out.pow(2).mean(), n=batch.shape[1])

    data = [torch.randn(5, 2, 4) for _ in range(3)]
    fake_kernel_build["seconds"] = 0.0
    fake_kernel_build["gate"] = gate = tmp_path / "compiled"  # the build goes on until the gate is opened:
    real_watch = cold_kernel_cache._watch                      # by the first foreground wait for it

    def watch(*args, **kwargs):
        gate.touch()
        return real_watch(*args, **kwargs)

    monkeypatch.setattr(cold_kernel_cache, "_watch", watch)
    assert build.build_error() is not None  # a background build has started
    quick = dict(epochs=1, progress="none", tensorboard="off", eval_every=0)
    free = Tiny()
    Trainer(free, TrainConfig(**quick)).fit(data)
    assert free.engines and "cpp" not in free.engines  # not deterministic: trained on without waiting
    assert not gate.exists()  # and never waited for the build
    waited0 = build.waited_seconds()
    settled = Tiny()
    threads = torch.get_num_threads()
    try:
        Trainer(settled, TrainConfig(deterministic=True, threads=1, **quick)).fit(data)
    finally:  # deterministic mode sets process-wide switches
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)
    assert settled.engines == ["cpp"] * len(settled.engines)  # the build settled before the first update
    assert build.waited_seconds() > waited0  # and the wait is left out of a time budget
