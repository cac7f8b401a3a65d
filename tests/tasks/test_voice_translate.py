"""The voice-translation cascade and its report, with eSpeak NG standing in for the synthesiser run (a trained
tts run is the cascade's real third stage; these tests check what the cascade does with any synthesiser):
the output's pitch follows the input voice, the report's fields, and each bad input."""
from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

# not importorskip: a plain `import pyworld` (0.3.5) fails without setuptools' pkg_resources, which
# rnnkit.modules.world's loader does without
if importlib.util.find_spec("pyworld") is None:
    pytest.skip("needs pyworld: pip install 'rnnkit[voice]'", allow_module_level=True)
pytest.importorskip("espeakng_loader")

from rnnkit.config import ConfigError  # noqa: E402
from rnnkit.data.audio import write_wav  # noqa: E402
from rnnkit.data.readers import DataError  # noqa: E402
from rnnkit.data.speech_synth import synthesize  # noqa: E402
from rnnkit.modules.voice import VoiceError, f0_stats  # noqa: E402
from rnnkit.modules.world import analyze  # noqa: E402
from rnnkit.tasks.voice_translate.cascade import Heard, Stages, transcript_confidence, translate_voice  # noqa: E402
from rnnkit.tasks.voice_translate.commands import load_stages, print_summary, run_file  # noqa: E402
from rnnkit.tasks.voice_translate.config import VoiceMatchConfig  # noqa: E402

SR = 16000
ENGLISH = "Where is the train station?"


class PhraseMT:
    """A translation stage answering one sentence (the cascade calls ``translate([text], beam=N)``)."""

    def __init__(self, french: str):
        self.french = french

    def translate(self, sentences, beam=5):
        return [[SimpleNamespace(text=self.french)] for _ in sentences]


def espeak_french(loaded, text):
    return synthesize(text, "fr", 160, 50, loaded.sample_rate), loaded.sample_rate


def stages(asr=None, french="où est la gare ?") -> Stages:
    return Stages(asr, PhraseMT(french), SimpleNamespace(sample_rate=SR), espeak_french, {"mt": "phrase", "tts": "espeak"})


def speaker(voice: str, pitch: int, text: str = ENGLISH, rate: int = SR) -> np.ndarray:
    return synthesize(text, voice, 160, pitch, rate)


@pytest.mark.parametrize("voice,pitch,synth_f0,rates", [("en-gb-scotland+m3", 20, "harvest", {}),
                                                         ("en-us-nyc+f2", 80, "harvest", {}),
                                                         ("en-gb-scotland+m3", 20, "harvest", {"synth_f0_rate": 0}),
                                                         ("en-us-nyc+f2", 80, "harvest", {"input_f0_rate": 4000}),
                                                         ("en-gb-scotland+m3", 20, "dio", {}),
                                                         ("en-us-nyc+f2", 80, "dio", {})])
def test_output_pitch_follows_the_input_voice(voice, pitch, synth_f0, rates):
    wave = speaker(voice, pitch)
    t = translate_voice(stages(), wave, SR, VoiceMatchConfig(synth_f0=synth_f0, **rates), transcript=ENGLISH)
    measured_in = f0_stats(analyze(wave, SR).f0)            # Harvest judges, whichever estimator the cascade used
    measured_out = f0_stats(analyze(t.wave, SR).f0)
    assert abs(measured_out.median_semitones - measured_in.median_semitones) < 1.0
    assert t.french == "où est la gare ?" and t.transcript_source == "given"
    stages_timed = {"input_analysis", "synthesis", "translation", "voice_matching", "output_analysis"}
    assert set(t.times) >= stages_timed | {"total", "cpu", "cpu_share"}
    assert set(t.times["cpu_share"]) == stages_timed
    assert sum(t.times["cpu_share"].values()) == pytest.approx(1.0, abs=0.05)   # the rest: splitting, resampling


