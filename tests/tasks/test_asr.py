"""The asr task end to end through the CLI on a few seconds of eSpeak NG speech: train, evaluate, transcribe,
predict, resume, beam search with a language-model run, and the bad inputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("espeakng_loader", reason="the speech set is synthesised with espeakng-loader: "
                    "pip install 'rnnkit[speech]'")
pytest.importorskip("soundfile", reason="audio I/O needs soundfile: pip install 'rnnkit[speech]'")

from rnnkit.cli import main  # noqa: E402
from rnnkit.data.speech_synth import SynthConfig, speech_dataset  # noqa: E402
from rnnkit.tasks import TASKS  # noqa: E402
from rnnkit.tasks.asr.decode import LMFusion  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402

TINY = ["--hidden", "8", "--layers", "1", "--batch-size", "4", "--epochs", "1", "--progress", "none",
        "--tensorboard", "off", "--warmup-steps", "0", "--val-fraction", "0.2", "--test-fraction", "0.2"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """12 isolated digits spoken by two voices (about a second each)."""
    torch.set_num_threads(1)
    return speech_dataset(SynthConfig("digits", 12, voices=("en", "en-us"), variants=("",), rates=(220,),
                                      pitches=(50,)), tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="module")
def run(manifest, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("asr") / "run"
    assert main(["train", "asr", "--data", str(manifest), "--out", str(out), *TINY]) == 0
    return out


def _audio(manifest: Path, n: int = 2) -> list[str]:
    rows = [json.loads(line) for line in manifest.read_text().splitlines()[:n]]
    return [str(manifest.parent / r["audio_filepath"]) for r in rows]


def test_train_writes_a_complete_run(run):
    result = json.loads((run / "result.json").read_text())
    assert 0.0 <= result["test_wer"] and 0.0 <= result["test_cer"] and result["normalizer"] == "basic"
    assert result["train"] + result["val"] + result["test"] == 12
    for name in ("checkpoints/best.safetensors", "checkpoints/last.safetensors", "metrics.jsonl", "config.yaml",
                 "plots/curves.png", "data/test.jsonl", "eval/test.hyp.jsonl"):
        assert (run / name).is_file(), name
    meta = load_checkpoint(run / "checkpoints" / "best.safetensors").meta
    assert meta["metadata"]["features"]["n_mels"] == 40 and meta["metadata"]["tokenizer"]["kind"] == "char"
    tensors = load_checkpoint(run / "checkpoints" / "best.safetensors").tensors
    assert any(k.startswith("model.normalizer.") for k in tensors)
    rec = TASKS["asr"].load(run)
    assert int(rec.model.normalizer.count) > 0  # fitted on the training features, restored from the checkpoint
    with torch.no_grad():
        out = rec.model(*TASKS["asr"].example_inputs(rec))
    assert out.logits.shape[-1] == len(rec.symbols)


def test_evaluate_prints_wer_cer_and_writes_hypotheses(run, manifest, capsys):
    assert main(["evaluate", str(run), "--data", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "WER" in out and "CER" in out and "normaliser 'basic'" in out and "decoding greedy" in out
    rows = [json.loads(line) for line in (run / "eval" / "manifest.hyp.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and set(rows[0]) == {"audio", "reference", "hypothesis"}
    assert rows[0]["reference"] in {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
    assert (run / "eval" / "manifest-1.png").stat().st_size > 1000  # spectrogram with the CTC labels
    assert main(["evaluate", str(run), "--data", str(manifest), "--beam", "3", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["decoding"] == "beam 3" and 0 <= metrics["cer"] and metrics["utterances"] == 12


def test_transcribe_text_json_timings_and_plot(run, manifest, tmp_path, capsys):
    files = _audio(manifest)
    assert main(["transcribe", str(run), *files, "--threads", "1"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(files[0] + "\t")
    assert "real-time factor" in captured.err
    assert main(["transcribe", str(run), files[0], "--json", "--timings", "--beam", "2", "--plot",
                 str(tmp_path / "png")]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert set(row) == {"audio", "text", "seconds", "words", "plot"} and row["seconds"] > 0.1
    assert all(0 <= w["start"] < w["end"] <= row["seconds"] + 0.1 for w in row["words"])
    assert Path(row["plot"]).is_file()


def test_predict_audio_files_and_a_manifest(run, manifest, capsys):
    files = _audio(manifest, 1)
    assert main(["predict", str(run), files[0], "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert len(preds) == 1 and preds[0]["audio"] == files[0] and isinstance(preds[0]["text"], str)
    assert main(["predict", str(run), "--file", str(manifest), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 12


def test_resume_equals_an_uninterrupted_run(manifest, tmp_path):
    same = ["--data", str(manifest), *TINY[:-6], "--progress", "none", "--tensorboard", "off", "--schedule",
            "constant", "--warmup-steps", "0", "--dropout", "0.2", "--freq-masks", "1", "--time-masks", "1",
            "--speed", "0.9,1.1", "--noise-snr-db", "20"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["train", "asr", "--out", str(whole), *same, "--epochs", "2"]) == 0
    assert main(["train", "asr", "--out", str(parts), *same, "--epochs", "1"]) == 0
    assert main(["train", "asr", "--out", str(parts), "--resume", "--epochs", "2"]) == 0
    a = load_checkpoint(whole / "checkpoints" / "last.safetensors").group("model")
    b = load_checkpoint(parts / "checkpoints" / "last.safetensors").group("model")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert json.loads((whole / "result.json").read_text())["steps"] == \
        json.loads((parts / "result.json").read_text())["steps"]


@pytest.fixture(scope="module")
def lm_runs(run, tmp_path_factory) -> dict[str, Path]:
    """A tiny character RNN and a character 3-gram on the recogniser's transcripts, one per line."""
    d = tmp_path_factory.mktemp("lm")
    texts = [json.loads(line)["text"] for split in ("train", "val", "test")
             for line in (run / "data" / f"{split}.jsonl").read_text().splitlines()]
    corpus = d / "transcripts.txt"
    corpus.write_text("\n".join(texts * 20) + "\n")
    runs = {"rnn": d / "rnn", "markov": d / "markov"}
    assert main(["train", "lm", "--data", str(corpus), "--out", str(runs["rnn"]), "--hidden", "8", "--layers", "1",
                 "--bptt", "8", "--batch-size", "2", "--max-steps", "3", "--progress", "none",
                 "--tensorboard", "off"]) == 0
    assert main(["train", "lm", "--data", str(corpus), "--out", str(runs["markov"]), "--model", "markov",
                 "--order", "3"]) == 0
    return runs


