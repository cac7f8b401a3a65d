"""Audio classification through the CLI: manifests, labelled folders, resume, bad files, spoken digits."""
from __future__ import annotations

import builtins
import json
import sys

import numpy as np
import pytest
import torch

from rnnkit.train.checkpoint import load_checkpoint
from rnnkit.cli import main
from rnnkit.data.audio import write_wav

pytest.importorskip("soundfile")

RATE = 8000
TINY = ["--epochs", "2", "--hidden", "6", "--embedding", "6", "--batch-size", "4", "--progress", "none",
        "--tensorboard", "off", "--sample-rate", str(RATE), "--n-mels", "12", "--val-fraction", "0.25",
        "--test-fraction", "0.25"]
WORDS = ("yes", "no", "stop")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _clip(label: str, i: int) -> np.ndarray:
    """Speech from eSpeak NG when it is installed, else a tone whose pitch says the class."""
    try:
        from rnnkit.data.speech_synth import synthesize
        return synthesize(label, ("en", "en-us")[i % 2], 160 + 20 * (i % 3), 50, RATE)
    except ImportError:
        t = np.arange(int(RATE * (0.25 + 0.05 * (i % 3)))) / RATE
        return 0.5 * np.sin(2 * np.pi * (300 + 400 * WORDS.index(label)) * t).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """12 short clips, 4 per word, named {label}_{speaker}_{index}.wav."""
    d = tmp_path_factory.mktemp("clips")
    paths = []
    for i in range(12):
        label = WORDS[i % 3]
        p = d / f"{label}_s{i % 2}_{i}.wav"
        write_wav(p, _clip(label, i), RATE)
        paths.append((p, label))
    return d, paths


def _manifest(path, rows):
    path.write_text("".join(json.dumps({"audio": str(a), "label": lab}) + "\n" for a, lab in rows))
    return path


