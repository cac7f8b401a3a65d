"""A classify run serves what it was trained on: numeric sequences (the embedded digits) as JSON lists, sound
files as uploads."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rnnkit.cli import main
from rnnkit.serve.app import create_app
from rnnkit.serve.runs import load_runs

RATE = 8000
TINY = ["--epochs", "1", "--max-steps", "2", "--hidden", "6", "--embedding", "6", "--batch-size", "4",
        "--progress", "none", "--tensorboard", "off"]

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_numeric_sequences(tmp_path, capsys):
    run = tmp_path / "digits"
    assert main(["train", "classify", "--out", str(run), *TINY]) == 0  # the embedded digits: (T, F) sequences
    capsys.readouterr()
    (served,) = load_runs([str(run)])
    c = TestClient(create_app([served]))
    schema = c.get("/runs").json()[0]["routes"][0]["input"]
    assert schema["properties"]["inputs"]["items"]["type"] == "array"
    rows = np.zeros((5, 2)).tolist()  # a digit stroke: 5 steps of (x, y)
    from rnnkit.data.embedded_tasks import classify_set
    inputs, _, _, _ = classify_set("digits")
    r = c.post("/runs/digits/classify", json={"inputs": [inputs[0].tolist()]})
    assert r.status_code == 200, r.text
    assert sum(r.json()[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    bad = c.post("/runs/digits/classify", json={"inputs": [rows, ["a", "b"]]})
    assert bad.status_code == 422 and bad.json()["field"].startswith("inputs.1.")  # the second input is bad


def test_sound_files(tmp_path, capsys):
    pytest.importorskip("soundfile")
    from rnnkit.data.audio import write_wav
    rows = []
    for i in range(8):
        label = ("low", "high")[i % 2]
        t = np.arange(int(RATE * 0.3)) / RATE
        path = tmp_path / f"{label}{i}.wav"
        write_wav(path, (0.5 * np.sin(2 * np.pi * (300 + 600 * (i % 2)) * t)).astype(np.float32), RATE)
        rows.append({"audio": str(path), "label": label})
    data = tmp_path / "clips.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "tones"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--sample-rate", str(RATE),
                 "--n-mels", "12", "--val-fraction", "0.25", "--test-fraction", "0.25", *TINY]) == 0
    capsys.readouterr()
    (served,) = load_runs([str(run)])
    c = TestClient(create_app([served]))
    route = c.get("/runs").json()[0]["routes"][0]
    assert route["uploads"] == {"audio": "audio"}
    r = c.post(route["path"], files={"audio": ("tone.wav", (tmp_path / "high1.wav").read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    (answer,) = r.json()
    assert answer["label"] in ("low", "high") and set(answer["probabilities"]) == {"low", "high"}
    assert c.post(route["path"], json={"inputs": ["x"]}).status_code == 422  # a sound run takes uploads
