"""Metrics to JSONL (and TensorBoard when installed) and the progress display.

``metrics.jsonl`` has one JSON object per line with a ``kind``:
``step`` (every ``log_every`` updates: loss, lr, grad_norm, tokens_per_s),
``nonfinite`` (the NaN guard fired),
``eval`` (validation metrics) and ``epoch`` (item-weighted mean training loss).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

from rnnkit.atomic import atomic_write_text


class MetricsLog:
    def __init__(self, path: Path, tensorboard: str = "auto", resume_step: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            self._truncate_after(resume_step)
        elif resume_step is None and self.path.exists():
            self.path.unlink()
        self.tb = self._tensorboard(tensorboard)

    def _truncate_after(self, step: int) -> None:
        """On resume, drop records written after the checkpoint (they will be redone); the shorter log replaces
        the old one atomically, so a crash here leaves every record of the run."""
        keep = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))

    def _tensorboard(self, mode: str):
        installed = importlib.util.find_spec("tensorboard") is not None
        if mode == "on" and not installed:
            raise RuntimeError("tensorboard=on but the tensorboard package is not installed "
                               "(pip install tensorboard, or set tensorboard: off)")
        if mode == "off" or not installed:
            return None
        from torch.utils.tensorboard import SummaryWriter
        return SummaryWriter(str(self.path.parent / "tensorboard"))

    def write(self, kind: str, step: int, **values) -> None:
        record = {"kind": kind, "step": step, **values}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    self.tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _fmt_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 3600:
        return f"{seconds // 60:d}:{seconds % 60:02d}"
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """A tqdm bar on a terminal, plain lines otherwise (``mode``: auto, bar, plain, none)."""

    def __init__(self, mode: str, log_every: int, stream=None, max_time: float = 0.0, clock=None):
        """``clock``: seconds of the budget used so far (default: wall time since now)."""
        self.stream = stream or sys.stderr
        self.max_time = max_time or None
        start = time.perf_counter()
        self.clock = clock or (lambda: time.perf_counter() - start)
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "plain"
        self.mode, self.log_every, self.bar = mode, log_every, None

    def start_epoch(self, epoch: int, epochs: int, total: int, done: int) -> None:
        self.epoch, self.epochs, self.total = epoch, epochs, total
        self.t0, self.done0 = time.perf_counter(), done
        if self.mode == "bar":
            from tqdm import tqdm
            size = shutil.get_terminal_size()  # tqdm's own query reports no rows on some terminals (no bar)
            clock = "[{elapsed}]" if self.max_time else "[{elapsed}<{remaining}]"  # a budget: its own "left"
            self.bar = tqdm(total=total, initial=done, desc=self._epoch_name(), file=self.stream,
                            ncols=size.columns, nrows=max(size.lines, 2), leave=True, unit="upd",
                            bar_format="{desc} |{bar:8}| {n_fmt}/{total_fmt} " + clock + "{postfix}")

    def update(self, done: int, stats: dict) -> None:
        if self.max_time is not None:  # a time budget: show what is left of it
            stats = {**stats, "left": _fmt_time(self.max_time - self.clock())}  # of the budget
        if self.mode == "bar":
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix_str(_postfix(stats), refresh=False)
        elif self.mode == "plain" and (done % self.log_every == 0 or done == self.total):
            rate = (done - self.done0) / max(time.perf_counter() - self.t0, 1e-9)
            left = (self.total - done) / rate if rate > 0 else 0.0
            print(f"{self._epoch_name()} {done}/{self.total} {_postfix(stats)} "
                  f"epoch left {_fmt_time(left)}", file=self.stream, flush=True)

    def _epoch_name(self) -> str:
        """``epoch 3/10``; ``epoch 3`` when the run has no epoch limit (epochs=0: a time or step budget)."""
        return f"epoch {self.epoch + 1}/{self.epochs}" if self.epochs else f"epoch {self.epoch + 1}"

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        elif self.mode != "none":
            print(text, file=self.stream, flush=True)

    def end_epoch(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _postfix(stats: dict) -> str:
    parts = []
    for key, value in stats.items():
        key = "val" if key == "val_loss" else key  # keep the line short enough for 80 columns
        if key == "tokens_per_s":
            parts.append(f"{value / 1000:.1f}k tok/s")
        elif isinstance(value, float):
            parts.append(f"{key} {value:.4g}")
        else:
            parts.append(f"{key} {value}")
    return " ".join(parts)
