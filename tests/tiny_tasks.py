"""The smallest run of each task's embedded default, shared by every suite that trains one run per
registered task (the registry's end-to-end runs, serve, tune, export). A suite states only what it
changes, through ``tiny_settings(name, overrides)``; a new task adds one row here."""
from __future__ import annotations

import pytest

from rnnkit import config as C

TINY_IMAGES = {"model": {"hidden": 16, "embedding": 8, "attention_size": 8},
               "data": {"scenes_train": 16, "scenes_val": 4, "scenes_test": 4}}

#: task -> tiny settings over its training defaults
TINY = {
    "lm": {"model": {"hidden": 16, "layers": 1}, "data": {"max_chars": 4000}, "train": {"bptt": 16}},
    "classify": {"model": {"hidden": 8}},
    "tag": {"model": {"hidden": 8, "char_hidden": 4}},
    "forecast": {"model": {"hidden": 8, "lookback": 12}, "data": {"horizon": 3, "baselines": "naive"}},
    "translate": {"model": {"hidden": 16, "embedding": 8}, "data": {"max_pairs": 120}},
    "asr": {"model": {"hidden": 8, "layers": 1}, "data": {"count": 12, "test_count": 3, "val_fraction": 0.2}},
    "music": {"model": {"hidden": 8}, "data": {"chorales": 6, "crop": 16}},
    "caption": {**TINY_IMAGES, "decode": {"beam": 2, "meteor": "off"}},
    "tag-images": TINY_IMAGES,
    "speech-translate": {"model": {"hidden": 8, "layers": 1, "decoder_hidden": 8, "embedding": 8},
                         "data": {"count": 8, "test_fraction": 0.01, "val_fraction": 0.2}},
    "tts": {"model": {"embedding": 16, "encoder_hidden": 8, "attention_size": 8, "prenet": 16, "attention_hidden": 16,
                      "decoder_hidden": 16, "postnet_channels": 8, "postnet_layers": 2},
            "data": {"count": 12, "n_mels": 20, "n_fft": 512, "hop_length": 256, "val_fraction": 0.2,
                     "test_fraction": 0.2},
            "synth": {"iterations": 2, "max_frames_per_symbol": 4}},
}

#: tasks whose embedded default needs an optional package: task -> the module to import
NEEDS = {"asr": "espeakng_loader", "music": "music21", "speech-translate": "espeakng_loader",
         "tts": "espeakng_loader"}

#: tasks whose runs are bundles of other tasks' runs, trained and used end to end in their own test file
COMPOSITE = {"voice-translate": "tests/tasks/test_voice_translate.py (a bundle of asr, translate and tts runs)"}

#: a few updates of one epoch, no side outputs
QUICK_TRAIN = {"epochs": 1, "max_steps": 3, "batch_size": 8, "progress": "none", "tensorboard": "off",
               "warmup_steps": 0, "patience": 0, "log_every": 1}


def tiny_settings(name: str, *overrides: dict) -> dict:
    """The task's tiny settings with each suite's overrides merged over them, in order."""
    settings = TINY[name]
    for override in overrides:
        settings = C.merge(settings, override)
    return settings


def needs_data(name: str) -> bool:
    """True where the task's embedded data package imports; False (to leave the task out) otherwise."""
    if name not in NEEDS:
        return True
    try:
        __import__(NEEDS[name])
    except ImportError:
        return False
    return True


def skip_without_data(name: str) -> None:
    """Skip the calling test where the task's embedded data needs an extra that is not installed."""
    if name in NEEDS:
        pytest.importorskip(NEEDS[name], reason=f"the embedded {name} data needs its extra")