def test_an_unknown_f0_estimator_is_a_config_error():
    with pytest.raises(ConfigError, match="synth_f0='yin' is not one of dio, harvest"):
        VoiceMatchConfig(synth_f0="yin")
    with pytest.raises(ConfigError, match="synth_f0_rate must be non-negative"):
        VoiceMatchConfig(synth_f0_rate=-1)


def test_report_files_and_fields(tmp_path, capsys):
    wav = write_wav(tmp_path / "in.wav", speaker("en-us", 50), SR)
    report = run_file(stages(), wav, tmp_path / "out.wav", VoiceMatchConfig(), transcript=ENGLISH)
    saved = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(report))
    for key in ("english", "french", "times", "input_f0", "output_f0", "synth_f0", "warp", "output_warp", "input",
                "warnings", "transcript_source", "output"):
        assert key in saved, key
    for stats in (saved["input_f0"], saved["output_f0"]):
        assert stats["median_hz"] > 50 and stats["spread_semitones"] >= 0
    assert (tmp_path / "out.wav").is_file() and (tmp_path / "out.png").stat().st_size > 1000
    assert saved["output"]["sample_rate"] == SR and "converted_to" not in saved["input"]
    assert saved["times"]["cpu_share"]["input_analysis"] > 0 and "total" in saved["times"]["cpu"]
    capsys.readouterr()
    print_summary(report, tmp_path / "out.wav")                            # what `rnnkit voice-translate` prints
    printed = capsys.readouterr().out
    assert "French:  où est la gare ?" in printed and "times: input_analysis" in printed and "cpu_share" not in printed


def test_another_rate_and_stereo_are_converted(tmp_path):
    mono = speaker("en-us", 50, rate=44100)
    wav = write_wav(tmp_path / "in.wav", np.stack([mono, mono], axis=1), 44100)
    report = run_file(stages(), wav, tmp_path / "out.wav", VoiceMatchConfig(), transcript=ENGLISH, plot=False)
    assert report["input"]["sample_rate"] == 44100 and report["input"]["channels"] == 2
    assert report["input"]["converted_to"] == {"sample_rate": SR, "channels": 1}


def test_silence_and_noise_only_are_refused(tmp_path):
    with pytest.raises(VoiceError, match="silent"):
        translate_voice(stages(), np.zeros(SR, np.float32), SR, VoiceMatchConfig(), transcript=ENGLISH)
    noise = (np.random.default_rng(0).standard_normal(SR) * 0.1).astype(np.float32)
    with pytest.raises(VoiceError, match="noise only"):
        translate_voice(stages(), noise, SR, VoiceMatchConfig(), transcript=ENGLISH)
    with pytest.raises(DataError, match="no such audio file"):
        run_file(stages(), tmp_path / "missing.wav", tmp_path / "out.wav", VoiceMatchConfig(), transcript=ENGLISH)


def test_long_input_is_split_at_pauses_not_cut():
    one = speaker("en-us", 50, "Good morning.")
    gap = np.zeros(int(0.4 * SR), np.float32)
    wave = np.concatenate([one, gap, one, gap, one])
    t = translate_voice(stages(), wave, SR, VoiceMatchConfig(max_seconds=len(one) / SR + 0.5), transcript="x y z")
    assert len(t.pieces) >= 2
    assert t.pieces[0][0] == 0 and t.pieces[-1][1] == pytest.approx(len(wave) / SR, abs=1e-3)


def test_no_recogniser_and_no_transcript_is_an_error():
    with pytest.raises(ConfigError, match="no recogniser run"):
        translate_voice(stages(), speaker("en-us", 50), SR, VoiceMatchConfig())


