import json

import pytest

from rnnkit.data.readers import DataError
from rnnkit.data.speech_manifest import (label_pattern_regex, read_jsonl_manifest, read_labelled_folder,
                                         read_librispeech, read_speech_manifest, read_table_manifest)

ALPHABET = set("abcdefghijklmnopqrstuvwxyz'")


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")   # the readers check existence only; decoding is read_audio's job
    return path


def test_jsonl_manifest_relative_and_absolute_paths(tmp_path):
    a, b = touch(tmp_path / "wav" / "a.wav"), touch(tmp_path / "b.wav")
    lines = [{"audio_filepath": "wav/a.wav", "text": "one  two", "duration": 1.5},
             {"audio_filepath": str(b), "text": "three"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    m = read_speech_manifest(tmp_path / "m.jsonl")
    assert [(u.audio, u.text, u.duration) for u in m.utterances] == [(a, "one two", 1.5), (b, "three", None)]
    assert m.utterances[1].source == f"{tmp_path / 'm.jsonl'}:2"


@pytest.mark.parametrize("suffix,sep,text_col", [(".csv", ",", "text"), (".tsv", "\t", "label")])
def test_table_manifest(tmp_path, suffix, sep, text_col):
    touch(tmp_path / "x.wav"), touch(tmp_path / "y.flac")
    path = tmp_path / f"m{suffix}"
    path.write_text(f"audio{sep}{text_col}\nx.wav{sep}yes\ny.flac{sep}no\n")
    m = read_speech_manifest(path)
    assert [(u.audio.name, u.text) for u in m.utterances] == [("x.wav", "yes"), ("y.flac", "no")]


def test_librispeech_layout(tmp_path):
    chapter = tmp_path / "19" / "198"
    touch(chapter / "19-198-0000.flac"), touch(chapter / "19-198-0001.flac")
    (chapter / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 CHAPTER ONE\n")
    m = read_speech_manifest(tmp_path)
    assert [(u.audio.name, u.text) for u in m.utterances] == [("19-198-0000.flac", "NORTHANGER ABBEY"),
                                                              ("19-198-0001.flac", "CHAPTER ONE")]
    assert read_librispeech(tmp_path).utterances == m.utterances


def test_labelled_folder_by_pattern_and_by_folder_name(tmp_path):
    touch(tmp_path / "pat" / "yes_bob_0.wav"), touch(tmp_path / "pat" / "no_ann_12.wav")
    m = read_speech_manifest(tmp_path / "pat", label_pattern="{label}_{speaker}_{index}.wav")
    assert sorted(u.text for u in m.utterances) == ["no", "yes"]
    touch(tmp_path / "dirs" / "left" / "1.wav"), touch(tmp_path / "dirs" / "right" / "2.ogg")
    m = read_labelled_folder(tmp_path / "dirs")
    assert [(u.audio.name, u.text) for u in m.utterances] == [("1.wav", "left"), ("2.ogg", "right")]


def test_label_pattern_needs_a_label_field():
    with pytest.raises(ValueError, match="must contain {label}"):
        label_pattern_regex("{speaker}_{index}.wav")
    assert label_pattern_regex("{label}-{n}.wav").match("go-3.wav").group("label") == "go"


def test_bad_entries_name_file_and_line(tmp_path):
    touch(tmp_path / "a.wav")
    path = tmp_path / "m.jsonl"
    bad_lines = {
        '{"audio_filepath": "a.wav", "text": "ok"}\n{"audio_filepath": "a.wav"\n': ("m.jsonl:2", "not valid JSON"),
        '{"audio_filepath": "a.wav"}\n': ("m.jsonl:1", '"text" fields'),
        '{"audio_filepath": "gone.wav", "text": "x"}\n': ("m.jsonl:1", "gone.wav does not exist"),
        '{"audio_filepath": "a.wav", "text": "  "}\n': ("m.jsonl:1", "empty transcript"),
        '{"audio_filepath": "a.wav", "text": "x", "duration": "long"}\n': ("m.jsonl:1", "duration"),
        '{"audio_filepath": "a.wav", "text": "x", "duration": 0}\n': ("m.jsonl:1", "positive number"),
    }
    for text, (where, why) in bad_lines.items():
        path.write_text(text)
        with pytest.raises(DataError, match=why) as err:
            read_jsonl_manifest(path)
        assert where in str(err.value)
    (tmp_path / "m.csv").write_text("path,text\na.wav,x\n")
    with pytest.raises(DataError, match="m.csv:1: header .* 'audio' column"):
        read_table_manifest(tmp_path / "m.csv")
    with pytest.raises(DataError, match="no such JSONL manifest"):
        read_jsonl_manifest(tmp_path / "none.jsonl")
    with pytest.raises(DataError, match="unknown manifest type"):
        read_speech_manifest(tmp_path / "a.wav")
    (tmp_path / "flat").mkdir()
    touch(tmp_path / "flat" / "a.wav")
    with pytest.raises(DataError, match="not inside a label folder"):
        read_labelled_folder(tmp_path / "flat")
    with pytest.raises(DataError, match="does not match label_pattern"):
        read_labelled_folder(tmp_path / "flat", "{label}_{n}.wav")
    with pytest.raises(DataError, match="no \\*.trans.txt"):
        read_librispeech(tmp_path / "flat")


def test_vocabulary_violations_are_reported_with_the_characters(tmp_path):
    touch(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("audio,text\na.wav,hello\na.wav,Héllo 42\n")
    with pytest.raises(DataError) as err:
        read_table_manifest(tmp_path / "m.csv", vocabulary=ALPHABET)
    assert f"{tmp_path / 'm.csv'}:3" in str(err.value)
    assert "['2', '4', 'H', 'é']" in str(err.value)


def test_skip_bad_counts_and_keeps_the_good_entries(tmp_path):
    touch(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("audio,text\na.wav,good\nmissing.wav,gone\na.wav,BAD\na.wav,\n")
    m = read_table_manifest(tmp_path / "m.csv", vocabulary=ALPHABET, skip_bad=True)
    assert [u.text for u in m.utterances] == ["good"]
    assert m.skipped == 3 and len(m.problems) == 3 and "m.csv:3" in m.problems[0]
    (tmp_path / "all_bad.csv").write_text("audio,text\nmissing.wav,gone\n")
    with pytest.raises(DataError, match="no usable utterances .1 skipped"):
        read_table_manifest(tmp_path / "all_bad.csv", skip_bad=True)


def test_skip_bad_jsonl_counts_unreadable_lines_in_order(tmp_path):
    touch(tmp_path / "a.wav")
    (tmp_path / "m.jsonl").write_text('{"audio_filepath": "a.wav", "text": "good"}\n{"audio_filepath": \n'
                                      '["a.wav"]\n{"audio_filepath": "gone.wav", "text": "x"}\n'
                                      '{"audio_filepath": "a.wav", "text": "also"}\n')
    m = read_jsonl_manifest(tmp_path / "m.jsonl", skip_bad=True)
    assert [u.text for u in m.utterances] == ["good", "also"]
    assert m.skipped == 3 and [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in m.problems] == ["2", "3", "4"]
    assert "not valid JSON" in m.problems[0] and "got a JSON list" in m.problems[1]
    with pytest.raises(DataError, match="m.jsonl:2: not valid JSON .*; expected {\"audio_filepath\""):
        read_jsonl_manifest(tmp_path / "m.jsonl")
