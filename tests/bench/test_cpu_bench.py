"""The benchmark harness runs and reports the engine that actually ran (no timing asserted)."""
from rnnkit.bench.cpu import format_table, parse_shape, run_cpu_bench

import pytest


def test_bench_rows_name_engines_and_ratios(tmp_path):
    out = tmp_path / "b.json"
    rows = run_cpu_bench(shapes=[(2, 3, 4)], repeat=1, json_path=str(out), only=["rnnkit.LSTM", "jordan"])
    names = {r.name: r for r in rows}
    assert names["rnnkit.LSTM"].engine == "native"
    assert names["jordan"].engine in ("bptt", "reference")
    assert all(r.ratio > 0 and r.tokens_per_s > 0 for r in rows)
    assert "| (2, 3, 4) | jordan |" in format_table(rows)
    assert out.read_text().startswith("{")


def test_bad_shape_argument():
    import argparse
    with pytest.raises(argparse.ArgumentTypeError, match="B,T,H"):
        parse_shape("1,2")
