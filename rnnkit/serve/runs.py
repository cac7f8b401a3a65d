"""The runs a server has loaded: each run's task found through the registry, its model loaded once, the
routes it serves (:meth:`~rnnkit.tasks.task.Task.serve_routes`) under a name unique on this server."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rnnkit.config import ConfigError
from rnnkit.tasks import task_of_run
from rnnkit.tasks.serving import Route


@dataclass
class ServedRun:
    name: str            # URL segment: /runs/<name>/<route>
    path: str
    task: str
    loaded: Any
    routes: dict[str, Route]

    def describe(self) -> dict:
        """What ``GET /runs`` lists for this run (and the page builds its panel from)."""
        return {"name": self.name, "task": self.task, "path": self.path, "routes": [{
            "name": r.name, "summary": r.summary, "panel": r.panel, "path": f"/runs/{self.name}/{r.name}",
            "stream": f"/runs/{self.name}/{r.name}/stream" if r.stream else None,
            "input": r.input, "output": r.output, "uploads": dict(r.uploads), "length_field": r.length_field or None,
            "example": r.example} for r in self.routes.values()]}


def run_name(path: str, taken: set[str]) -> str:
    """The run directory's name made URL-safe, with -2, -3, ... when two runs share it."""
    p = Path(path)
    base = p.name if p.is_dir() else p.parent.parent.name or p.stem
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "run"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def load_runs(paths: Sequence[str]) -> list[ServedRun]:
    """Each run loaded (on the CPU) with the routes its task serves; a run whose task serves nothing is an
    error."""
    if not paths:
        raise ConfigError("give at least one run directory to serve")
    served: list[ServedRun] = []
    for path in paths:
        if not Path(path).exists():
            raise ConfigError(f"{path}: no such run directory")
        task = task_of_run(path)
        loaded = task.load(path, "best", "cpu")
        routes = task.serve_routes(loaded)
        if not routes:
            raise ConfigError(f"{path}: runs of task {task.name} are not served (the task declares no routes)")
        names = [r.name for r in routes]
        if len(set(names)) != len(names):
            raise ValueError(f"task {task.name} declares a route name twice: {names}")
        served.append(ServedRun(run_name(path, {s.name for s in served}), str(path), task.name, loaded,
                                {r.name: r for r in routes}))
    return served
