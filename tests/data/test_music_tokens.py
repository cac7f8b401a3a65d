"""Performance events and melody tokens: encode/decode round trips and their vocabularies."""
import numpy as np
import pytest

from rnnkit.data.music_tokens import MelodyTokenizer, PerfNote, PerformanceTokenizer, melody_from_roll


def test_performance_vocabulary_is_oore_et_al():
    tok = PerformanceTokenizer()
    assert tok.vocab_size == 388
    assert [tok.describe(t) for t in (0, 127, 128, 256, 355, 356, 387)] == [
        "NOTE_ON 0", "NOTE_ON 127", "NOTE_OFF 0", "TIME_SHIFT 1", "TIME_SHIFT 100", "VELOCITY 0", "VELOCITY 31"]


def test_performance_hand_case():
    tok = PerformanceTokenizer()
    notes = [PerfNote(60, 80, 0.0, 0.5), PerfNote(64, 80, 0.0, 1.5), PerfNote(67, 20, 2.5, 2.6)]
    toks = tok.encode(notes)
    assert [tok.describe(t) for t in toks] == [
        "VELOCITY 20", "NOTE_ON 60", "NOTE_ON 64", "TIME_SHIFT 50", "NOTE_OFF 60", "TIME_SHIFT 100",
        "NOTE_OFF 64", "TIME_SHIFT 100", "VELOCITY 5", "NOTE_ON 67", "TIME_SHIFT 10", "NOTE_OFF 67"]
    back = tok.decode(toks)
    assert [(n.pitch, tok.velocity_bin(n.velocity), round(n.start_s, 6), round(n.end_s, 6)) for n in back] == [
        (60, 20, 0.0, 0.5), (64, 20, 0.0, 1.5), (67, 5, 2.5, 2.6)]


def test_performance_round_trip_random():
    rng = np.random.default_rng(0)
    tok = PerformanceTokenizer()
    notes = []
    for _ in range(60):
        s = rng.uniform(0, 8)
        notes.append(PerfNote(int(rng.integers(21, 109)), int(rng.integers(1, 128)), s, s + rng.uniform(0.001, 2.5)))
    toks = tok.encode(notes)
    back = tok.decode(toks, strict=True)
    key = lambda n: (round(n.start_s / 0.01), n.pitch, round(n.end_s / 0.01), n.velocity)  # noqa: E731
    assert sorted(map(key, back)) == sorted(map(key, tok.quantise(notes)))
    assert tok.encode(back) == toks
    assert all(0 <= t < tok.vocab_size for t in toks)


def test_performance_decode_generated_garbage_is_lenient_or_strict():
    tok = PerformanceTokenizer()
    toks = [128 + 61, 60, 256 + 4]           # stray NOTE_OFF 61, NOTE_ON 60 never switched off
    assert [(n.pitch, round(n.end_s, 6)) for n in tok.decode(toks)] == [(60, 0.05)]
    with pytest.raises(ValueError, match="token 0: NOTE_OFF 61"):
        tok.decode(toks, strict=True)
    with pytest.raises(ValueError, match="token 1 is 400"):
        tok.decode([60, 400])


def test_melody_round_trip_and_errors():
    tok = MelodyTokenizer(lowest=48, highest=84, max_steps=16)
    melody = [(60, 4), (None, 2), (62, 1), (84, 16), (48, 3)]
    toks = tok.encode(melody)
    assert len(toks) == 10 and tok.decode(toks) == melody
    assert tok.decode(tok.encode([(None, 40)])) == [(None, 16), (None, 16), (None, 8)]
    with pytest.raises(ValueError, match="note 0: 17 steps is longer than max_steps=16"):
        tok.encode([(60, 17)])
    with pytest.raises(ValueError, match="note 1: pitch 90 outside 48..84"):
        tok.encode([(60, 1), (90, 1)])
    with pytest.raises(ValueError, match="token 1 is 3; expected a duration token"):
        tok.decode([3, 3])


def test_melody_from_roll():
    frames = np.zeros((8, 5), dtype=bool)
    frames[0:2, 1] = frames[2:4, 1] = frames[5:8, 3] = True
    onsets = np.zeros_like(frames)
    onsets[0, 1] = onsets[2, 1] = onsets[5, 3] = True
    assert melody_from_roll(frames, 60, onsets) == [(61, 2), (61, 2), (None, 1), (63, 3)]
    assert melody_from_roll(frames, 60) == [(61, 4), (None, 1), (63, 3)]
    frames[6, 0] = True
    with pytest.raises(ValueError, match=r"frame 6 has 2 notes \[60, 63\]"):
        melody_from_roll(frames, 60)
    assert melody_from_roll(frames, 60, policy="highest") == [(61, 4), (None, 1), (63, 3)]


def test_performance_overlapping_same_pitch_notes_are_cut_at_the_next_onset():
    tok = PerformanceTokenizer()
    notes = [PerfNote(60, 64, 0.0, 1.0), PerfNote(60, 64, 0.5, 1.5), PerfNote(62, 64, 0.2, 0.3),
             PerfNote(62, 100, 0.2, 0.9)]          # same onset: the later-sorted (longer) note wins
    want = [(60, 0.0, 0.5), (62, 0.2, 0.9), (60, 0.5, 1.5)]
    got = tok.decode(tok.encode(notes), strict=True)
    assert [(n.pitch, round(n.start_s, 6), round(n.end_s, 6)) for n in got] == want


def test_midi_file_to_events_and_back(tmp_path):
    pytest.importorskip("mido")
    from rnnkit.data.midi import read_midi_notes, write_midi
    from rnnkit.data.music_tokens import perf_notes
    write_midi([(60, 0, 3), (64, 1, 2), (67, 2, 9)], tmp_path / "a.mid", steps_per_quarter=4, bpm=100)
    tok = PerformanceTokenizer()
    notes = tok.quantise(perf_notes(read_midi_notes(tmp_path / "a.mid").notes))
    write_midi(tok.decode(tok.encode(notes)), tmp_path / "b.mid", bpm=100)
    again = tok.quantise(perf_notes(read_midi_notes(tmp_path / "b.mid").notes))
    assert again == notes and [n.pitch for n in notes] == [60, 64, 67]
    assert notes[2].end_s == pytest.approx(9 * 0.15)     # 9 sixteenths at 100 bpm
