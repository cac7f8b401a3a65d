"""The music task's event modes (performance, melody): the CLI end to end on tiny MIDI files written here,
generation that starts with its primer, tokens through MIDI and back, transposition, resume, bad input,
and the FluidSynth rendering of --soundfont."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.midi import read_midi_notes, write_midi
from rnnkit.data.music_render import fluidsynth_available
from rnnkit.data.readers import DataError
from rnnkit.tasks.music.config import MusicDataConfig
from rnnkit.tasks.music.events import EventCodec, TokenBatches, midi_folder_tokens
from rnnkit.train import load_checkpoint

from midi_pieces import midi_folder

TINY = ["--hidden", "8", "--embedding", "8", "--batch-size", "2", "--crop", "24", "--progress", "none",
        "--tensorboard", "off", "--threads", "1"]
# Debian's General MIDI SoundFont (libfluidsynth3 pulls one in: timgm6mb-soundfont or fluid-soundfont-gm)
SOUNDFONT = next((p for p in (Path("/usr/share/sounds/sf2/default-GM.sf2"), Path("/usr/share/sounds/sf3/default-GM.sf3"),
                              *sorted(Path("/usr/share/sounds/sf2").glob("*.sf2"))) if p.is_file()), None)


@pytest.fixture(autouse=True)
def private_cache_one_thread(monkeypatch, tmp_path, one_thread):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))



def codec(mode: str, **kw) -> EventCodec:
    return EventCodec.of(MusicDataConfig(mode=mode, **kw))


@pytest.mark.parametrize("mode", ["performance", "melody"])
def test_train_evaluate_predict_generate_with_primer(tmp_path, capsys, mode):
    data, run = midi_folder(tmp_path / "midi"), tmp_path / "run"
    assert main(["train", "music", "--mode", mode, "--data", str(data), "--out", str(run), "--max-steps", "2",
                 *TINY]) == 0
    out = capsys.readouterr().out
    assert "train/valid/test 3/1/1 pieces" in out and f"{mode} tokens" in out
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 2 and result["mode"] == mode and result["test_tokens"] > 0
    assert result["test_nll_per_token"] > 0

    assert main(["evaluate", str(run), "--data", str(data), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["split"] == "test" and m["pieces"] == 1
    assert m["nll_per_token"] == pytest.approx(result["test_nll_per_token"], rel=1e-5)
    assert ("nll_per_second" in m) == (mode == "performance")
    assert main(["predict", str(run), str(data / "piece0.mid"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["tokens"] == len(codec(mode).file_tokens(data / "piece0.mid"))

    primer, piece = data / "piece1.mid", tmp_path / "gen" / "out.mid"
    assert main(["generate", str(run), "--length", "40", "--primer", str(primer), "--top-k", "20",
                 "--top-p", "0.9", "--temperature", "1.2", "--seed", "3", "--wav", "-o", str(piece)]) == 0
    assert "primer + 40 generated" in capsys.readouterr().out
    for f in (piece, piece.with_suffix(".png"), piece.with_suffix(".wav")):
        assert f.is_file() and f.stat().st_size > 0, f
    primer_tokens = codec(mode).file_tokens(primer)
    written = codec(mode).file_tokens(piece)
    np.testing.assert_array_equal(written[:len(primer_tokens)], primer_tokens)   # the piece starts with the primer


def test_generated_tokens_start_with_the_primer_and_keep_the_grammar(tmp_path, capsys):
    from rnnkit.tasks import TASKS
    data, run = midi_folder(tmp_path / "midi"), tmp_path / "run"
    assert main(["train", "music", "--mode", "melody", "--data", str(data), "--out", str(run), "--max-steps", "1",
                 *TINY]) == 0
    loaded = TASKS["music"].load(run)
    from rnnkit.tasks.music.event_model import sample_events
    primer = data / "piece2.mid"
    tokens = sample_events(loaded, length=31, temperature=1.5, primer=primer, seed=0)
    start = loaded.codec.file_tokens(primer)
    np.testing.assert_array_equal(tokens[:len(start)], start)
    assert len(tokens) == len(start) + 31
    melody = loaded.codec.tokenizer.decode(tokens[:-1])     # alternates pitch and duration: decodes
    assert len(melody) == (len(tokens) - 1) // 2
    again = sample_events(loaded, length=31, temperature=1.5, primer=primer, seed=0)
    np.testing.assert_array_equal(tokens, again)             # seeded
    out = loaded.model(*TASKS["music"].example_inputs(loaded))   # what export traces runs
    assert out.logits.shape == (2, 6, loaded.codec.vocab_size) and torch.isfinite(out.loss)


def test_performance_tokens_round_trip_through_midi(tmp_path):
    c = codec("performance")
    path = midi_folder(tmp_path / "midi", n=1) / "piece0.mid"
    tokens = c.file_tokens(path)
    out = tmp_path / "again.mid"
    write_midi(c.notes(tokens), out)
    np.testing.assert_array_equal(c.file_tokens(out), tokens)
    notes = read_midi_notes(out).notes
    assert [(n.pitch, round(n.start_s, 3)) for n in notes] == \
           [(n.pitch, round(n.start_s, 3)) for n in read_midi_notes(path).notes]


def test_melody_is_the_top_voice_and_round_trips(tmp_path):
    c = codec("melody", lowest=36, highest=96)
    path = tmp_path / "m.mid"
    write_midi([(60, 0, 4), (48, 0, 8), (64, 4, 6), (67, 8, 12)], path)   # 48 sounds below: not the melody
    tokens = c.file_tokens(path)
    assert c.tokenizer.decode(tokens) == [(60, 4), (64, 2), (48, 2), (67, 4)]
    out = tmp_path / "again.mid"
    write_midi(c.notes(tokens), out)
    np.testing.assert_array_equal(c.file_tokens(out), tokens)


def test_transposition_keeps_pitches_in_range_and_batches_replay():
    c = codec("performance", lowest=60, highest=64)
    tokens = c.tokenizer.encode([__import__("rnnkit.data.music_tokens", fromlist=["PerfNote"]).PerfNote(62, 80, 0, 0.1)])
    tokens = np.asarray(tokens)
    assert c.transpose_range(tokens, 5) == [-2, -1, 0, 1, 2]
    up = c.transpose(tokens, 2)
    assert [n.pitch for n in c.tokenizer.decode(up)] == [64]
    batches = TokenBatches([tokens, tokens[:3]], c, 2, crop=2, transpose=2, seed=1)
    a, b = batches.epoch(0), batches.epoch(0)
    assert all(torch.equal(x["inputs"], y["inputs"]) for x, y in zip(a, b))
    assert a[0]["inputs"].shape == (2, 2)


def test_bad_inputs_error_or_are_counted(tmp_path, capsys):
    data = midi_folder(tmp_path / "midi", n=4)
    write_midi([], data / "empty.mid")
    drums = tmp_path / "drums.mid"
    import mido
    mid = mido.MidiFile(type=1, tracks=[mido.MidiTrack([mido.Message("note_on", channel=9, note=36, velocity=90),
                                                         mido.Message("note_off", channel=9, note=36, time=240)])])
    mid.save(str(drums))
    c = codec("performance")
    with pytest.raises(DataError, match="empty.mid: no notes"):
        c.file_tokens(data / "empty.mid")
    with pytest.raises(DataError, match="drums.mid: drum notes only"):
        c.file_tokens(drums)
    with pytest.raises(DataError, match=r"outside the configured range 62\.\.108"):
        codec("melody", lowest=62).file_tokens(data / "piece0.mid")
    with pytest.raises(DataError, match="empty.mid"):
        midi_folder_tokens(data, c, skip_bad=False)
    pieces, skipped = midi_folder_tokens(data, c, skip_bad=True)
    assert len(pieces) == 4 and [Path(f).name for f, _ in skipped] == ["empty.mid"]

    run = tmp_path / "run"
    assert main(["train", "music", "--mode", "performance", "--data", str(data), "--out", str(run),
                 "--max-steps", "1", *TINY]) == 2
    assert "empty.mid: no notes" in capsys.readouterr().err
    assert main(["train", "music", "--mode", "performance", "--data", str(data), "--out", str(run),
                 "--max-steps", "1", "--skip-bad", *TINY]) == 0
    assert "1 bad MIDI files skipped" in capsys.readouterr().out
    assert main(["generate", str(run), "-o", str(tmp_path / "x.mid"), "--primer", str(drums)]) == 2
    assert "drum notes only" in capsys.readouterr().err
    assert main(["train", "music", "--mode", "melody", "--output", "nade", "--data", str(data)]) == 2
    assert "applies to mode roll" in capsys.readouterr().err
    assert main(["generate", str(run), "-o", str(tmp_path / "x.mid"), "--top-p", "0"]) == 2
    assert "top_p must be in (0, 1]" in capsys.readouterr().err


def test_resume_equals_an_uninterrupted_run(tmp_path, capsys):
    data = midi_folder(tmp_path / "midi")
    args = ["train", "music", "--mode", "performance", "--data", str(data), *TINY, "--epochs", "2",
            "--checkpoint-every", "1"]
    assert main([*args, "--out", str(tmp_path / "full")]) == 0
    assert main([*args, "--out", str(tmp_path / "cut"), "--max-steps", "3"]) == 0
    assert main([*args, "--out", str(tmp_path / "cut"), "--resume"]) == 0
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.safetensors").group("model")
    cut = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.safetensors").group("model")
    for k in full:
        torch.testing.assert_close(cut[k], full[k])


def test_soundfont_without_a_file_is_named(tmp_path, capsys):
    assert main(["generate", str(tmp_path), "-o", str(tmp_path / "x.mid"), "--soundfont",
                 str(tmp_path / "none.sf2")]) == 2
    assert "none.sf2: no such SoundFont file" in capsys.readouterr().err


def test_soundfont_needs_fluidsynth(tmp_path, capsys, monkeypatch):
    import rnnkit.tasks.music.task as music_task
    monkeypatch.setattr(music_task, "fluidsynth_available", lambda: False)
    sf = tmp_path / "a.sf2"
    sf.write_bytes(b"RIFF")
    assert main(["generate", str(tmp_path), "-o", str(tmp_path / "x.mid"), "--soundfont", str(sf)]) == 2
    assert "pip install pyfluidsynth" in capsys.readouterr().err


@pytest.mark.skipif(not fluidsynth_available() or SOUNDFONT is None,
                    reason="needs pyfluidsynth, the FluidSynth library and a GM SoundFont (Debian: libfluidsynth3)")
def test_fluidsynth_renders_a_generated_piece(tmp_path, capsys):
    import soundfile
    data, run = midi_folder(tmp_path / "midi"), tmp_path / "run"
    assert main(["train", "music", "--mode", "melody", "--data", str(data), "--out", str(run), "--max-steps", "1",
                 *TINY]) == 0
    piece = tmp_path / "out.mid"
    assert main(["generate", str(run), "--length", "16", "--seed", "0", "--primer", str(data / "piece0.mid"),
                 "--soundfont", str(SOUNDFONT), "-o", str(piece)]) == 0
    audio, rate = soundfile.read(str(piece.with_suffix(".wav")))
    assert rate == 22050 and audio.ndim == 2 and audio.shape[1] == 2
    assert np.abs(audio).max() > 0.01      # FluidSynth played the notes


def test_an_event_run_is_served(tmp_path, capsys):
    pytest.importorskip("fastapi", reason="rnnkit serve needs pip install 'rnnkit[serve]'")
    pytest.importorskip("jsonschema", reason="rnnkit serve needs pip install 'rnnkit[serve]'")
    import base64

    from fastapi.testclient import TestClient

    from rnnkit.serve.app import create_app
    from rnnkit.serve.config import ServeConfig
    from rnnkit.serve.runs import load_runs
    data, run = midi_folder(tmp_path / "midi"), tmp_path / "music"
    assert main(["train", "music", "--mode", "performance", "--data", str(data), "--out", str(run),
                 "--max-steps", "1", *TINY]) == 0
    with TestClient(create_app(load_runs([str(run)]), ServeConfig(max_length=500))) as client:
        primer = (data / "piece0.mid").read_bytes()
        r = client.post("/runs/music/music", files={"primer": ("p.mid", primer)},
                        data={"length": "30", "seed": "1", "top_k": "10"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert base64.b64decode(out["midi"])[:4] == b"MThd" and base64.b64decode(out["wav"])[:4] == b"RIFF"
        n0 = len(codec("performance").file_tokens(data / "piece0.mid"))
        assert out["primer_tokens"] == n0 and len(out["tokens"]) == n0 + 30
        bad = client.post("/runs/music/music", json={"length": 5, "top_p": 0})
        assert bad.status_code in (400, 422) and "top_p" in bad.text


def test_2012_format_file_in_melody_mode(tmp_path, capsys):
    # one voice per step, each step a new note: the melody has as many notes as steps
    steps = lambda n, p0: [[p0 + (t % 5) * 2] for t in range(n)]  # noqa: E731
    sets = {"train": [steps(12, 60), steps(10, 62), steps(8, 58)], "valid": [steps(6, 60)],
            "test": [steps(9, 61), steps(7, 59)]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(sets))
    run = tmp_path / "run"
    assert main(["train", "music", "--mode", "melody", "--data", str(path), "--out", str(run), "--max-steps", "1",
                 *TINY]) == 0
    result = json.loads((run / "result.json").read_text())
    assert (result["train"], result["valid"], result["test"]) == (3, 1, 2)
    assert result["test_tokens"] == 2 * (9 + 7)                        # a pitch and a duration per note
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(path), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert (m["split"], m["tokens"]) == ("test", 32)
    assert m["nll_per_token"] == pytest.approx(result["test_nll_per_token"], rel=1e-5)


def test_a_long_note_is_an_error_in_a_midi_file_and_re_struck_in_a_roll(tmp_path):
    c = codec("melody", max_duration=4)
    path = tmp_path / "long.mid"
    write_midi([(60, 0, 10)], path)
    with pytest.raises(DataError, match="long.mid: note 0: 10 steps is longer than max_steps=4"):
        c.file_tokens(path)
    frames = np.zeros((10, c.highest - c.lowest + 1), dtype=bool)
    frames[:, 60 - c.lowest] = True
    assert c.tokenizer.decode(c.roll_tokens(frames, "roll")) == [(60, 4), (60, 4), (60, 2)]


def test_an_event_run_exports_to_onnx_with_parity(tmp_path, capsys):
    pytest.importorskip("onnx", reason="export needs pip install 'rnnkit[export]'")
    pytest.importorskip("onnxruntime", reason="export needs pip install 'rnnkit[export]'")
    from rnnkit.export import export_run
    data, run = midi_folder(tmp_path / "midi"), tmp_path / "run"
    assert main(["train", "music", "--mode", "melody", "--data", str(data), "--out", str(run), "--max-steps", "1",
                 *TINY]) == 0
    manifest = export_run(run, "onnx", tmp_path / "onnx")   # raises unless every graph matches PyTorch
    assert sorted(g["name"] for g in manifest["graphs"]) == ["sequence", "step"]
