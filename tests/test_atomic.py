"""rnnkit.atomic: whole files or none, with the mode a plain open() would give them."""
import os

import numpy as np
import pytest

from rnnkit.atomic import atomic_save, atomic_write_text, save_npz


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_files_get_the_umask_mode_not_mkstemps_0600(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_save(tmp_path / "b.bin", lambda tmp: open(tmp, "wb").write(b"y"))
    save_npz(tmp_path / "c.npz", a=np.arange(3))
    for name in ("a.txt", "b.bin", "c.npz"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o644, name
    assert np.load(tmp_path / "c.npz")["a"].tolist() == [0, 1, 2]


def test_a_failed_save_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    def broken(tmp):
        open(tmp, "w").write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_save(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_writes_under_a_folder_written_elsewhere_are_skipped_and_others_are_not(tmp_path):
    from rnnkit.atomic import is_written_elsewhere, written_elsewhere
    run, cache = tmp_path / "run", tmp_path / "cache"
    with written_elsewhere(run):
        atomic_write_text(run / "result.json", "{}")
        atomic_save(run / "plots" / "curves.png", lambda tmp: open(tmp, "wb").write(b"png"))
        save_npz(run / "eval" / "x.npz", a=np.arange(2))
        atomic_write_text(cache / "entry.txt", "kept")
        assert is_written_elsewhere(run / "a" / ".." / "b.txt") and not is_written_elsewhere(tmp_path / "runs")
    assert not run.exists() and (cache / "entry.txt").read_text() == "kept"
    assert not is_written_elsewhere(run / "result.json")      # only while inside
    atomic_write_text(run / "result.json", "{}")
    assert (run / "result.json").read_text() == "{}"


def test_task_code_writes_files_only_through_rnnkit_atomic():
    """Every process of a data-parallel run runs the task's code; a file it writes with open(), write_text() or
    savefig(path) would come from every process at once, half-written for a reader (rnnkit.atomic skips the
    run directory on ranks > 0 and replaces files whole).  A figure drawn into a buffer (served) is no file."""
    import re
    from pathlib import Path

    import rnnkit
    direct = re.compile(r"\.write_(text|bytes)\(|\bopen\([^)]*[\"'][wax]b?\+?[\"']|\.savefig\((?!buf\b)|"
                        r"\bnp\.save(z|z_compressed)?\(|\btorch\.save\(")
    tasks = Path(rnnkit.__file__).parent / "tasks"
    found = [f"{path.relative_to(tasks)}:{n}: {line.strip()}" for path in sorted(tasks.rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if direct.search(line) and "atomic_save(" not in line]
    assert found == []
