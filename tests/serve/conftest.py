"""Tiny trained runs of every task (a few updates each, trained once per test session) and apps over them."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnnkit import config as C
from rnnkit.tasks import TASKS

pytest.importorskip("fastapi", reason="rnnkit serve needs pip install 'rnnkit[serve]'")
pytest.importorskip("jsonschema", reason="rnnkit serve needs pip install 'rnnkit[serve]'")

QUICK_TRAIN = {"epochs": 1, "max_steps": 3, "batch_size": 8, "progress": "none", "tensorboard": "off",
               "warmup_steps": 0, "patience": 0, "log_every": 1}
TINY = {
    "lm": {"model": {"hidden": 16, "layers": 2}, "data": {"max_chars": 4000}, "train": {"bptt": 16}},
    "classify": {"model": {"hidden": 8}},
    "tag": {"model": {"hidden": 8, "char_hidden": 4}},
    "forecast": {"model": {"hidden": 8, "lookback": 12}, "data": {"horizon": 3, "baselines": "naive"}},
    "translate": {"model": {"hidden": 16, "embedding": 8}, "data": {"max_pairs": 120}},
    "asr": {"model": {"hidden": 8, "layers": 1}, "data": {"count": 12, "test_count": 3, "val_fraction": 0.2}},
    "music": {"model": {"hidden": 8}, "data": {"chorales": 6, "crop": 16}},
    "caption": {"model": {"hidden": 16, "embedding": 8, "attention_size": 8},
                "data": {"scenes_train": 16, "scenes_val": 4, "scenes_test": 4}, "decode": {"beam": 2, "meteor": "off"}},
    "tag-images": {"model": {"hidden": 16, "embedding": 8, "attention_size": 8},
                   "data": {"scenes_train": 16, "scenes_val": 4, "scenes_test": 4}},
    "speech-translate": {"model": {"hidden": 8, "layers": 1, "decoder_hidden": 8, "embedding": 8},
                         "data": {"count": 8, "test_fraction": 0.01, "val_fraction": 0.2}},
    "tts": {"model": {"embedding": 16, "encoder_hidden": 8, "attention_size": 8, "prenet": 16, "attention_hidden": 16, "decoder_hidden": 16, "postnet_channels": 8, "postnet_layers": 2},
            "data": {"count": 12, "n_mels": 20, "n_fft": 512, "hop_length": 256, "val_fraction": 0.2, "test_fraction": 0.2},
            "synth": {"iterations": 2, "max_frames_per_symbol": 4}},
}
NEEDS = {"asr": "espeakng_loader", "music": "music21", "speech-translate": "espeakng_loader", "tts": "espeakng_loader"}
#: tasks whose runs are bundles of other tasks' runs: their routes are tested with their own stages
#: (tests/tasks/test_voice_translate.py)
COMPOSITE = {"voice-translate"}


def train_tiny(name: str, out):
    task = TASKS[name]
    settings = C.merge(C.merge(dict(task.train_defaults), TINY[name]), {"train": QUICK_TRAIN})
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
            if name in NEEDS:
                try:
                    __import__(NEEDS[name])
                except ImportError:
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
