"""The one-step (generation) benchmark runs on tiny sizes and reports each engine it timed."""
import pytest

from rnnkit.bench.onestep import bench_one_step, main


def test_one_step_table_has_a_row_per_layer_and_size():
    table = bench_one_step([8], layers=1, repeat=1, tokens=2)
    rows = [line for line in table.splitlines() if line.startswith("| lstm") or line.startswith("| gru")]
    assert len(rows) == 2
    # one step without gradients on the CPU: torch's cell functions for LSTM, the single-step kernel for GRU
    assert "(native)" in rows[0] and "(cpp)" in rows[1]


def test_bad_option_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        main(["--layers", "0"])
    assert "--layers must be >= 1, got 0" in capsys.readouterr().err


def test_variants_table_times_auto_and_the_reference_against_the_compiled_engine(monkeypatch):
    import rnnkit.bench.onestep as onestep

    monkeypatch.setattr(onestep, "VARIANTS", [("lnlstm", "lnlstm", {}), ("jordan", "jordan", {})])
    table = onestep.bench_variants([8], layers=1, repeat=1, tokens=2)
    rows = [line for line in table.splitlines() if line.startswith("| lnlstm") or line.startswith("| jordan")]
    assert len(rows) == 2
    # the peer is the compiled engine; auto takes the reference engine's step for these calls
    assert "(cpp)" in rows[0] and "(reference)" in rows[0]
    assert "(bptt)" in rows[1] and "(reference)" in rows[1]
