"""A folder holding one text file per class, one example per line (MR's raw ``rt-polarity.pos`` /
``rt-polarity.neg`` in Windows-1252), read by ``--data FOLDER`` as it is."""
from __future__ import annotations

import pytest

from rnnkit.cli import main
from rnnkit.data.readers import DataError
from rnnkit.tasks.classify.config import ClassifyDataConfig
from rnnkit.tasks.classify.data import read_examples
from rnnkit.tasks.classify.pipeline import load_classifier, load_splits
from tiny_files import CLASSIFY_TINY

TINY = CLASSIFY_TINY


def _mr_folder(root, n=12):
    root.mkdir()
    pos = "".join(f"a good film {i} \u2026 really \n" for i in range(n))        # MR: a space before each LF
    neg = "".join(f"a dull film {i} \u2014 sadly \n" if i != 3 else "\n" for i in range(n))
    (root / "rt-polarity.pos").write_bytes(pos.encode("cp1252"))            # \u2026 is byte 0x85 (NEL in Latin-1)
    (root / "rt-polarity.neg").write_bytes(neg.encode("cp1252"))
    return root


def test_one_file_per_class_labels_lines_and_where(tmp_path):
    root = _mr_folder(tmp_path / "mr")
    ex = read_examples(root, "text", "label", "auto", encoding="cp1252")
    assert ex.kind == "text" and len(ex) == 12 + 11                      # the blank line is left out
    assert ex.labels.count("pos") == 12 and ex.labels.count("neg") == 11
    i = ex.labels.index("pos")
    assert ex.inputs[i] == "a good film 0 \u2026 really" and ex.wheres[i] == f"{root / 'rt-polarity.pos'}:1"
    assert ex.wheres[ex.labels.index("neg") + 3] == f"{root / 'rt-polarity.neg'}:5"   # line 4 was blank
    other = tmp_path / "other"
    other.mkdir()
    (other / "yes.txt").write_text("fine\nok\n")
    (other / "no.txt").write_text("bad\n")
    assert sorted(read_examples(other, "text", "label", "auto").labels) == ["no", "yes", "yes"]


def test_errors_name_the_file_line_and_the_fix(tmp_path):
    root = _mr_folder(tmp_path / "mr")
    with pytest.raises(DataError, match=r"rt-polarity\.(neg|pos): not valid UTF-8 at byte offset \d+ .* on line 1;"
                                        r".*--encoding cp1252"):
        read_examples(root, "text", "label", "auto")
    one = tmp_path / "one"
    one.mkdir()
    (one / "pos.txt").write_text("good\n")
    with pytest.raises(DataError, match="one text file per class .* found 1 file"):
        read_examples(one, "text", "label", "auto")
    (one / "pos.neg").write_text("x\n")                                # stems pos, pos: labels from the stems
    (one / "neg.txt").write_text("y\n")
    with pytest.raises(DataError, match="two files give the same class"):
        read_examples(one, "text", "label", "auto")


def test_train_classify_on_the_raw_folder_with_folds(tmp_path, one_thread):
    root = _mr_folder(tmp_path / "mr")
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(root), "--encoding", "cp1252", "--folds", "4", "--fold", "1",
                 "--out", str(run), *TINY]) == 0
    loaded = load_classifier(run)
    assert loaded.encoder.labels == ["neg", "pos"]
    s = load_splits(ClassifyDataConfig(data=str(root), encoding="cp1252", folds=4, fold=1), 0)
    assert len(s.test) in (5, 6) and set(s.test.labels) == {"neg", "pos"}
