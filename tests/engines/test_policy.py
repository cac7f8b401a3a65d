"""The speed policy (rnnkit.engines.policy): engines' supports() say only what they can run; measured
preferences are table rows, reported by explain() as preferences, never as incapacities; a forced engine
that can run is not refused by a preference; each row's boundary; no engine module imports layers."""
import ast
import pathlib

import pytest
import torch

import rnnkit
from rnnkit.engines import policy
from rnnkit.engines.base import EngineError
from rnnkit.engines.cpp.build import build_error
from rnnkit.engines.registry import REGISTRY
from rnnkit.layers import build_layer

ENGINES = pathlib.Path(rnnkit.__file__).parent / "engines"
needs_cpp = pytest.mark.skipif(build_error() is not None, reason="the cpp kernels cannot be built here")


def _imports(path: pathlib.Path):
    """Every module an engine file imports (TYPE_CHECKING blocks and function bodies included), resolved."""
    package = "rnnkit." + ".".join(path.relative_to(ENGINES.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            yield name
            yield from (f"{name}.{alias.name}" for alias in node.names)


def test_no_engine_module_imports_layers():
    files = sorted(ENGINES.rglob("*.py"))
    assert len(files) > 20
    bad = [(str(f.relative_to(ENGINES)), m) for f in files for m in _imports(f)
           if m == "rnnkit.layers" or m.startswith("rnnkit.layers.")]
    assert bad == []


def test_the_import_check_sees_relative_and_type_checking_imports(tmp_path):
    fake = ENGINES / "_probe_for_test.py"
    fake.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..layers.recurrent import Recurrent\n")
    try:
        assert "rnnkit.layers.recurrent" in set(_imports(fake))
    finally:
        fake.unlink()


def test_rows_are_named_measured_and_unique():
    names = [row.name for row in policy.POLICY]
    assert len(names) == len(set(names)) >= 10
    for row in policy.POLICY:
        assert row.when and row.measured and "x" in row.measured  # a measured speed ratio
        assert row.prefer == policy.NEXT or row.prefer in REGISTRY.names()
        assert row.over == (policy.ANY,) or set(row.over) <= set(REGISTRY.names())


def test_docs_print_the_table():
    docs = (ENGINES.parents[1] / "docs" / "engines.md").read_text()
    assert policy.table_markdown() in docs


def test_supports_is_capability_only_whatever_was_asked():
    """native can run a tiny DropConnect batch and a (32, 100, 128) training step: supports() says so,
    under auto and when forced, although auto prefers cpp."""
    native = REGISTRY.get("native")
    for engine in ("auto", "native"):
        layer = build_layer("lstm", 3, 4, dropconnect=0.3, engine=engine).train()
        req = layer.request("cpu", torch.float32, steps=5, batch=1, needs_grad=True)
        assert native.supports(req) is None


@needs_cpp
def test_a_preference_is_reported_as_one_and_a_forced_engine_runs():
    layer = build_layer("lstm", 3, 4, dropconnect=0.3).train()
    x = torch.randn(5, 1, 3)
    e = layer.explain(x)
    assert e.engine == "cpp" and "native" not in dict(e.rejected)
    text = str(e)
    assert "native: can run; passed over: cpp chosen over native: DropConnect in training" in text
    assert "[policy row 'dropconnect-tiny-batch']" in text
    assert "scan: cannot run:" in text
    layer.engine = "native"  # forced: the preference does not refuse it
    assert layer.run(x).engine == "native"
    assert layer.explain(x).passed_over == [] and layer.explain(x).engine == "native"


def test_a_forced_engine_that_cannot_run_raises_its_capability_reason():
    layer = build_layer("lnlstm", 3, 4, engine="native")
    with pytest.raises(EngineError, match="torch has no layer-normalised LSTM"):
        layer.run(torch.randn(2, 1, 3))


def test_a_row_whose_preferred_engine_cannot_run_does_not_apply(monkeypatch):
    monkeypatch.setenv("RNNKIT_CPP", "0")
    layer = build_layer("lstm", 3, 4, dropconnect=0.3).train()
    e = layer.explain(torch.randn(5, 1, 3))
    assert e.engine == "native" and e.passed_over == []


def _engine(layer, x, grad=True, **kw):
    with torch.set_grad_enabled(grad):
        return layer.explain(x, **kw).engine


@needs_cpp
def test_dropconnect_row_boundary():
    layer = build_layer("lstm", 3, 4, dropconnect=0.3).train()
    assert _engine(layer, torch.randn(5, policy.DROPCONNECT_MIN_BATCH - 1, 3)) == "cpp"
    assert _engine(layer, torch.randn(5, policy.DROPCONNECT_MIN_BATCH, 3)) == "native"


@needs_cpp
def test_one_sequence_row_boundary():
    H = 64
    T = policy.ONE_SEQUENCE_MIN_WORK // H
    layer = rnnkit.LSTM(H, H, dtype=torch.float64)
    assert _engine(layer, torch.randn(T, 1, H, dtype=torch.float64)) == "cpp"
    assert _engine(layer, torch.randn(T - 1, 1, H, dtype=torch.float64)) == "native"


@needs_cpp
def test_one_step_rows():
    with torch.no_grad():
        gru = build_layer("gru", 4, 4)
        e = gru.explain(torch.randn(1, 2, 4))
        assert e.engine == "cpp" and "one-step-gru-kernel" in dict(e.passed_over)["native"]
        lstm = build_layer("lstm", 4, 4)
        assert lstm.explain(torch.randn(1, 2, 4)).engine == "native"  # one-step-cell-functions
        assert lstm.explain(torch.randn(2, 2, 4)).engine == "native"  # no row: the default order
        ln = build_layer("lnlstm", 4, 4)
        assert ln.explain(torch.randn(1, 2, 4)).engine == "reference"
        assert ln.explain(torch.randn(2, 2, 4)).engine == "cpp"


def test_next_row_hands_the_call_to_the_next_engine_that_can_run():
    """A row with prefer=NEXT over the first capable engine takes the next one in priority order."""
    row = policy.Preference("test-next", policy.NEXT, ("cpp",), "always", "1.0x (test)", lambda req: "always")
    saved = REGISTRY.policy
    REGISTRY.set_policy([row])
    try:
        layer = build_layer("jordan", 3, 4)
        e = layer.explain(torch.randn(3, 2, 3))
        assert e.engine == "bptt"
        assert dict(e.passed_over)["cpp"].startswith("bptt chosen over cpp: always")
    finally:
        REGISTRY.set_policy(saved)
    assert build_layer("jordan", 3, 4).explain(torch.randn(3, 2, 3)).engine != "bptt" or build_error()
