import re
import io

from rnnkit.train.log import MetricsLog, Progress, read_metrics


def test_bar_mode_draws_a_tqdm_bar_with_stats():
    out = io.StringIO()
    p = Progress("bar", 5, stream=out, max_time=60)
    p.start_epoch(0, 2, 10, 0)
    for i in range(1, 11):
        p.update(i, {"loss": 1.5, "val_loss": 1.7, "tokens_per_s": 12345.0})
    p.end_epoch()
    text = out.getvalue()
    assert "epoch 1/2" in text and "10/10" in text and "loss 1.5" in text and "12.3k tok/s" in text
    assert "val 1.7" in text
    assert re.search(r"left (0:5\d|1:00)", text), text  # 60 s budget less the (wall-clock) time the test took


def test_plain_mode_prints_every_log_every_updates():
    out = io.StringIO()
    p = Progress("plain", 4, stream=out)
    p.start_epoch(1, 3, 10, 0)
    for i in range(1, 11):
        p.update(i, {"loss": 2.0, "tokens_per_s": 500.0})
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["4/10", "8/10", "10/10"]
    assert lines[0].startswith("epoch 2/3") and "0.5k tok/s" in lines[0] and "epoch left" in lines[0]


def test_resume_drops_records_written_after_the_checkpoint(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl", tensorboard="off")
    for step in (1, 2, 3, 4):
        log.write("step", step, loss=1.0)
    MetricsLog(tmp_path / "m.jsonl", tensorboard="off", resume_step=2)
    assert [r["step"] for r in read_metrics(tmp_path / "m.jsonl")] == [1, 2]
    MetricsLog(tmp_path / "m.jsonl", tensorboard="off")  # a fresh run starts a fresh file
    assert read_metrics(tmp_path / "m.jsonl") == []


def test_a_crash_while_resuming_leaves_the_whole_log(tmp_path, monkeypatch):
    import pytest

    from rnnkit import atomic
    log = MetricsLog(tmp_path / "m.jsonl", tensorboard="off")
    for step in (1, 2, 3):
        log.write("step", step, loss=1.0)
    def crash(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        MetricsLog(tmp_path / "m.jsonl", tensorboard="off", resume_step=1)
    assert [r["step"] for r in read_metrics(tmp_path / "m.jsonl")] == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]    # no temporary file left