def test_manifest_train_evaluate_predict(clips, tmp_path, capsys):
    folder, paths = clips
    data = _manifest(tmp_path / "clips.jsonl", paths)
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--cell", "gru", *TINY]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["train"] + result["val"] + result["test"] == 12 and 0.0 <= result["test_accuracy"] <= 1.0
    meta = load_checkpoint(run / "checkpoints" / "best.safetensors").meta["metadata"]
    enc = meta["encoder"]
    assert enc["kind"] == "audio" and enc["features"]["n_mels"] == 12 and enc["features"]["sample_rate"] == RATE
    assert len(enc["scaler"]["mean"]) == 12              # the normaliser fitted on training frames
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "macro-F1" in out and "confusion (rows: true, columns: predicted)" in out
    matrix = [line.split()[1:] for line in out.splitlines()[-3:]]
    assert sum(int(c) for row in matrix for c in row) == 12          # every clip counted once
    assert (run / "confusion-clips.png").is_file()
    wavs = [str(paths[0][0]), str(paths[1][0])]
    assert main(["predict", str(run), *wavs, "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert [p["input"] for p in preds] == wavs
    assert all(set(p["probabilities"]) == set(WORDS) and p["label"] in WORDS for p in preds)
    assert sum(preds[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert main(["predict", str(run), "--file", str(data), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 12
    assert main(["predict", str(run), *wavs]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[1] for r in rows] == wavs and all(r[2] in WORDS for r in rows)


def test_labelled_folder_with_pattern_and_mfcc(clips, tmp_path):
    folder, _ = clips
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(folder), "--label-pattern", "{label}_{speaker}_{index}.wav",
                 "--features", "mfcc", "--n-mfcc", "5", "--out", str(run), *TINY]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["train"] + result["val"] + result["test"] == 12
    enc = load_checkpoint(run / "checkpoints" / "best.safetensors").meta["metadata"]["encoder"]
    assert sorted(enc["labels"]) == sorted(WORDS) and len(enc["scaler"]["mean"]) == 5


def test_resume_equals_an_uninterrupted_run(clips, tmp_path):
    _, paths = clips
    data = _manifest(tmp_path / "c.jsonl", paths)
    same = ["--data", str(data), *TINY[2:], "--freq-masks", "1", "--time-masks", "1", "--schedule", "constant",
            "--warmup-steps", "0"]                      # a schedule over all epochs would differ between the two
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["train", "classify", "--out", str(whole), *same, "--epochs", "2"]) == 0
    assert main(["train", "classify", "--out", str(parts), *same, "--epochs", "1"]) == 0
    assert main(["train", "classify", "--out", str(parts), "--resume", "--epochs", "2", "--progress", "none"]) == 0
    a = load_checkpoint(whole / "checkpoints" / "last.safetensors").group("model")
    b = load_checkpoint(parts / "checkpoints" / "last.safetensors").group("model")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_bad_files_are_named_with_their_line_or_skipped(clips, tmp_path, capsys):
    _, paths = clips
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not a sound")
    rows = list(paths) + [(tmp_path / "missing.wav", "yes"), (not_audio, "no")]
    data = _manifest(tmp_path / "bad.jsonl", rows)
    capsys.readouterr()
    assert main(["train", "classify", "--data", str(data), "--out", str(tmp_path / "r"), *TINY]) == 2
    err = capsys.readouterr().err
    assert f"{data}:13" in err and "missing.wav" in err
    data = _manifest(tmp_path / "bad2.jsonl", list(paths) + [(not_audio, "no")])
    assert main(["train", "classify", "--data", str(data), "--out", str(tmp_path / "r2"), *TINY]) == 2
    err = capsys.readouterr().err
    assert f"{data}:13" in err and "not a readable audio file" in err
    run = tmp_path / "skip"
    data = _manifest(tmp_path / "bad3.jsonl", rows)
    assert main(["train", "classify", "--data", str(data), "--out", str(run), "--skip-bad", *TINY]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["skipped"] == 2 and result["train"] + result["val"] + result["test"] == 12
    assert "skipped 2 bad audio file(s)" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--data", str(data)]) == 0      # the run's --skip-bad holds here too
    out = capsys.readouterr().out
    assert "(12 examples)" in out and "skipped 2 bad audio file(s)" in out


def test_spoken_digits_without_espeak_says_how_to_install(tmp_path, monkeypatch, capsys):
    from rnnkit.data import speech_synth
    real_import = builtins.__import__

    def no_espeak(name, *args, **kwargs):
        if name == "espeakng_loader":
            raise ImportError("No module named 'espeakng_loader'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_espeak)
    monkeypatch.delitem(sys.modules, "espeakng_loader", raising=False)
    monkeypatch.setattr(speech_synth.ESpeak, "_instance", None)
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    assert main(["train", "classify", "--dataset", "spoken-digits", "--out", str(tmp_path / "r"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "spoken-digits" in err and "pip install" in err and "espeakng-loader" in err


def test_mfcc_statistics_of_logmel_frames_are_those_of_the_extractors_mfccs():
    from rnnkit.modules.audio_features import FeatureConfig, FeatureExtractor
    from rnnkit.tasks.baselines.audio import mfcc_statistics
    wave = torch.from_numpy(_clip("yes", 0)).float()
    logmel_cfg = FeatureConfig(sample_rate=RATE, n_fft=200, hop_length=80, n_mels=20, n_mfcc=8, deltas=1)
    mfcc_cfg = FeatureConfig(sample_rate=RATE, n_fft=200, hop_length=80, n_mels=20, n_mfcc=8, kind="mfcc")
    logmel = FeatureExtractor(logmel_cfg)(wave)[0][0]                # (T, 40): log-mel and its deltas
    mfcc = FeatureExtractor(mfcc_cfg)(wave)[0][0]                    # (T, 8)
    a, b = mfcc_statistics(logmel, logmel_cfg), mfcc_statistics(mfcc, mfcc_cfg)
    assert a.shape == (32,)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a[:8], mfcc.double().mean(0).numpy(), rtol=1e-4, atol=1e-4)


def test_compare_has_an_mfcc_svm_row_on_the_same_split(clips, tmp_path, capsys):
    folder, paths = clips
    data = _manifest(tmp_path / "clips.jsonl", paths)
    out = tmp_path / "cmp"
    args = ["compare", "classify", "--data", str(data), "--cells", "gru", "--models", "", "--out", str(out),
            "--epochs", "1", "--set", "model.hidden=6", "--set", "data.sample_rate=8000", "--set", "data.n_mels=12",
            "--set", "data.val_fraction=0.25", "--set", "data.test_fraction=0.25", "--set", "train.batch_size=4"]
    assert main(args) == 0
    rows = {r["model"]: r for r in json.loads((out / "compare.json").read_text())}
    assert set(rows) == {"gru", "mfcc+svm"}
    gru_test = json.loads((out / "gru" / "result.json").read_text())["test"]
    svm = rows["mfcc+svm"]
    assert 0.0 <= svm["accuracy"] <= 1.0 and svm["parameters"] > 0
    assert gru_test == 3        # a quarter of the 12 clips: the split both rows are scored on
    assert "mfcc+svm" in capsys.readouterr().out


def test_a_csv_audio_manifest_is_read_in_the_given_encoding(tmp_path):
    """--encoding holds for an audio manifest as for a text file: a cp1252 CSV names what to pass, and with
    the encoding given its labels read right (JSONL manifests are UTF-8)."""
    from rnnkit.data.readers import EncodingError
    from rnnkit.modules.audio_features import FeatureConfig
    from rnnkit.tasks.classify.data import AudioOptions, read_examples
    lines = []
    for i, label in enumerate(["café", "thé", "café", "thé"]):
        t = np.arange(RATE // 4) / RATE
        write_wav(tmp_path / f"{i}.wav", 0.5 * np.sin(2 * np.pi * (300 + 200 * (i % 2)) * t), RATE)
        lines.append(f"{i}.wav,{label}\n")
    data = tmp_path / "clips.csv"
    data.write_bytes(("audio,label\n" + "".join(lines)).encode("cp1252"))
    opts = AudioOptions(FeatureConfig(sample_rate=RATE, n_mels=12))
    with pytest.raises(EncodingError, match=r"clips.csv: not valid UTF-8 .* line 2; .*--encoding"):
        read_examples(data, "text", "label", "auto", audio=opts)
    ex = read_examples(data, "text", "label", "auto", audio=opts, encoding="cp1252")
    assert ex.kind == "audio" and ex.labels == ["café", "thé", "café", "thé"] and ex.inputs[0].shape[1] == 12
    assert read_examples(data, "text", "label", "audio", audio=opts, encoding="cp1252").labels == ex.labels
