"""--resume after a damaged or missing last checkpoint continues from the best one, with a notice."""
import pytest

from rnnkit.cli import main
from rnnkit.train.checkpoint import load_checkpoint, read_meta

TEXT = ("the quick brown fox jumps over the lazy dog. " * 20 + "\n") * 4
TINY = ["--device", "cpu", "--hidden", "8", "--layers", "1", "--batch-size", "4", "--bptt", "16",
        "--lr", "0.02", "--progress", "none", "--warmup-steps", "2", "--tensorboard", "off", "--threads", "1"]


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A finished one-epoch LM run (best == last); each test damages a copy."""
    root = tmp_path_factory.mktemp("resume")
    (root / "text.txt").write_text(TEXT)
    run = root / "run"
    assert main(["train", "lm", "--data", str(root / "text.txt"), "--out", str(run), "--epochs", "1"] + TINY) == 0
    return run


def _copy(run, tmp_path):
    import shutil
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def _damage(path, how):
    raw = path.read_bytes()
    if how == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "flip":
        path.write_bytes(raw[:-40] + bytes(b ^ 0xFF for b in raw[-40:]))
    else:
        path.unlink()


@pytest.mark.parametrize("how", ["truncate", "flip", "delete"])
def test_resume_falls_back_to_best_with_a_notice(how, one_epoch_run, tmp_path, capsys):
    run = _copy(one_epoch_run, tmp_path)
    last, best = run / "checkpoints" / "last.safetensors", run / "checkpoints" / "best.safetensors"
    steps = read_meta(best)["trainer"]["step"]
    _damage(last, how)
    assert main(["train", "lm", "--out", str(run), "--resume", "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert f"resuming from {best} instead (update {steps}" in err, err
    assert read_meta(last)["trainer"]["step"] == 2 * steps  # the second epoch ran after the first
    load_checkpoint(last)  # and the new last checkpoint is whole


def test_corruption_message_says_how_to_continue(one_epoch_run, tmp_path, capsys):
    run = _copy(one_epoch_run, tmp_path)
    _damage(run / "checkpoints" / "best.safetensors", "flip")
    assert main(["generate", str(run), "--length", "5"]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and f"rnnkit train TASK --out {run} --resume" in err
    assert "--resume-from best|last|FILE" in err and "--checkpoint last" in err


def test_resume_from_names_the_checkpoint(one_epoch_run, tmp_path, capsys):
    run = _copy(one_epoch_run, tmp_path)
    _damage(run / "checkpoints" / "last.safetensors", "flip")
    assert main(["train", "lm", "--out", str(run), "--resume-from", "last", "--epochs", "2"]) == 2
    assert "last.safetensors: checksum mismatch" in capsys.readouterr().err
    assert main(["train", "lm", "--out", str(run), "--resume-from", "best", "--epochs", "2"]) == 0
    assert "instead" not in capsys.readouterr().err  # asked for best: no notice
    _damage(run / "checkpoints" / "last.safetensors", "delete")
    _damage(run / "checkpoints" / "best.safetensors", "delete")
    assert main(["train", "lm", "--out", str(run), "--resume"]) == 2
    assert "no usable checkpoint to resume from" in capsys.readouterr().err
