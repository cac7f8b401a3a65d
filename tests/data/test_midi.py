"""MIDI <-> piano roll: round trips, tempo maps on any track, bad files, the parse-once cache."""
import numpy as np
import pytest

mido = pytest.importorskip("mido")

from rnnkit.data import midi  # noqa: E402
from rnnkit.data.midi import PianoRoll, RollConfig  # noqa: E402
from rnnkit.data.readers import DataError  # noqa: E402

CFG = RollConfig(steps_per_quarter=4, lowest=48, highest=84)


def _two_track(path, pitched=True, drum=False, pitch=60):
    """Type 1, 480 ticks per beat: the tempo map on track 0 (120 bpm, then 60 bpm from beat 2), notes on track 1."""
    t0 = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0),
                         mido.MetaMessage("set_tempo", tempo=1_000_000, time=960)])
    t1 = mido.MidiTrack()
    ch = 9 if drum else 0
    if pitched or drum:   # beat 0-1, beat 3-4 (after the change), a chord at beat 4
        t1 += [mido.Message("note_on", note=pitch, velocity=90, channel=ch, time=0),
               mido.Message("note_off", note=pitch, velocity=0, channel=ch, time=480),
               mido.Message("note_on", note=pitch + 4, velocity=70, channel=ch, time=960),
               mido.Message("note_on", note=pitch + 4, velocity=0, channel=ch, time=480),
               mido.Message("note_on", note=pitch, velocity=60, channel=ch, time=0),
               mido.Message("note_on", note=pitch + 7, velocity=60, channel=ch, time=0),
               mido.Message("note_off", note=pitch, channel=ch, time=240),
               mido.Message("note_off", note=pitch + 7, channel=ch, time=0)]
    mido.MidiFile(type=1, ticks_per_beat=480, tracks=[t0, t1]).save(str(path))


def test_tempo_map_on_track_zero_times_notes_after_the_change(tmp_path):
    path = tmp_path / "tempo.mid"
    _two_track(path)
    got = midi.read_midi_notes(path)
    assert [n.pitch for n in got.notes] == [60, 64, 60, 67]
    # beats 0-1 at 0.5 s/beat; the change at beat 2 (1.0 s); beat 3 -> 2.0 s, beat 4 -> 3.0 s, 4.5 -> 3.5 s
    times = [t for n in got.notes for t in (n.start_s, n.end_s)]
    assert times == pytest.approx([0.0, 0.5, 2.0, 3.0, 3.0, 3.5, 3.0, 3.5])
    roll = midi.notes_to_roll(got, CFG)   # quantisation in beats does not depend on tempo
    assert midi.roll_to_notes(roll.frames, CFG.lowest, roll.onsets) == [(60, 0, 4), (64, 12, 16), (60, 16, 18),
                                                                         (67, 16, 18)]


def test_tempo_change_on_a_note_track_is_applied(tmp_path):
    t0 = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
    t1 = mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                         mido.Message("note_off", note=60, time=480),
                         mido.MetaMessage("set_tempo", tempo=1_000_000, time=480),   # tick 960, on track 1
                         mido.Message("note_on", note=64, velocity=90, time=480),
                         mido.Message("note_off", note=64, time=480)])
    path = tmp_path / "tempo_on_track1.mid"
    mido.MidiFile(type=1, ticks_per_beat=480, tracks=[t0, t1]).save(str(path))
    got = midi.read_midi_notes(path)
    assert [t for n in got.notes for t in (n.start_s, n.end_s)] == pytest.approx([0.0, 0.5, 2.0, 3.0])


