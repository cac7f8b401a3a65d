"""Tiny trained runs of every task (a few updates each, trained once per test session) and apps over them."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnnkit import config as C
from rnnkit.tasks import TASKS
from tiny_tasks import COMPOSITE, QUICK_TRAIN, needs_data, tiny_settings

pytest.importorskip("fastapi", reason="rnnkit serve needs pip install 'rnnkit[serve]'")
pytest.importorskip("jsonschema", reason="rnnkit serve needs pip install 'rnnkit[serve]'")

#: what serving changes in the shared tiny runs: two layers, so the neuron view has a layer to choose
SERVE = {"lm": {"model": {"layers": 2}}}


def train_tiny(name: str, out):
    task = TASKS[name]
    settings = C.merge(dict(task.train_defaults), tiny_settings(name, SERVE.get(name, {}), {"train": QUICK_TRAIN}))
    if name == "classify":  # a text classifier: the page's "classify a sentence"
        settings = C.merge(settings, {"data": {"data": str(_sentiment_file(out.parent / "sentences.jsonl"))}})
    cfg = C.from_dict(task.run_config, settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny shapes train fastest on one thread; the count is restored afterwards
    try:
        task.train(cfg, out)
    finally:
        torch.set_num_threads(threads)
    return out


def _sentiment_file(path):
    good = ["a fine day", "I love it", "what a great film", "so good", "lovely and warm", "nice work"]
    bad = ["a bad day", "I hate it", "what an awful film", "so bad", "cold and grim", "poor work"]
    rows = [{"text": t, "label": "pos"} for t in good] + [{"text": t, "label": "neg"} for t in bad]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows * 3))
    return path


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """task name -> a trained tiny run directory (tasks whose optional data packages are missing left out)."""
    root = tmp_path_factory.mktemp("serve-runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNKIT_CACHE", str(root / "cache"))
    runs = {}
    try:
        for name in TASKS:
            if name in COMPOSITE:
                continue
            if not needs_data(name):
                continue
            runs[name] = train_tiny(name, root / name)
    finally:
        mp.undo()
    return runs


@pytest.fixture
def sine_wav():
    """``sine_wav(path, seconds, rate)`` writes a 440 Hz tone as a WAV file and returns its path."""
    sf = pytest.importorskip("soundfile", reason="audio uploads need pip install 'rnnkit[speech]'")

    def write(path, seconds: float = 0.5, rate: int = 16000):
        t = np.arange(int(seconds * rate)) / rate
        sf.write(str(path), (0.3 * np.sin(2 * math.pi * 440 * t)).astype("float32"), rate)
        return path
    return write
