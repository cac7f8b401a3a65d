"""The tts task end to end through the CLI on a few seconds of eSpeak NG speech: train, speak, evaluate (with
a transcriber for the intelligibility score), predict, resume, the Python synthesis function, LJSpeech
folders and the bad inputs."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("espeakng_loader", reason="the speech is synthesised with espeakng-loader: "
                    "pip install 'rnnkit[speech]'")
pytest.importorskip("soundfile", reason="audio I/O needs soundfile: pip install 'rnnkit[speech]'")
pytest.importorskip("num2words", reason="the text front end needs num2words: pip install 'rnnkit[tts]'")

from rnnkit.cli import main  # noqa: E402
from rnnkit.config import ConfigError  # noqa: E402
from rnnkit.data.audio import read_audio  # noqa: E402
from rnnkit.data.speech_manifest import read_speech_manifest  # noqa: E402
from rnnkit.data.speech_synth import texts_dataset  # noqa: E402
from rnnkit.tasks import TASKS  # noqa: E402
from rnnkit.tasks.tts.data import encode, fit_vocabulary, text_symbols  # noqa: E402
from rnnkit.tasks.tts.pipeline import sentences_of, synthesize  # noqa: E402
from rnnkit.tasks.tts.task import TTSTask  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402

TEXTS = ["Hello.", "Thank you.", "Good night.", "See you soon.", "Yes, of course.", "No problem.",
         "I have 2 cats.", "Turn on the light."]
TINY = ["--embedding", "16", "--encoder-hidden", "8", "--attention-size", "8", "--prenet", "16",
        "--attention-hidden", "16", "--decoder-hidden", "16", "--postnet-channels", "8", "--postnet-layers", "2",
        "--n-mels", "20", "--n-fft", "512", "--hop-length", "256", "--batch-size", "4", "--progress", "none",
        "--tensorboard", "off", "--warmup-steps", "0", "--val-fraction", "0.15", "--test-fraction", "0.15",
        "--max-frames-per-symbol", "4", "--iterations", "2"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """Eight short English sentences read by one eSpeak NG voice."""
    torch.set_num_threads(1)
    return texts_dataset(TEXTS, "en-us", rate=220, cache_dir=tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="module")
def run(manifest, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tts") / "run"
    assert main(["train", "tts", "--data", str(manifest), "--out", str(out), *TINY, "--epochs", "1"]) == 0
    return out


def test_train_writes_a_complete_run(run):
    result = json.loads((run / "result.json").read_text())
    assert result["train"] + result["val"] + result["test"] == 8 and result["test"] == 1
    assert result["test_mcd"] > 0 and 0.0 <= result["test_monotonic_rate"] <= 1.0
    assert result["test_rtf_acoustic"] > 0 and result["test_rtf_vocoder"] > 0
    for name in ("checkpoints/best.safetensors", "checkpoints/last.safetensors", "metrics.jsonl", "config.yaml",
                 "plots/curves.png", "data/test.jsonl", "eval/test/000.wav", "eval/test/000.png",
                 "eval/test/scores.jsonl"):
        assert (run / name).is_file(), name
    meta = load_checkpoint(run / "checkpoints" / "best.safetensors").meta["metadata"]
    assert meta["features"]["n_mels"] == 20 and meta["vocabulary"]["kind"] == "char"
    loaded = TASKS["tts"].load(run)
    assert int(loaded.model.normalizer.count) > 0   # fitted on the training frames, restored
    with torch.no_grad():
        out = loaded.model(*TASKS["tts"].example_inputs(loaded))
    assert out.logits.shape[-1] == 20


def test_synthesize_function_for_other_code(run):
    loaded = TASKS["tts"].load(run)
    wave, rate = synthesize(loaded, "Hello. Thank you.", speed=1.0, pitch_shift=0.0)
    assert rate == 16000 and wave.dtype == np.float32 and wave.ndim == 1 and len(wave) > 0
    faster, _ = synthesize(loaded, "Hello. Thank you.", speed=2.0)
    assert len(faster) < 0.7 * len(wave)   # the limit-bound frames of an untrained model, played twice as fast


def test_speak_writes_a_wav_and_plots(run, tmp_path, capsys):
    out = tmp_path / "out.wav"
    assert main(["speak", str(run), "Hello, thank you.", "-o", str(out), "--pitch-shift", "2", "--plot",
                 str(tmp_path / "png"), "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "real-time factor acoustic model" in err and "vocoder" in err
    assert len(read_audio(out, 16000, allow_silence=True)) > 0
    assert (tmp_path / "png" / "sentence-1.png").stat().st_size > 1000


def test_evaluate_scores_and_asks_a_transcriber(run, manifest, tmp_path, capsys):
    assert main(["evaluate", str(run), "--data", str(manifest), "--wav-dir", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert "MCD" in out and "monotonic alignments" in out and "real-time factor" in out
    rows = [json.loads(line) for line in (tmp_path / "ev" / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {"text", "audio", "mcd", "monotonic"} <= set(rows[0])
    heard = []
    task = TTSTask(transcriber=lambda asr, wavs: heard.append((asr, wavs)) or ["hello"] * len(wavs))
    m = task.evaluate(run, str(run / "data" / "test.jsonl"), {"asr": "ASR_RUN", "wav_dir": str(tmp_path / "ev2")})
    assert heard[0][0] == "ASR_RUN" and len(heard[0][1]) == 1 and 0 < m["asr_cer"] <= 1.5
    with pytest.raises(ConfigError, match="--asr needs"):
        TTSTask().evaluate(run, str(run / "data" / "test.jsonl"), {"asr": "ASR_RUN", "wav_dir": str(tmp_path / "ev3")})


def test_predict_writes_one_wav_per_text(run, tmp_path, capsys):
    assert main(["predict", str(run), "Hello.", "Good night.", "--wav-dir", str(tmp_path / "p"), "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert [Path(p["audio"]).name for p in preds] == ["000.wav", "001.wav"] and preds[0]["seconds"] > 0


def test_bad_text(run, capsys):
    loaded = TASKS["tts"].load(run)
    with pytest.raises(ConfigError, match="no text to speak"):
        synthesize(loaded, "   ")
    with pytest.raises(ConfigError, match="none of its characters can be spoken"):
        synthesize(loaded, "日本語")
    with pytest.raises(ConfigError, match=r"symbols this run cannot read \['z'\]"):
        sentences_of(loaded, "zzz hello")
    assert sentences_of(loaded, "Hello; thank you!")[0][0] == "hello, thank you."   # marks it was not trained on
    long = " ".join(["hello, thank you"] * 30) + "."
    pieces = sentences_of(loaded, long)
    assert len(pieces) > 1 and " ".join(p for p, _, _ in pieces).split() == long.split()   # split, not truncated
    assert main(["speak", str(run), "", "-o", "x.wav"]) == 2
    assert "no text to speak" in capsys.readouterr().err


def test_missing_and_corrupted_runs(run, tmp_path, capsys):
    assert main(["speak", str(tmp_path / "nothing"), "Hello.", "-o", str(tmp_path / "x.wav")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    for name in ("best", "last"):
        (broken / "checkpoints" / f"{name}.safetensors").write_bytes(b"not a checkpoint")
    assert main(["speak", str(broken), "Hello.", "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "broken" in err and "safetensors" in err.lower()


def test_ljspeech_folder(manifest, tmp_path):
    folder = tmp_path / "LJ"
    (folder / "wavs").mkdir(parents=True)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()[:3]]
    lines = []
    for k, r in enumerate(rows):
        shutil.copy(manifest.parent / r["audio_filepath"], folder / "wavs" / f"LJ001-{k:04d}.wav")
        lines.append(f"LJ001-{k:04d}|{r['text']}|{r['text'].upper()}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    m = read_speech_manifest(folder)
    assert [u.text for u in m.utterances] == [r["text"].upper() for r in rows]   # the normalised column
    assert read_speech_manifest(folder / "metadata.csv").utterances[0].audio == folder / "wavs" / "LJ001-0000.wav"
    (folder / "metadata.csv").write_text("LJ001-0000\n")
    with pytest.raises(Exception, match=r"metadata.csv:1: expected '<id>\|<text>\|<normalised text>'"):
        read_speech_manifest(folder)


def _warm_restart_script():
    path = Path(__file__).resolve().parents[2] / "bench" / "tts_warm_restart.py"
    spec = importlib.util.spec_from_file_location("tts_warm_restart", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_warm_restart_copy_resumes_at_the_chosen_share_of_the_peak_rate(manifest, tmp_path):
    """A time-budget cosine run ends at rate ~0; bench/tts_warm_restart.py copies it so --resume restarts."""
    src, copy = tmp_path / "src", tmp_path / "copy"
    common = ["--data", str(manifest), *TINY, "--test-fraction", "0", "--log-every", "1", "--lr", "0.002"]
    budgeted = ["--max-time", "600", "--clock", "cpu"]   # the cosine decay follows the time budget
    assert main(["train", "tts", "--out", str(src), *common, "--epochs", "2", *budgeted]) == 0
    before = (src / "checkpoints" / "last.safetensors").read_bytes()
    _warm_restart_script().main(["--run", str(src), "--out", str(copy), "--lr-share", "0.5"])
    assert (src / "checkpoints" / "last.safetensors").read_bytes() == before   # the source is untouched
    budget = dict(dict(load_checkpoint(copy / "checkpoints" / "last.safetensors").meta["schedule"]["$dict"])
                  ["budget"]["$dict"])
    assert budget["p"] == pytest.approx(0.5)
    done = budget["done"]
    assert main(["train", "tts", "--out", str(copy), "--resume", "--epochs", "6", "--max-time", "600"]) == 0
    steps = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    # the rate logged at each update is the one set for the next: near half the 0.002 peak, then decaying to 0
    lrs = [r["lr"] for r in steps if r["kind"] == "step" and r["step"] > done]
    assert len(lrs) == 8 and 0.0007 < lrs[0] < 0.001 and lrs == sorted(lrs, reverse=True) and lrs[-1] == 0.0


def test_resume_equals_an_uninterrupted_run(manifest, tmp_path):
    same = ["--data", str(manifest), *TINY, "--schedule", "constant"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["train", "tts", "--out", str(whole), *same, "--epochs", "2", "--test-fraction", "0"]) == 0
    assert main(["train", "tts", "--out", str(parts), *same, "--epochs", "1", "--test-fraction", "0"]) == 0
    assert main(["train", "tts", "--out", str(parts), "--resume", "--epochs", "2"]) == 0
    a = load_checkpoint(whole / "checkpoints" / "last.safetensors").group("model")
    b = load_checkpoint(parts / "checkpoints" / "last.safetensors").group("model")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_best_checkpoint_is_the_lowest_validation_mel_loss(manifest, tmp_path):
    """``best`` follows the mel loss alone: the stop-token term of val_loss rises late in training and would
    pick early checkpoints."""
    out = tmp_path / "run"
    assert main(["train", "tts", "--data", str(manifest), "--out", str(out), *TINY, "--epochs", "3",
                 "--test-fraction", "0", "--schedule", "constant"]) == 0
    assert "monitor: val_mel" in (out / "config.yaml").read_text()
    evals = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "eval"]
    assert len(evals) == 3 and all(r["best"] == min(e["val_mel"] for e in evals[: i + 1])
                                   for i, r in enumerate(evals))
    lowest = min(evals, key=lambda r: r["val_mel"])
    best = load_checkpoint(out / "checkpoints" / "best.safetensors").meta
    assert best["trainer"]["step"] == lowest["step"]


def test_phoneme_symbols():
    ipa = text_symbols("bonjour tout le monde", "phonemes", "fr")
    assert ipa.startswith("bɔ̃ʒˈuʁ") and " " in ipa
    vocab = fit_vocabulary([ipa])
    assert encode(vocab, ipa, "x")[-1] == vocab.eos_id
    assert text_symbols("hello", "chars", "en-us") == "hello"


def test_audio_is_read_like_the_other_speech_tasks_naming_the_manifest_line(tmp_path):
    """load_mels reads through rnnkit.data.audio.read_waves: an unreadable, too short or (training) too long
    file is an error that starts with the manifest line, or with skip_bad a skipped entry saying the same."""
    from rnnkit.data.audio import write_wav
    from rnnkit.data.readers import DataError
    from rnnkit.modules.audio_features import FeatureConfig
    from rnnkit.tasks.tts.config import TTSDataConfig
    from rnnkit.tasks.tts.data import Corpus, load_mels

    rate = 8000
    tone = lambda seconds: 0.5 * np.sin(np.arange(int(rate * seconds)) * 0.3)   # noqa: E731
    files = [write_wav(tmp_path / "ok.wav", tone(0.5), rate), write_wav(tmp_path / "long.wav", tone(2.0), rate),
             write_wav(tmp_path / "short.wav", tone(0.01), rate), tmp_path / "noise.wav"]
    files[3].write_bytes(b"not audio")
    wheres = [f"m.jsonl:{n}" for n in range(1, 5)]
    corpus = Corpus(["a"] * 4, ["a"] * 4, files, wheres, "m.jsonl")
    features = FeatureConfig(sample_rate=rate, n_fft=256, hop_length=64, n_mels=8)
    with pytest.raises(DataError, match=r"^m.jsonl:2: .*long.wav: 2.0 s of audio, longer than max_seconds=1.0; "
                                        r"cut it into sentences or raise --max-seconds"):
        load_mels(corpus, features, TTSDataConfig(max_seconds=1.0))
    mels, kept = load_mels(corpus, features, TTSDataConfig(max_seconds=1.0, skip_bad=True))
    assert kept == [0] and mels[0].shape[1] == 8
    assert [m.split(": ")[0] for m in corpus.skipped] == wheres[1:]
    assert "short.wav: only 80 samples" in corpus.skipped[1] and "noise.wav: not a readable" in corpus.skipped[2]
    corpus.skipped.clear()
    _, kept = load_mels(corpus, features, TTSDataConfig(max_seconds=1.0, skip_bad=True), check_length=False)
    assert kept == [0, 1]                               # scoring a run reads long utterances too
