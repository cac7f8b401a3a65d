"""Readers of labelled files: every bad file names the file, the line and (where one is at fault) the column."""
from __future__ import annotations

import math

import pytest

from rnnkit.data.readers import DataError
from rnnkit.data.tabular import (parse_sequence, read_class_folders, read_conll, read_table, read_tagged,
                                 read_tagged_jsonl)


def _err(fn, *args) -> str:
    with pytest.raises(DataError) as info:
        fn(*args)
    return str(info.value)


def test_csv_tsv_jsonl_rows_keep_their_lines(tmp_path):
    (tmp_path / "a.csv").write_text("text,label\n\"hi, there\",x\n\nbye,y\n")
    t = read_table(tmp_path / "a.csv")
    assert t.columns == ["text", "label"] and t.text("text") == ["hi, there", "bye"] and t.lines == [2, 4]
    (tmp_path / "a.tsv").write_text("text\tlabel\nhi\tx\n")
    assert read_table(tmp_path / "a.tsv").column("label") == ["x"]
    (tmp_path / "a.jsonl").write_text('{"text": "hi", "label": "x"}\n\n{"text": [1, 2], "label": "y"}\n')
    t = read_table(tmp_path / "a.jsonl")
    assert t.lines == [1, 3] and t.column("text")[1] == [1, 2]


def test_empty_file(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    assert f"{p}: file is empty" in _err(read_table, p)
    p.write_text("text,label\n")
    assert "no data rows" in _err(read_table, p)


def test_missing_column_names_file_and_known_columns(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("text,lbl\na,b\n")
    msg = _err(read_table(p).require, "label")
    assert f"{p}:1" in msg and "no column 'label'" in msg and "'lbl'" in msg


def test_ragged_row_names_the_line(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("text,label\na,b\nc,d,e\n")
    msg = _err(read_table, p)
    assert f"{p}:3" in msg and "ragged row: 3 field(s)" in msg


def test_non_numeric_value_names_line_and_column(tmp_path):
    p = tmp_path / "n.csv"
    p.write_text("date,value\n2020-01,1.5\n2020-02,abc\n")
    msg = _err(read_table(p).numbers, "value")
    assert f"{p}:3: column 'value' (column 2)" in msg and "'abc' is not a number" in msg


def test_missing_numbers_error_or_nan(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("date,value\n1,1\n2,\n")
    assert "missing value" in _err(read_table(p).numbers, "value")
    assert math.isnan(read_table(p).numbers("value", allow_missing=True)[1])


def test_bad_json_line(tmp_path):
    p = tmp_path / "b.jsonl"
    p.write_text('{"a": 1}\n{"a": \n')
    msg = _err(read_table, p)
    assert f"{p}:2: not valid JSON (Expecting value at column 7); expected a JSON object per line" in msg
    p.write_text('{"a": 1}\n[1]\n')
    assert f"{p}:2: expected a JSON object per line, got a JSON list" in _err(read_table, p)
    p.write_text("")
    assert f"{p}: file is empty" in _err(read_table, p)


def test_sequences_text_and_json():
    assert parse_sequence("1 2 3", "x") == [[1.0], [2.0], [3.0]]
    assert parse_sequence("1,2;3,4", "x") == [[1.0, 2.0], [3.0, 4.0]]
    assert parse_sequence([[1, 2], [3, 4]], "x") == [[1.0, 2.0], [3.0, 4.0]]
    assert "step 2 has 1 feature(s)" in _err(parse_sequence, "1,2;3", "f.csv:4: column 'text'")
    assert "f.csv:4: column 'text', step 2: 'z' is not a number" in _err(parse_sequence, "1 z", "f.csv:4: column 'text'")


def test_class_folders(tmp_path):
    for label, texts in (("neg", ["bad", "awful"]), ("pos", ["good"])):
        (tmp_path / label).mkdir()
        for i, t in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(t)
    ex = read_class_folders(tmp_path)
    assert [(e.label, e.text) for e in ex] == [("neg", "bad"), ("neg", "awful"), ("pos", "good")]
    (tmp_path / "pos" / "s.csv").write_text("1,2\n3\n")
    assert f"{tmp_path / 'pos' / 's.csv'}:2: ragged row" in _err(read_class_folders, tmp_path)


CONLL = """-DOCSTART- -X- O O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
"""


def test_conll_sentences_and_columns(tmp_path):
    p = tmp_path / "t.conll"
    p.write_text(CONLL)
    s = read_conll(p)
    assert [x.tokens for x in s] == [["EU", "rejects", "German"], ["Peter"]]
    assert s[0].tags == ["B-ORG", "O", "B-MISC"] and s[0].where == f"{p}:3"
    assert read_conll(p, tag_column=1)[0].tags == ["NNP", "VBZ", "JJ"]
    p.write_text(CONLL + "Smith NNP B-NP\n")
    assert f"{p}:8: ragged row: 3 column(s)" in _err(read_conll, p)
    p.write_text("\n-DOCSTART- -X- O O\n\n")
    assert "no sentences" in _err(read_conll, p)


def test_tagged_jsonl(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"tokens": ["a", "b"], "tags": ["O", "B-X"]}\n{"tokens": ["c"], "tags": ["O", "O"]}\n')
    msg = _err(read_tagged_jsonl, p)
    assert f"{p}:2: column 'tags'" in msg and "2 tags for 1 tokens" in msg
    p.write_text('{"tokens": ["a"], "tags": ["O"]}\n')
    assert read_tagged(p)[0].tokens == ["a"]


def test_lines_end_at_line_feeds_only_so_unicode_breaks_stay_in_their_token(tmp_path):
    """U+0085 (NEL), U+2028 and a no-break space are characters of a token or a cell, as in the CSV and JSONL
    readers; str.splitlines would end the line there (and str.split cut the token)."""
    from rnnkit.data.readers import text_lines
    from rnnkit.data.tabular import read_numeric_rows
    assert text_lines("a\x85b\r\nc\u2028d\n\ne") == ["a\x85b", "c\u2028d", "", "e"]
    assert text_lines("a\n") == ["a"] and text_lines("a\n\n") == ["a", ""]
    p = tmp_path / "t.conll"
    p.write_text("Caf\x85e NN O\r\nin\u2028town IN O\n1\xa0000 CD B-NUM\n\nNext JJ O\n", encoding="utf-8")
    s = read_conll(p)
    assert [x.tokens for x in s] == [["Caf\x85e", "in\u2028town", "1\xa0000"], ["Next"]]
    assert s[0].tags == ["O", "O", "B-NUM"] and s[1].where == f"{p}:5"
    p = tmp_path / "steps.csv"
    p.write_text("1,2\n3,\x854\r\n5,6\n", encoding="utf-8")   # a numeric sequence: one time step per row
    assert read_numeric_rows(p) == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


def test_a_jsonl_file_with_another_encoding_is_an_error_not_ignored(tmp_path):
    """JSON lines are UTF-8: an --encoding that says otherwise names the file instead of being ignored."""
    p = tmp_path / "m.jsonl"
    p.write_text('{"text": "caf\u00e9", "label": "x"}\n', encoding="utf-8")
    assert read_table(p, encoding="utf-8").rows[0]["text"] == "caf\u00e9"
    assert read_table(p, encoding="UTF8").rows[0]["text"] == "caf\u00e9"
    with pytest.raises(DataError, match=r"m\.jsonl: JSON lines are UTF-8.*'cp1252'"):
        read_table(p, encoding="cp1252")
    with pytest.raises(DataError, match="unknown text encoding 'klingon'"):
        read_table(p, encoding="klingon")
