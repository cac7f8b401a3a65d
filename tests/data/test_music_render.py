"""The additive synthesiser, WAV writing, the SoundFont path's errors, the piano-roll PNG."""
import builtins
import wave

import numpy as np
import pytest

from rnnkit.data import music_render
from rnnkit.data.midi import PianoRoll
from rnnkit.data.music_render import Tone
from rnnkit.data.readers import DataError


def test_a4_sounds_at_440_hz_for_its_duration():
    sr = 8000
    audio = music_render.synthesize([Tone(69, 100, 0.25, 0.75)], sample_rate=sr, release_s=0.05, tail_s=0.0)
    assert audio.dtype == np.float32 and len(audio) == int(0.8 * sr)
    assert np.abs(audio[: int(0.24 * sr)]).max() == 0                   # silent before the start
    body = audio[int(0.3 * sr): int(0.7 * sr)]
    spectrum = np.abs(np.fft.rfft(body))
    assert np.fft.rfftfreq(len(body), 1 / sr)[spectrum.argmax()] == pytest.approx(440, abs=3)
    assert np.abs(audio).max() <= 0.9 + 1e-6


def test_roll_to_wav_file(tmp_path):
    frames = np.zeros((8, 13), dtype=bool)
    frames[0:4, [0, 4, 7]] = True
    roll = PianoRoll(frames, frames & np.r_[[True], [False] * 7][:, None], 60, 4)
    tones = music_render.roll_tones(roll, bpm=120)
    assert [(t.pitch, t.start_s, t.end_s) for t in tones] == [(60, 0.0, 0.5), (64, 0.0, 0.5), (67, 0.0, 0.5)]
    music_render.render_wav(tones, tmp_path / "c.wav", sample_rate=8000)
    with wave.open(str(tmp_path / "c.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.getnframes() > 0.5 * 8000
    assert not list(tmp_path.glob("*.tmp"))


def test_soundfont_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="nope.sf2: no such SoundFont"):
        music_render.fluidsynth_render([Tone(60, 80, 0, 1)], tmp_path / "nope.sf2")
    sf = tmp_path / "piano.sf2"
    sf.write_bytes(b"RIFF")
    real_import = builtins.__import__

    def no_fluidsynth(name, *a, **k):
        if name == "fluidsynth":
            raise ImportError("no module named fluidsynth")
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_fluidsynth)
    with pytest.raises(ImportError, match="pyfluidsynth"):
        music_render.render_wav([Tone(60, 80, 0, 1)], tmp_path / "x.wav", soundfont=sf)
    assert not (tmp_path / "x.wav").exists()


def test_piano_roll_png(tmp_path):
    frames = np.eye(12, dtype=bool)
    music_render.save_roll_png(frames, tmp_path / "roll.png", lowest=60, steps_per_quarter=4, title="scale")
    assert (tmp_path / "roll.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_midi_file_tones_follow_its_tempo(tmp_path):
    pytest.importorskip("mido")
    from rnnkit.data.midi import write_midi
    write_midi([(60, 0, 4), (67, 4, 6)], tmp_path / "m.mid", steps_per_quarter=4, bpm=60)
    tones = music_render.midi_tones(tmp_path / "m.mid")
    assert [(t.pitch, t.start_s, t.end_s) for t in tones] == [(60, 0.0, 1.0), (67, 1.0, 1.5)]
