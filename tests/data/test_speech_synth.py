import json

import numpy as np
import pytest

pytest.importorskip("espeakng_loader", reason="eSpeak NG synthesis needs espeakng-loader: pip install 'rnnkit[speech]'")
pytest.importorskip("soundfile", reason="writing the synthesised set needs soundfile: pip install 'rnnkit[speech]'")

from rnnkit.data.audio import read_audio  # noqa: E402
from rnnkit.data.speech_manifest import read_jsonl_manifest  # noqa: E402
from rnnkit.data.speech_synth import SynthConfig, language_of, speech_dataset, synthesize  # noqa: E402


@pytest.mark.parametrize("voice", ["en", "fr", "en-us+f2"])
def test_one_two_three_is_non_silent_speech_of_plausible_length(voice):
    wave = synthesize("one two three", voice, rate=175, pitch=50, sample_rate=16000)
    seconds = len(wave) / 16000
    assert 0.4 < seconds < 3.0, seconds
    assert wave.dtype == np.float32 and np.abs(wave).max() > 0.1
    voiced = np.mean(np.abs(wave) > 0.02)
    assert voiced > 0.3                      # mostly speech, not padding


def test_rate_and_voice_change_the_audio():
    slow = synthesize("seven", "en", rate=120)
    fast = synthesize("seven", "en", rate=300)
    assert len(slow) > 1.3 * len(fast)
    assert not np.array_equal(synthesize("seven", "en+f2")[:4000], synthesize("seven", "en+m3")[:4000])


def test_unknown_voice_is_an_error_not_a_fallback():
    with pytest.raises(ValueError, match="no voice 'xx-nowhere'"):
        synthesize("one", "xx-nowhere")


def test_dataset_is_generated_once_and_cached(tmp_path):
    config = SynthConfig(set_name="digit_strings", count=3, voices=("en-us", "fr"), variants=("", "f2"),
                         rates=(200,), pitches=(50,), noise_snr_db=20.0)
    manifest = speech_dataset(config, cache_dir=tmp_path)
    assert manifest.parent.name == f"digit_strings-{config.key()}"
    assert [p.name for p in tmp_path.iterdir()] == [manifest.parent.name]          # no temporary folder left
    entries = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    m = read_jsonl_manifest(manifest)
    assert len(m) == 3
    for entry, utt in zip(entries, m.utterances):
        assert 3 <= len(utt.text.split()) <= 7
        assert utt.duration == pytest.approx(len(read_audio(utt.audio, 16000)) / 16000, abs=1e-3)
        lang = language_of(entry["voice"])
        assert (utt.text.split()[0] in {"zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit",
                                        "neuf"}) == (lang == "fr")
    stamp = manifest.stat().st_mtime_ns
    assert speech_dataset(config, cache_dir=tmp_path) == manifest and manifest.stat().st_mtime_ns == stamp
    other = speech_dataset(SynthConfig(set_name="commands", count=1, voices=("en",), rates=(200,), pitches=(50,)),
                           cache_dir=tmp_path)
    assert other.parent != manifest.parent


def test_synth_config_validation():
    with pytest.raises(ValueError, match="set_name"):
        SynthConfig(set_name="poems")
    with pytest.raises(ValueError, match="rates"):
        SynthConfig(rates=(1000,))
    with pytest.raises(ValueError, match="voices must not be empty"):
        SynthConfig(voices=())


def test_missing_library_says_how_to_install(monkeypatch):
    import sys

    from rnnkit.data.speech_synth import ESpeak
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)   # import now fails
    monkeypatch.setattr(ESpeak, "_instance", None)
    with pytest.raises(ImportError, match=r"pip install 'rnnkit\[speech\]'"):
        ESpeak.get()


def test_a_cached_set_is_written_atomically_and_a_concurrent_builders_copy_is_kept(tmp_path, monkeypatch):
    from pathlib import Path

    from rnnkit.data import speech_synth
    written, real = [], speech_synth.atomic_write_text
    monkeypatch.setattr(speech_synth, "atomic_write_text", lambda p, t: (written.append(Path(p).name), real(p, t)))
    final = tmp_path / "set-a"
    manifest = speech_synth.cached_speech_set(final, {"voice": "en"}, lambda work: ['{"audio_filepath": "0.wav"}'])
    assert sorted(written) == ["config.json", "manifest.jsonl"]      # fsync'd before the folder is renamed
    assert manifest.read_text() == '{"audio_filepath": "0.wav"}\n'
    assert json.loads((final / "config.json").read_text()) == {"voice": "en"}
    assert [p.name for p in tmp_path.iterdir()] == ["set-a"]           # no building folder left

    other = tmp_path / "set-b"
    def build(work):   # another process finishes the same set while this one builds it
        other.mkdir()
        (other / "manifest.jsonl").write_text("theirs\n")
        return ["mine"]
    assert speech_synth.cached_speech_set(other, {}, build).read_text() == "theirs\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set-a", "set-b"]
