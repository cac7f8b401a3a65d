"""The benchmark harness runs and reports the engine that actually ran (no timing asserted)."""
from rnnkit.bench.cpu import format_table, parse_shape, run_cpu_bench

import pytest


def test_bench_rows_name_engines_and_ratios(tmp_path):
    out = tmp_path / "b.json"
    rows = run_cpu_bench(shapes=[(2, 3, 4)], repeat=1, json_path=str(out), only=["rnnkit.LSTM", "jordan", "A/A"])
    names = {r.name: r for r in rows}
    assert names["torch.nn.LSTM (A/A control)"].engine == "torch"  # the noise-floor row: torch vs torch
    assert names["rnnkit.LSTM"].engine == "native"
    assert names["jordan"].engine == "cpp"
    assert all(r.ratio > 0 and r.tokens_per_s > 0 for r in rows)
    assert "| (2, 3, 4) | jordan |" in format_table(rows)
    assert out.read_text().startswith("{")


def test_bad_shape_argument():
    import argparse
    with pytest.raises(argparse.ArgumentTypeError, match="B,T,H"):
        parse_shape("1,2")


def test_rnnkit_bench_cli_runs_the_cpu_table(tmp_path, capsys):
    from rnnkit.cli import main

    out = tmp_path / "rows.json"
    assert main(["bench", "--device", "cpu", "--shapes", "1,2,4", "--repeat", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| (1, 2, 4) | rnnkit.GRU | cpp |" in text  # auto on CPU: the C++ loop
    assert out.exists()


def test_rnnkit_bench_cuda_without_gpu_is_a_clear_error(capsys):
    import torch

    from rnnkit.cli import main

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["bench", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_paired_ratio_alternates_swaps_the_order_and_takes_the_median_of_pair_ratios(monkeypatch):
    from rnnkit.bench import timing

    clock = {"t": 0.0}
    calls = []

    def make(name, cost):
        def fn():
            calls.append(name)
            clock["t"] += cost.pop(0) if isinstance(cost, list) else cost
        return fn

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["t"])
    # ours takes 1, 1, 5 s (one slow outlier), the peer 2, 2, 10 s: every pair says 2x
    ours, peer = make("ours", [9.0, 1.0, 1.0, 5.0]), make("peer", [9.0, 2.0, 2.0, 10.0])
    s, p, ratio = timing.paired_ratio(ours, peer, repeat=3, warmup=1)
    assert calls == ["ours", "peer"] * 2 + ["peer", "ours", "ours", "peer"]  # warm-up, then swapped pairs
    assert (s, p, ratio) == (1.0, 2.0, 2.0)
