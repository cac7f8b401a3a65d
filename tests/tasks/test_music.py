"""The music task: the CLI end to end on tiny MIDI folders and a tiny 2012-format file, resume equal to an
uninterrupted run, the seeded split and training batches, bad inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.midi import RollConfig, read_midi_roll
from rnnkit.tasks.music.config import MusicDataConfig
from rnnkit.tasks.music.data import TrainBatches, seeded_split
from rnnkit.train import load_checkpoint

from midi_pieces import midi_folder

TINY = ["--hidden", "8", "--batch-size", "2", "--crop", "16", "--progress", "none", "--tensorboard", "off",
        "--threads", "1"]


@pytest.fixture(autouse=True)
def private_cache_one_thread(monkeypatch, tmp_path, one_thread):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))



def test_midi_folder_train_evaluate_predict_generate(tmp_path, capsys):
    data, run = midi_folder(tmp_path / "midi"), tmp_path / "run"
    assert main(["train", "music", "--data", str(data), "--out", str(run), "--max-steps", "2", *TINY]) == 0
    assert "train/valid/test 3/1/1 pieces" in capsys.readouterr().out
    for name in ("checkpoints/best.safetensors", "checkpoints/last.safetensors", "metrics.jsonl",
                 "plots/curves.png", "config.yaml"):
        assert (run / name).is_file(), name
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 2 and result["test"] == 1 and result["test_frames"] > 0
    assert result["test_nll_per_frame"] > 0 and 0 <= result["test_frame_accuracy"] <= 1

    assert main(["evaluate", str(run), "--data", str(data), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["split"] == "test" and m["pieces"] == 1
    assert m["nll_per_frame"] == pytest.approx(result["test_nll_per_frame"], rel=1e-5)  # the same test piece
    assert (run / "evaluation-midi-test.json").is_file()
    assert main(["evaluate", str(run), "--data", str(data), "--split", "all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pieces"] == 5

    assert main(["predict", str(run), str(data / "piece0.mid"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["frames"] == 18 and row["nll_per_frame"] > 0

    out = tmp_path / "gen" / "out.mid"
    assert main(["generate", str(run), "--length", "8", "-o", str(out), "--primer", str(data / "piece1.mid"),
                 "--seed", "3", "--wav", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "18 primer + 8 generated frames" in printed and "polyphony" in printed and "pitch classes" in printed
    assert out.is_file() and out.with_suffix(".png").stat().st_size > 0 and out.with_suffix(".wav").is_file()
    cfg = RollConfig()
    primer = read_midi_roll(data / "piece1.mid", cfg).frames
    assert (read_midi_roll(out, cfg).frames[:18] == primer).all()   # the piece starts with the primer


def test_generation_is_seeded(tmp_path, capsys):
    data, run = midi_folder(tmp_path / "midi"), tmp_path / "run"
    assert main(["train", "music", "--data", str(data), "--out", str(run), "--max-steps", "1", *TINY]) == 0
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    for path in (a, b):
        assert main(["generate", str(run), "--length", "6", "-o", str(path), "--seed", "7"]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_2012_format_json_uses_its_own_splits(tmp_path, capsys):
    rng = np.random.default_rng(1)
    piece = lambda n: [sorted({int(p) for p in rng.integers(55, 75, size=3)}) for _ in range(n)]  # noqa: E731
    sets = {"train": [piece(12) for _ in range(4)], "valid": [piece(10)], "test": [piece(9), piece(7)]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(sets))
    run = tmp_path / "run"
    assert main(["train", "music", "--data", str(path), "--out", str(run), "--max-steps", "2",
                 "--output", "nade", "--nade-hidden", "4", *TINY]) == 0
    result = json.loads((run / "result.json").read_text())
    assert (result["train"], result["valid"], result["test"], result["test_frames"]) == (4, 1, 2, 16)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(path), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert (m["split"], m["frames"]) == ("test", 16)
    assert m["nll_per_frame"] == pytest.approx(result["test_nll_per_frame"], rel=1e-5)


def test_resume_equals_an_uninterrupted_run(tmp_path, capsys):
    data = midi_folder(tmp_path / "midi", n=7)
    flags = [*TINY, "--data", str(data), "--transpose", "2", "--eval-every", "2"]
    assert main(["train", "music", "--out", str(tmp_path / "full"), "--max-steps", "5", *flags]) == 0
    assert main(["train", "music", "--out", str(tmp_path / "cut"), "--max-steps", "3", *flags]) == 0
    assert main(["train", "music", "--out", str(tmp_path / "cut"), "--resume", "--max-steps", "5"]) == 0
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.safetensors").group("model")
    cut = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.safetensors").group("model")
    assert full.keys() == cut.keys()
    for k in full:
        torch.testing.assert_close(cut[k], full[k], rtol=0, atol=0)
    result = lambda name: json.loads((tmp_path / name / "result.json").read_text())  # noqa: E731
    assert result("cut")["test_nll_per_frame"] == result("full")["test_nll_per_frame"]


def test_seeded_split_and_epochs_replay():
    cfg = MusicDataConfig()
    pieces = list(range(20))
    train, valid, test = seeded_split(pieces, cfg, seed=3, where="x")
    assert (len(train), len(valid), len(test)) == (16, 2, 2)
    assert sorted(train + valid + test) == pieces and seeded_split(pieces, cfg, 3, "x") == (train, valid, test)
    rolls = [np.zeros((30, 10), dtype=bool) for _ in range(5)]
    for r in rolls:
        r[:, 4] = True
    batches = TrainBatches(rolls, 2, crop=8, transpose=3, seed=0)
    assert len(batches) == 3
    epoch = batches.epoch(1)
    assert [b["frames"].shape for b in epoch] == [(2, 8, 10), (2, 8, 10), (1, 8, 10)]
    shifted = {int(b["frames"][k, 0].argmax()) for b in epoch for k in range(len(b["frames"]))}
    assert shifted <= set(range(1, 8))              # one note, moved by at most 3 semitones
    assert all(int(b["frames"].sum()) == 8 * len(b["frames"]) for b in epoch)  # nothing falls off
    again = list(batches.iter_epoch(1, start=1))
    assert all(torch.equal(x["frames"], y["frames"]) for x, y in zip(again, epoch[1:]))


def test_bad_inputs_are_named(tmp_path, capsys):
    data = midi_folder(tmp_path / "midi", n=4)
    (data / "broken.mid").write_bytes(b"MThd not really a MIDI file")
    assert main(["train", "music", "--data", str(data), "--out", str(tmp_path / "a"), "--max-steps", "1",
                 *TINY]) == 2
    assert "broken.mid" in capsys.readouterr().err
    run = tmp_path / "b"
    assert main(["train", "music", "--data", str(data), "--out", str(run), "--max-steps", "1", "--skip-bad",
                 *TINY]) == 0
    assert "1 bad MIDI files skipped" in capsys.readouterr().out
    skipped = json.loads((run / "result.json").read_text())["skipped"]
    assert len(skipped) == 1 and skipped[0]["file"].endswith("broken.mid")

    assert main(["generate", str(tmp_path / "midi"), "--length", "4", "-o", str(tmp_path / "x.mid")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["generate", str(run), "--length", "4"]) == 2
    assert "give -o FILE.mid" in capsys.readouterr().err
    assert main(["generate", str(run), "-o", str(tmp_path / "x.mid"), "--primer", str(tmp_path / "none.mid")]) == 2
    assert "--primer" in capsys.readouterr().err
    assert main(["predict", str(run)]) == 2
    assert "rnnkit generate RUN -o out.mid" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", str(tmp_path / "notes.txt")]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert main(["train", "music", "--data", str(data), "--lowest", "70", "--highest", "60"]) == 2
    assert "lowest and highest" in capsys.readouterr().err


def test_generate_flags_are_shared_with_text_runs(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = capsys.readouterr().out
    assert text.count("  --length LENGTH") == 1
    words = " ".join(text.split())   # help lines wrap anywhere
    assert "tokens to generate (default: 500)" in words and "frames (event modes: tokens) to generate after the primer (default: 64)" in words