def test_roll_midi_roll_round_trip_keeps_every_note(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.random((40, CFG.n_pitches)) < 0.15
    onsets = frames & (rng.random(frames.shape) < 0.3)
    onsets[0] |= frames[0]
    onsets[1:] |= frames[1:] & ~frames[:-1]      # every run starts with an onset
    roll = PianoRoll(frames, onsets, CFG.lowest, CFG.steps_per_quarter)
    path = tmp_path / "rt.mid"
    midi.write_roll_midi(roll, path, bpm=97)
    back = midi.read_midi_roll(path, CFG)
    T = back.frames.shape[0]
    assert T <= 40 and not frames[T:].any()       # trailing empty frames carry no note
    np.testing.assert_array_equal(back.frames, frames[:T])
    np.testing.assert_array_equal(back.onsets, onsets[:T])


def test_midi_roll_midi_keeps_quantised_notes(tmp_path):
    notes = [(60, 0, 3), (64, 0, 3), (60, 3, 5), (72, 7, 8), (55, 8, 16)]
    path = tmp_path / "n.mid"
    midi.write_midi(notes, path, steps_per_quarter=4, bpm=140)
    roll = midi.read_midi_roll(path, CFG)
    assert midi.roll_to_notes(roll.frames, CFG.lowest, roll.onsets) == sorted(notes, key=lambda n: (n[1], n[0]))
    # a coarser grid rounds each boundary to the nearest step, never drops a note
    coarse = midi.read_midi_roll(path, RollConfig(steps_per_quarter=2, lowest=48, highest=84))
    assert len(midi.roll_to_notes(coarse.frames, 48, coarse.onsets)) == len(notes)


def test_bad_files_raise_naming_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02garbage")
    with pytest.raises(DataError, match="corrupt.mid: not a readable MIDI"):
        midi.read_midi_roll(corrupt, CFG)
    empty = tmp_path / "empty.mid"
    _two_track(empty, pitched=False)
    with pytest.raises(DataError, match="empty.mid: no notes"):
        midi.read_midi_roll(empty, CFG)
    drums = tmp_path / "drums.mid"
    _two_track(drums, pitched=False, drum=True)
    with pytest.raises(DataError, match="drums.mid: drum notes only"):
        midi.read_midi_roll(drums, CFG)
    high = tmp_path / "high.mid"
    _two_track(high, pitch=80)
    with pytest.raises(DataError, match=r"high.mid: pitches \[84, 87\] lie outside .*48..83"):
        midi.read_midi_roll(high, RollConfig(lowest=48, highest=83))


def test_drums_are_dropped_beside_pitched_notes(tmp_path):
    t = mido.MidiTrack([mido.Message("note_on", note=36, velocity=100, channel=9, time=0),
                        mido.Message("note_on", note=60, velocity=100, channel=0, time=0),
                        mido.Message("note_off", note=36, channel=9, time=480),
                        mido.Message("note_off", note=60, channel=0, time=0)])
    path = tmp_path / "mixed.mid"
    mido.MidiFile(type=0, ticks_per_beat=480, tracks=[t]).save(str(path))
    got = midi.read_midi_notes(path)
    assert [n.pitch for n in got.notes] == [60] and got.n_drum_notes == 1


def test_folder_skip_bad_counts_and_cache_parses_once(tmp_path, monkeypatch):
    d = tmp_path / "songs"
    d.mkdir()
    midi.write_midi([(60, 0, 4)], d / "a.mid")
    (d / "b.mid").write_bytes(b"not midi")
    with pytest.raises(DataError, match="b.mid"):
        midi.load_midi_folder(d, CFG)
    cache = tmp_path / "cache"
    got = midi.load_midi_folder(d, CFG, cache_dir=cache, skip_bad=True)
    assert [p.endswith("a.mid") for p, _ in got.rolls] == [True]
    assert len(got.skipped) == 1 and "b.mid" in got.skipped[0][1]
    assert len(list(cache.glob("*.npz"))) == 2 and not list(cache.glob("*.tmp"))

    calls = []
    real = midi.read_midi_roll
    monkeypatch.setattr(midi, "read_midi_roll", lambda *a: calls.append(a) or real(*a))
    again = midi.load_midi_folder(d, CFG, cache_dir=cache, skip_bad=True)
    assert calls == [] and len(again.skipped) == 1
    np.testing.assert_array_equal(again.rolls[0][1].frames, got.rolls[0][1].frames)
    midi.write_midi([(60, 0, 4), (62, 4, 8)], d / "a.mid")   # new size and mtime: parsed again
    third = midi.load_midi_folder(d, CFG, cache_dir=cache, skip_bad=True)
    assert len(calls) == 1 and third.rolls[0][1].frames.shape[0] == 8
    other = midi.load_midi_folder(d, RollConfig(steps_per_quarter=2, lowest=48, highest=84), cache_dir=cache,
                                  skip_bad=True)   # other settings: another key
    assert len(calls) == 3 and other.rolls[0][1].frames.shape[0] == 4


def test_transpose_and_augmentation_stay_in_range():
    frames = np.zeros((4, 5), dtype=bool)
    frames[0, 1] = frames[2, 3] = True
    roll = PianoRoll(frames, frames.copy(), 60, 4)
    up = midi.transpose(roll, 1)
    assert up.frames[0, 2] and up.frames[2, 4] and up.frames.sum() == 2
    with pytest.raises(ValueError, match="outside 60..64"):
        midi.transpose(roll, 2)
    assert midi.transpose_range(frames, 3) == [-1, 0, 1]
    rng = np.random.default_rng(1)
    shifts = {midi.random_transpose(roll, 3, rng)[1] for _ in range(30)}
    assert shifts == {-1, 0, 1}


def test_folder_with_only_bad_files_or_none_raises(tmp_path):
    (tmp_path / "x.mid").write_bytes(b"junk")
    with pytest.raises(DataError, match="all 1 MIDI files were bad"):
        midi.load_midi_folder(tmp_path, CFG, skip_bad=True)
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(DataError, match="no .mid or .midi files"):
        midi.load_midi_folder(empty, CFG)
