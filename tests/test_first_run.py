"""A new user's first commands: `rnnkit --version`, `rnnkit doctor [--build]` and `rnnkit demo` from a cold
kernel cache. The demo's training must get its whole budget however long the one-time C++ build takes, and a
run that learned nothing must say so and fail instead of printing noise as generated text."""
import re
import time

import pytest
import torch

import rnnkit
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.engines.cpp import build
from rnnkit.tasks.lm.demo_check import learning_verdict, unigram_nats


@pytest.fixture
def small_demo(monkeypatch):
    """The shipped demo, shrunk so a run takes seconds."""
    from rnnkit.tasks import TASKS
    real = TASKS["lm"].load_preset

    def small(name):
        return C.merge(real(name), {"model": {"hidden": 32}, "data": {"max_chars": 30000},
                                    "train": {"epochs": 1000, "eval_every": 50, "max_eval_batches": 2,
                                              "progress": "plain", "diagnose": False}})
    monkeypatch.setattr(TASKS["lm"], "load_preset", small)


def _updates_and_training_seconds(out: str) -> tuple:
    m = re.search(r"\((\d+) updates, (\d+) s training, (\d+) s with evaluations", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def test_demo_from_a_cold_cache_trains_for_its_whole_budget(tmp_path, capsys, small_demo, cold_kernel_cache,
                                                            fake_kernel_build):
    """The kernels 'build' for 60 s in the background (a fake, slow build): the demo neither waits for them nor
    counts them; its 2 s of training happen on the other engines. (How many updates 2 s buy depends on the
    machine's load, so the learning verdict is tested on its own below.)"""
    fake_kernel_build["seconds"] = 60
    t0 = time.perf_counter()
    code = main(["demo", "--seconds", "2", "--out", str(tmp_path / "demo"), "--length", "20"])
    wall = time.perf_counter() - t0
    captured = capsys.readouterr()
    assert "building the C++ CPU kernels in the background" in captured.err
    assert cold_kernel_cache.proc is not None and cold_kernel_cache.proc.poll() is None  # still building
    assert wall < 50, captured  # it did not wait for the build
    updates, train_s = _updates_and_training_seconds(captured.out)
    assert 2 <= train_s <= 3 and updates > 1, captured
    assert code == 0 or (code == 3 and "NOTHING LEARNED" in captured.err), captured


def test_a_demo_that_learned_nothing_says_so_and_fails(tmp_path, capsys, small_demo):
    code = main(["demo", "--seconds", "0.01", "--out", str(tmp_path / "demo"), "--length", "20"])
    captured = capsys.readouterr()
    assert code == 3
    assert "NOTHING LEARNED" in captured.err and "updates" in captured.err
    assert "--- generated" not in captured.out


def test_the_learning_verdict():
    unigram = unigram_nats(["aab" * 50], ["abab" * 10])
    assert 0.5 < unigram < 1.0  # close to the entropy of (2/3, 1/3)
    assert learning_verdict(10, 0.1, unigram) is not None  # too few updates
    assert "unigram" in learning_verdict(500, unigram + 0.01, unigram)
    assert learning_verdict(500, float("nan"), unigram) is not None
    assert learning_verdict(500, unigram - 0.2, unigram) is None


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"rnnkit {rnnkit.__version__}" in out and torch.__version__ in out and "Python 3." in out


def test_doctor_reports_engines_and_caches(capsys, cold_kernel_cache, fake_kernel_build, tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "data-cache"))
    (tmp_path / "data-cache" / "speech").mkdir(parents=True)
    (tmp_path / "data-cache" / "speech" / "x.wav").write_bytes(b"0" * 2048)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"rnnkit     {rnnkit.__version__}" in out and torch.__version__ in out
    assert re.search(r"no\s+cpp\s+not built yet", out), out
    assert re.search(r"yes\s+bptt", out) and "triton" in out
    assert str(build.cache_root()) in out and build.cache_dir().name in out
    assert fake_kernel_build["started"] == []  # looking starts no build
    assert f"{tmp_path / 'data-cache' / 'speech'}, 2.0 KB" in out  # the generated data caches, with sizes
    assert f"{tmp_path / 'data-cache' / 'music'}" in out and "made on first use" in out


def test_doctor_build_builds_in_the_foreground(capsys, cold_kernel_cache, fake_kernel_build):
    assert main(["doctor", "--build"]) == 0
    captured = capsys.readouterr()
    assert "building the C++ CPU kernels now" in captured.err and "1/2 steps" in captured.err
    assert f"C++ kernels ready in {build.cache_dir()}" in captured.out
    assert re.search(r"yes\s+cpp\s+C\+\+ kernels loaded", captured.out), captured.out


def test_doctor_build_reports_a_failed_build(capsys, cold_kernel_cache, fake_kernel_build):
    fake_kernel_build["fail"] = True
    assert main(["doctor", "--build"]) == 1
    assert "lstm.cpp:12:3: error: 'foo' was not declared" in capsys.readouterr().err
