import pytest

from rnnkit.data import DataError, embedded_corpus, read_documents, read_text, split_documents
from rnnkit.data.corpus import MIN_FILES, STDLIB_FILES


def test_reads_utf8_and_drops_bom(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes("\ufeffhéllo\n".encode("utf-8"))
    assert read_text(p) == "héllo\n"


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.txt: no such file or directory"):
        read_text(tmp_path / "nope.txt")


def test_empty_file(tmp_path):
    p = tmp_path / "e.txt"
    p.write_text("  \n")
    with pytest.raises(DataError, match="e.txt: file is empty"):
        read_text(p)


def test_binary_file(tmp_path):
    p = tmp_path / "b.bin"
    p.write_bytes(b"abc\x00\x01\x02")
    with pytest.raises(DataError, match=r"b.bin: looks binary \(NUL byte at offset 3\)"):
        read_text(p)


def test_non_utf8_names_file_and_byte_offset(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("caf".encode() + "é au lait".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt: not valid UTF-8 at byte offset 3 \(byte 0xe9\)"):
        read_text(p)


def test_directory_reads_every_txt_file_sorted(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "skip.bin").write_bytes(b"\x00")
    assert [t for _, t in read_documents(tmp_path)] == ["first", "second"]
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match="sub: directory has no"):
        read_documents(tmp_path / "sub")


def test_split_keeps_order_and_cuts_the_boundary_document():
    train, val = split_documents(["aaaa", "bbbb", "cc"], 0.2)  # 10 chars: cut at 8
    assert train == ["aaaa", "bbbb"] and val == ["cc"]
    train, val = split_documents(["abcdefghij"], 0.3)
    assert train == ["abcdefg"] and val == ["hij"]
    with pytest.raises(DataError, match="too short"):
        split_documents(["a"], 0.1)


def test_embedded_corpus_is_on_this_machine():
    docs, missing = embedded_corpus()
    assert len(docs) >= MIN_FILES and len(docs) + len(missing) == len(STDLIB_FILES)
    assert sum(len(t) for _, t in docs) > 500_000
    assert any(name.endswith("argparse.py") for name, _ in docs)


def test_jsonl_objects_name_the_line_and_what_a_line_holds(tmp_path):
    from rnnkit.data.readers import jsonl_objects
    good = tmp_path / "m.jsonl"
    good.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert list(jsonl_objects(good, "an object")) == [(1, {"a": 1}), (3, {"a": 2})]
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"b.jsonl:2: not valid JSON \(.*\); expected an object with a"):
        list(jsonl_objects(broken, "an object with a"))
    listed = tmp_path / "l.jsonl"
    listed.write_text('[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match="l.jsonl:1: expected an object, got a JSON list"):
        list(jsonl_objects(listed, "an object"))


def test_jsonl_objects_skip_bad_mode_collects_the_bad_lines(tmp_path):
    from rnnkit.data.readers import jsonl_objects
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"a": \n"text"\n\n{"a": "caf\xe9"}\n{"a": 2}\r\n')
    problems: list[str] = []
    assert list(jsonl_objects(mixed, "an object", problems)) == [(1, {"a": 1}), (6, {"a": 2})]
    assert [m.split(": ", 1)[0] for m in problems] == [f"{mixed}:2", f"{mixed}:3", f"{mixed}:5"]
    assert "not valid JSON" in problems[0] and "got a JSON str" in problems[1]
    assert "not valid UTF-8 at byte 10 of the line (byte 0xe9)" in problems[2]
    with pytest.raises(DataError, match=r"mixed.jsonl:2: not valid JSON"):
        list(jsonl_objects(mixed, "an object"))
    with pytest.raises(DataError, match="no such file"):
        list(jsonl_objects(tmp_path / "gone.jsonl", "an object", []))
    with pytest.raises(DataError, match="is a directory"):
        list(jsonl_objects(tmp_path, "an object", []))
