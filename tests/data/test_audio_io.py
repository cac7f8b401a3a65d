import numpy as np
import pytest

soundfile = pytest.importorskip("soundfile", reason="audio I/O needs soundfile: pip install 'rnnkit[speech]'")

from rnnkit.data.audio import read_audio, resample, write_wav, audio_duration  # noqa: E402
from rnnkit.data.readers import DataError  # noqa: E402


def tone(freq, rate, seconds=0.5, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave, rate):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()]


@pytest.mark.parametrize("orig,target", [(44100, 16000), (22050, 16000), (8000, 16000)])
def test_resampling_a_tone_keeps_its_frequency(orig, target):
    out = resample(tone(440.0, orig), orig, target)
    assert abs(len(out) - 0.5 * target) <= 1
    assert abs(peak_hz(out, target) - 440.0) < 3.0
    assert abs(np.abs(out[100:-100]).max() - 0.5) < 0.02   # amplitude kept in the passband


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_read_any_format_resampled_and_mixed_to_mono(tmp_path, fmt):
    left, right = tone(300.0, 22050), np.full(11025, 0.1, dtype=np.float32)
    path = tmp_path / f"a.{fmt}"
    soundfile.write(path, np.stack([left, right], axis=1), 22050)
    wave = read_audio(path, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 8000) <= 1
    assert abs(float(wave[1000:-1000].mean()) - 0.05) < 0.01      # mean of the channels: (0 + 0.1) / 2
    assert abs(peak_hz(wave, 16000) - 300.0) < 4.0
    assert abs(audio_duration(path) - 0.5) < 1e-3


def test_write_wav_round_trip_and_leaves_no_temp_files(tmp_path):
    wave = tone(500.0, 16000)
    write_wav(tmp_path / "sub" / "x.wav", wave, 16000)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.wav"]
    back = read_audio(tmp_path / "sub" / "x.wav", 16000)
    np.testing.assert_allclose(back, wave, atol=1e-4)


def test_bad_audio_files_name_the_file_and_the_expectation(tmp_path):
    cases = {}
    cases["missing"] = (tmp_path / "missing.wav", "no such audio file")
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.wav", "file is empty")
    (tmp_path / "text.wav").write_text("this is not audio\n")
    cases["text"] = (tmp_path / "text.wav", "not a readable audio file")
    soundfile.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), 16000)
    cases["zero"] = (tmp_path / "zero.wav", "zero samples")
    soundfile.write(tmp_path / "silent.wav", np.zeros(1600, dtype=np.float32), 16000)
    cases["silent"] = (tmp_path / "silent.wav", "all silence")
    for path, why in cases.values():
        with pytest.raises(DataError, match=why) as err:
            read_audio(path, 16000)
        assert str(path) in str(err.value)
    assert read_audio(tmp_path / "silent.wav", 16000, allow_silence=True).shape == (1600,)


def test_stereo_wav_and_wav_bytes_read_back_by_libsndfile(tmp_path):
    """The standard-library writer's files are what libsndfile reads: channels interleaved, 16-bit values."""
    from rnnkit.data.audio import wav_bytes
    stereo = np.stack([tone(300.0, 8000, 0.1), -tone(500.0, 8000, 0.1, amp=1.5)], axis=1)  # right clips
    path = write_wav(tmp_path / "s.wav", stereo, 8000)
    back, rate = soundfile.read(path, dtype="float32")
    assert rate == 8000 and back.shape == stereo.shape
    np.testing.assert_allclose(back, np.clip(stereo, -1, 1), atol=1.0 / 32767)
    assert path.read_bytes() == wav_bytes(stereo, 8000)
    with pytest.raises(ValueError, match=r"non-empty \(N,\) or \(N, C\) array, got shape \(0,\)"):
        write_wav(tmp_path / "empty.wav", np.zeros(0), 8000)
    assert not (tmp_path / "empty.wav").exists()


def test_read_waves_names_the_manifest_line_or_collects_the_skipped(tmp_path):
    from rnnkit.data.audio import read_waves
    good, short, stereo = tmp_path / "good.wav", tmp_path / "short.wav", tmp_path / "stereo.flac"
    write_wav(good, tone(300.0, 8000, seconds=0.1), 8000)
    write_wav(short, tone(300.0, 8000, seconds=0.001), 8000)
    soundfile.write(stereo, np.stack([tone(300.0, 16000, 0.1), tone(300.0, 16000, 0.1)], axis=1), 16000)
    paths = [good, tmp_path / "gone.wav", short, stereo]
    wheres = ["m.jsonl:1", "m.jsonl:2", "m.jsonl:3", str(stereo)]
    problems: list[str] = []
    read = list(read_waves(paths, 8000, wheres=wheres, problems=problems, min_samples=64))
    assert [i for i, _ in read] == [0, 3]
    assert all(w.ndim == 1 and w.dtype == np.float32 and abs(len(w) - 800) <= 1 for _, w in read)
    assert problems[0].startswith("m.jsonl:2: ") and "gone.wav: no such audio file" in problems[0]
    assert problems[1].startswith("m.jsonl:3: ") and "only 8 samples at 8000 Hz, expected at least 64" in problems[1]
    with pytest.raises(DataError, match=r"^m.jsonl:2: .*gone.wav: no such audio file"):
        list(read_waves(paths, 8000, wheres=wheres))
    with pytest.raises(DataError, match=r"^\S*gone.wav: no such audio file"):   # no manifest: the file alone
        list(read_waves(paths[1:2], 8000))