class FramesRecogniser:
    """A recogniser whose frames spell ``said`` (one character per frame, blanks between), for the check of a
    given transcript."""

    symbols = ["", " ", "a", "d", "i", "s", "y", "e", "n", "o"]

    def __init__(self, said: str):
        self.said = said
        self.tokenizer = SimpleNamespace(encode=lambda text: [self.symbols.index(c) for c in text if c in self.symbols])
        self.config = SimpleNamespace(data=SimpleNamespace(normalizer="basic"))

    def logits(self) -> torch.Tensor:
        frames = []
        for c in self.said:
            for s in (self.symbols.index(c), 0):
                row = torch.full((len(self.symbols),), -8.0)
                row[s] = 8.0
                frames.append(row)
        return torch.stack(frames)


def test_a_transcript_that_does_not_match_the_audio_gets_low_confidence():
    rec = FramesRecogniser("yes no")
    heard = Heard("yes no", 0.0, rec.logits())
    assert transcript_confidence(rec, heard, "Yes, no.") > 0.9
    assert transcript_confidence(rec, heard, "said and done") < 0.01


# ------------------------------------------------------- the bundle, through the registry and the CLI

def test_a_tiny_bundle_trains_evaluates_and_names_its_stage_runs(tmp_path, monkeypatch, capsys):
    from rnnkit import config as C
    from rnnkit.cli import main
    from rnnkit.tasks import TASKS, task_of_run

    torch.set_num_threads(1)
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    task = TASKS["voice-translate"]
    quick = {"max_steps": 3, "progress": "none", "tensorboard": "off", "threads": 1}
    cfg = C.from_dict(task.run_config, C.merge(dict(task.train_defaults), {
        "stages": {"asr_count": 6, "tts_count": 12, "test_fraction": 0.01, "tts_preset": "tiny", "direct": False,
                   "asr_hidden": 8, "mt_hidden": 8, "mt_generated": 30, "speech_grammar": 10}, "train": quick}))
    bundle = tmp_path / "bundle"
    info = task.train(cfg, bundle)
    task.report(info, bundle)
    assert task_of_run(bundle) is task and set(info["runs"]) == {"asr", "mt", "tts", "lm"}
    for stage, name in (("asr", "asr"), ("mt", "translate"), ("tts", "tts"), ("lm", "lm")):
        assert task_of_run(bundle / stage).name == name
    lm_text = (bundle / "data" / "lm_train.txt").read_text(encoding="utf-8").splitlines()
    assert lm_text and all(line == line.lower() and "." not in line for line in lm_text)   # as the recogniser writes
    test = bundle / "data" / "test.jsonl"
    held = {json.loads(line)["text"] for line in test.read_text(encoding="utf-8").splitlines()}
    trained = {line.split("\t")[0] for line in (bundle / "data" / "mt_train.tsv").read_text(encoding="utf-8").splitlines()}
    assert held and not held & trained                                    # held-out sentences stay held out
    from rnnkit.metrics.asr import normalize_basic
    assert not {normalize_basic(t) for t in held} & set(lm_text)
    capsys.readouterr()
    assert main(["evaluate", str(bundle), "--data", str(test), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"bleu", "chrf", "transcript_bleu", "asr_wer", "n"} <= set(metrics)
    assert metrics["decoding"] == "beam 4 + LM (weight 0.5, bonus 1.0)"        # the bundle's lm fused by default
    assert main(["evaluate", str(bundle), "--data", str(test), "--json", "--asr-beam", "1"]) == 0
    greedy = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert greedy["decoding"] == "greedy" and greedy["n"] == metrics["n"]
    assert main(["compare", "voice-translate", "--data", str(bundle), "--out", str(tmp_path / "cmp")]) == 0
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text(encoding="utf-8"))
    assert [r["model"] for r in rows] == ["cascade: asr -> translate", "translate on the true transcript"]
    assert rows[0]["bleu"] == metrics["bleu"] and not (bundle / "compare.json").exists()
    loaded = task.load(bundle)
    assert loaded.asr is not None and set(loaded.runs) == {"asr", "mt", "tts", "lm"} and loaded.decode is not None
    with pytest.raises(ConfigError, match="a run of asr, expected a run of `rnnkit train translate`"):
        load_stages(str(bundle), {"mt": str(bundle / "asr")}, task.run_task, task.synthesize)
    with pytest.raises(ConfigError, match="a run of asr, expected a run of `rnnkit train lm`"):
        load_stages(str(bundle), {"lm": str(bundle / "asr")}, task.run_task, task.synthesize,
                    VoiceMatchConfig(asr_beam=2))
    with pytest.raises(ConfigError, match="give --asr-beam N with N >= 2"):
        load_stages(str(bundle), {"lm": str(bundle / "lm")}, task.run_task, task.synthesize,
                    VoiceMatchConfig(asr_beam=1))


