"""The package's imports, read with ``ast``: no cycle, dependencies point down, the CLI names no task.

Layers, top to bottom: cli -> serve / export / tune -> tasks -> modules / data / metrics / train / config / bench -> layers ->
engines -> cells. Module-level and function-level imports both count.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rnnkit
from rnnkit.tasks import TASKS

ROOT = Path(rnnkit.__file__).parent
LAYERS = {"cli": 6, "serve": 5, "export": 5, "tune": 5, "tasks": 4, "modules": 3, "data": 3, "metrics": 3, "train": 3, "config": 3, "bench": 3,
          "layers": 2, "engines": 1, "cells": 0}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str) -> str | None:
    """The module ``name`` names, or its longest prefix that is a module of the package."""
    parts = name.split(".")
    while parts:
        base = ROOT.parent.joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return None


def imports_of(path: Path) -> set[str]:
    """Every rnnkit module ``path`` imports, anywhere in the file (``from a import b`` counts a.b if a module)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from a import b`: the submodule a.b when there is one, else (an attribute of a) the module a
            names = [f"{base}.{a.name}" if _resolve(f"{base}.{a.name}") == f"{base}.{a.name}" else base
                     for a in node.names]
        else:
            continue
        for name in names:
            if name == "rnnkit" or name.startswith("rnnkit."):
                target = _resolve(name)
                if target and target != me:
                    found.add(target)
    return found


GRAPH = {module_name(p): imports_of(p) for p in ROOT.rglob("*.py")}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(GRAPH.get(m, ())):
            if state.get(n) == 1:
                cycle = path[path.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_dependencies_point_down():
    upward = sorted((m, n) for m, targets in GRAPH.items() for n in targets
                    if layer(m) is not None and layer(n) is not None and layer(n) > layer(m))
    assert not upward, "imports against the layering: " + ", ".join(f"{m} -> {n}" for m, n in upward)


def test_no_task_imports_the_cli():
    offenders = sorted(m for m, targets in GRAPH.items()
                       if m.startswith("rnnkit.tasks") and any(n.startswith("rnnkit.cli") for n in targets))
    assert not offenders


@pytest.mark.parametrize("package", ["cli", "serve"])
def test_the_cli_and_the_server_name_no_task(package):
    """Neither an import of a task package nor a task's name as a string: tasks come from the registry."""
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not strings & set(TASKS), f"{path.name} names a task: {sorted(strings & set(TASKS))}"
        task_imports = {n for n in imports_of(path) if n.startswith("rnnkit.tasks.") and
                        n.split(".")[2] in TASKS}
        assert not task_imports, f"{path.name} imports {sorted(task_imports)}"


def test_the_checker_sees_function_level_imports(tmp_path, monkeypatch):
    """A function-level import is an edge like any other (so it cannot hide a cycle)."""
    lm_model = ROOT / "tasks" / "lm" / "model.py"
    assert "rnnkit.tasks.lm.markov" in imports_of(lm_model)
    probe = ROOT / "cells" / "_probe_for_test.py"
    probe.write_text("def f():\n    from rnnkit.layers import build_layer\n")
    try:
        assert "rnnkit.layers" in imports_of(probe) and layer("rnnkit.cells._probe_for_test") == 0
    finally:
        probe.unlink()


def test_no_task_package_imports_another():
    """Tasks share code through rnnkit/modules, data, metrics and the shared rnnkit/tasks modules only."""
    crossing = sorted((m, n) for m, targets in GRAPH.items() for n in targets
                      if m.split(".")[:2] == ["rnnkit", "tasks"] and len(m.split(".")) > 3
                      and m.split(".")[2] in TASKS and len(n.split(".")) > 2 and n.split(".")[:2] == ["rnnkit", "tasks"]
                      and n.split(".")[2] in TASKS and n.split(".")[2] != m.split(".")[2])
    assert not crossing, crossing