@pytest.mark.parametrize("kind", ["rnn", "markov"])
def test_beam_search_with_a_language_model_run(run, manifest, lm_runs, kind, capsys):
    assert main(["evaluate", str(run), "--data", str(manifest), "--beam", "3", "--lm", str(lm_runs[kind]),
                 "--lm-weight", "0.8", "--insertion-bonus", "0.5", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["decoding"] == "beam 3 + LM (weight 0.8, bonus 0.5)"
    assert main(["transcribe", str(run), _audio(manifest, 1)[0], "--beam", "3", "--lm", str(lm_runs[kind])]) == 0


def test_fusion_scores_are_the_language_models_own(run, lm_runs):
    rec = TASKS["asr"].load(run)
    lm = TASKS["lm"].load(lm_runs["markov"])
    fusion = LMFusion(lm, rec.symbols)
    text = next(t for t in ("one", "two", "six", "zero") if all(c in rec.symbols for c in t))
    asr_ids = [rec.symbols.index(c) for c in text]
    fused = sum(fusion(tuple(asr_ids[:i]), asr_ids[i]) for i in range(len(asr_ids)))
    direct = sum(lm.model.token_log_probs(lm.tokenizer.encode("\n" + text))[1:])
    assert fused == pytest.approx(direct, abs=1e-6)


def test_a_language_model_without_the_characters_is_a_clear_error(run, manifest, tmp_path, capsys):
    corpus = tmp_path / "abc.txt"
    corpus.write_text("abc cab\n" * 50)
    lm = tmp_path / "lm"
    assert main(["train", "lm", "--data", str(corpus), "--out", str(lm), "--model", "markov", "--order", "2"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(manifest), "--beam", "2", "--lm", str(lm)]) == 2
    assert "do not cover the recogniser's characters" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", str(manifest), "--lm", str(lm)]) == 2  # fusion needs a beam
    assert "--beam N with N >= 2" in capsys.readouterr().err


def test_missing_audio_file_is_named(run, manifest, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"audio_filepath": str(manifest.parent / "00000.wav"), "text": "one"}) + "\n"
                   + json.dumps({"audio_filepath": "nowhere.wav", "text": "two"}) + "\n")
    assert main(["evaluate", str(run), "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "nowhere.wav" in err
    assert main(["transcribe", str(run), str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav: no such audio file" in capsys.readouterr().err


def test_out_of_vocabulary_transcript_at_evaluate_time(run, manifest, tmp_path, capsys):
    bad = tmp_path / "oov.jsonl"
    audio = str(manifest.parent / "00000.wav")
    bad.write_text(json.dumps({"audio_filepath": audio, "text": "one"}) + "\n"
                   + json.dumps({"audio_filepath": audio, "text": "one 7 qu"}) + "\n")
    assert main(["evaluate", str(run), "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "outside the run's vocabulary" in err and "'7'" in err and "--skip-bad" in err
    assert main(["evaluate", str(run), "--data", str(bad), "--skip-bad", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["utterances"] == 1 and metrics["skipped"] == 1


def test_not_a_run_is_a_clear_error(tmp_path, manifest, capsys):
    audio = _audio(manifest, 1)[0]
    assert main(["transcribe", str(tmp_path / "nothing"), audio]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--data", str(manifest)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_the_attention_head_of_a_ctc_run_is_a_clear_error(run, manifest, capsys):
    assert main(["transcribe", str(run), _audio(manifest, 1)[0], "--head", "attention"]) == 2
    assert "has no attention decoder (train with --decoder attention); use --head ctc" in capsys.readouterr().err


def test_a_run_of_another_task_is_refused(lm_runs, manifest, capsys):
    assert main(["transcribe", str(lm_runs["rnn"]), _audio(manifest, 1)[0]]) == 2
    assert "not a asr run (task 'lm')" in capsys.readouterr().err


def test_training_stops_on_a_bad_entry_or_skips_it(manifest, tmp_path, capsys):
    lines = manifest.read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    for r in rows:
        r["audio_filepath"] = str(manifest.parent / r["audio_filepath"])
    rows.insert(3, {"audio_filepath": str(tmp_path / "gone.wav"), "text": "three"})
    bad = tmp_path / "train.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["train", "asr", "--data", str(bad), "--out", str(tmp_path / "a"), *TINY]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:4" in err and "gone.wav" in err
    assert main(["train", "asr", "--data", str(bad), "--out", str(tmp_path / "b"), *TINY, "--skip-bad",
                 "--max-steps", "1"]) == 0
    assert "(1 skipped:" in capsys.readouterr().out


def test_a_run_configured_with_beam_and_lm_scores_its_test_split_both_ways(manifest, lm_runs, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "asr", "--data", str(manifest), "--out", str(out), *TINY, "--max-steps", "1",
                 "--beam", "2", "--lm", str(lm_runs["markov"])]) == 0
    result = json.loads((out / "result.json").read_text())
    assert {"test_wer", "test_cer", "test_beam2_lm_wer", "test_beam2_lm_cer"} <= set(result)
    assert "test_beam2_lm: WER" in capsys.readouterr().out
    assert main(["transcribe", str(out), _audio(manifest, 1)[0], "--json"]) == 0  # the run's decoding: beam + LM


def test_batched_lm_prefetch_gives_the_one_by_one_scores(run, lm_runs):
    rec = TASKS["asr"].load(run)
    lm = TASKS["lm"].load(lm_runs["rnn"])
    one, batched = LMFusion(lm, rec.symbols), LMFusion(lm, rec.symbols)
    a, b = 1, len(rec.symbols) - 1
    prefixes = [(), (a,), (b,), (a, b), (b, a), (a, a)]
    for p in prefixes[:3]:
        batched.prefetch([p])          # the empty prefix and the first ones are stepped one by one
        batched(p, a)
    batched.prefetch(prefixes[3:])     # three children of known prefixes in one batch
    assert all(p in batched.cache for p in prefixes[3:])
    for p in prefixes:
        for token in range(1, len(rec.symbols)):
            assert batched(p, token) == pytest.approx(one(p, token), abs=1e-5)