def test_the_served_route_answers_french_audio_and_the_report(tmp_path):
    """``rnnkit serve`` on a bundle: an English upload -> the French WAV and the report, without the server's
    temporary paths; bad uploads are 4xx answers naming the field."""
    import base64
    import io

    pytest.importorskip("fastapi")
    import soundfile
    from fastapi.testclient import TestClient

    from rnnkit.serve.app import create_app
    from rnnkit.serve.runs import ServedRun
    from rnnkit.tasks.voice_translate.serve import routes

    served = ServedRun("bundle", "none", "voice-translate", None, {r.name: r for r in routes(stages())})
    wav = write_wav(tmp_path / "in.wav", speaker("en-us", 50), SR)
    with TestClient(create_app([served])) as client:
        r = client.post("/runs/bundle/voice-translate", files={"audio": ("in.wav", wav.read_bytes(), "audio/wav")},
                        data={"transcript": ENGLISH})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["text"] == out["report"]["french"] == "où est la gare ?"
        audio, rate = soundfile.read(io.BytesIO(base64.b64decode(out["wav"])))
        assert rate == SR and len(audio) / rate == pytest.approx(out["report"]["output"]["seconds"], abs=1e-3)
        assert "path" not in out["report"]["input"] and "wav" not in out["report"]["output"]
        assert out["report"]["transcript_source"] == "given" and out["report"]["input_f0"]["median_hz"] > 50
        missing = client.post("/runs/bundle/voice-translate", data={"transcript": ENGLISH})
        assert missing.status_code == 422 and missing.json()["field"] == "audio"
        no_asr = client.post("/runs/bundle/voice-translate", files={"audio": ("in.wav", wav.read_bytes())})
        assert no_asr.status_code == 422, no_asr.text  # no recogniser in these stages and no transcript


def test_recogniser_noise_is_seeded_and_scaled_by_its_rate():
    import random

    from rnnkit.tasks.voice_translate.bundle import recogniser_noise

    text = "where is the train station i would like a coffee please"
    assert recogniser_noise(text, random.Random(0), 0.0) == text
    noisy = [recogniser_noise(text, random.Random(k), 0.1) for k in range(20)]
    assert noisy == [recogniser_noise(text, random.Random(k), 0.1) for k in range(20)]
    changed = sum(a != b for n in noisy for a, b in zip(n, text)) / (20 * len(text))
    assert 0.02 < changed and sum(n != text for n in noisy) >= 15


def test_the_bundle_summary_names_each_stage_s_own_test_scores(capsys):
    """The synthesiser's run reports test_mcd and test_monotonic_rate; the summary printed them as nothing."""
    from rnnkit.tasks import TASKS
    result = {"results": {"asr": {"test_wer": 0.42, "test_cer": 0.15, "elapsed_s": 149.0},
                          "tts": {"test_mcd": 4.84, "test_monotonic_rate": 1.0, "elapsed_s": 200.0}}}
    TASKS["voice-translate"].report(result, "BUNDLE")
    out = capsys.readouterr().out
    assert "asr: test_wer 0.420, test_cer 0.150 (149 s)" in out
    assert "tts: test_mcd 4.840, test_monotonic_rate 1.000 (200 s)" in out
