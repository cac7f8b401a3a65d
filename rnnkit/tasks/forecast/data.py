"""Time series for forecasting: reading, gaps, chronological splits, train-only scaling, windows.

Layout of a series (N time steps, C columns: the targets first, then covariates)::

    index  0 ............ n_train ......... n_val_end ......... N
           |   train part   |   validation    |       test       |

A window at origin ``o`` has inputs ``values[o - L : o]`` (all columns, the
lookback L may reach into earlier parts: the past is known) and targets
``targets[o : o + H]``; a part's windows are those whose targets lie inside it.
The :class:`Scaler` is fitted on ``values[:n_train]`` only, so neither
validation nor test values ever shape the scaling.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from rnnkit.data.readers import DataError
from rnnkit.data.tabular import Table, parse_number, read_table


@dataclass
class Series:
    """Columns of a time series: ``values`` (N, C) with ``names``.

    Column order: the ``n_targets`` targets, past covariates, then the ``n_future`` covariates whose
    values are known in advance for the forecast steps (calendar, planned events).
    """
    times: list[str]
    values: np.ndarray
    names: list[str]
    n_targets: int
    source: str
    n_future: int = 0

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def targets(self) -> np.ndarray:
        return self.values[:, : self.n_targets]

    @property
    def target_names(self) -> list[str]:
        return self.names[: self.n_targets]

    @property
    def covariate_names(self) -> list[str]:
        return self.names[self.n_targets:]


def parse_columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def column_order(targets: Sequence[str], covariates: Sequence[str], future: Sequence[str]) -> list[str]:
    """targets, past covariates, known-future covariates (each column once; future wins over past)."""
    fut = [c for c in dict.fromkeys(future) if c not in targets]
    past = [c for c in dict.fromkeys(covariates) if c not in targets and c not in fut]
    return list(targets) + past + fut


def read_series(path: str | Path, targets: Sequence[str], covariates: Sequence[str], time_column: str,
                missing: str, future: Sequence[str] = ()) -> Series:
    """A CSV / TSV / JSONL file as a :class:`Series`; ``missing`` is ``error`` or ``interpolate``."""
    return series_from_table(read_table(path), targets, covariates, time_column, missing, future)


def series_from_table(table: Table, targets: Sequence[str], covariates: Sequence[str], time_column: str,
                      missing: str, future: Sequence[str] = ()) -> Series:
    path = table.path
    if not targets:
        raise DataError(f"{path}: say which column to forecast with --target COL "
                        f"(columns: {', '.join(table.columns)})")
    time_col = time_column or table.columns[0]
    table.require(time_col, *targets, *covariates, *future)
    if time_col in targets:
        raise DataError(f"{path}: column {time_col!r} is the time column and cannot be a target")
    table = in_time_order(table, time_col)
    names = column_order(targets, covariates, future)
    cols = [np.asarray(table.numbers(c, allow_missing=missing != "error"), dtype=np.float64) for c in names]
    values = np.stack(cols, axis=1)
    times = [str(t) for t in table.column(time_col)]
    if missing == "interpolate":
        values = interpolate(values, names, str(path))
    n_future = len([c for c in dict.fromkeys(future) if c not in targets])
    return Series(times, values, names, len(targets), str(path), n_future)


MAX_LISTED = 5  # duplicated times named by line in an error; the rest are counted


def _time_keys(times: list[str]) -> list | None:
    """Sortable keys of a time column: numbers, else ISO dates; None when some value is neither."""
    for parse in (float, np.datetime64):
        try:
            return [parse(t) for t in times]
        except (TypeError, ValueError):
            continue
    return None


def in_time_order(table: Table, time_column: str, log=None) -> Table:
    """``table`` with its rows sorted by ``time_column`` (a notice says how many rows moved); duplicated
    times are an error naming their lines. Times that are neither numbers nor ISO dates are kept in file
    order (only duplicates are checked)."""
    times = [str(t).strip() for t in table.column(time_column)]
    keys = _time_keys(times)
    order = sorted(range(len(times)), key=lambda i: keys[i]) if keys is not None else list(range(len(times)))
    first: dict = {}
    dups = []
    for i in order:
        k = keys[i] if keys is not None else times[i]
        if k in first:
            dups.append(f"line {table.lines[i]} repeats line {table.lines[first[k]]} ({times[i]})")
        else:
            first[k] = i
    if dups:
        more = f" (and {len(dups) - MAX_LISTED} more)" if len(dups) > MAX_LISTED else ""
        raise DataError(f"{table.path}: {len(dups)} duplicated time(s) in column {time_column!r}: "
                        f"{'; '.join(dups[:MAX_LISTED])}{more}; keep one row per time step")
    moved = sum(i != j for j, i in enumerate(order))
    if not moved:
        return table
    (log or _notice)(f"{table.path}: rows are not in time order; sorted by column {time_column!r} "
                     f"({moved} of {len(order)} rows moved)")
    return Table(table.path, table.columns, [table.rows[i] for i in order], [table.lines[i] for i in order])


def _notice(message: str) -> None:
    print(f"notice: {message}", file=sys.stderr)


def split_future_rows(table: Table, targets: Sequence[str], future: Sequence[str], horizon: int
                      ) -> tuple[Table, np.ndarray]:
    """Rows up to the last one with every target, and the known-future covariates (H, F) of the next H rows."""
    table.require(*targets, *future)
    have = [all(math.isfinite(parse_number(table.rows[i][c], table.where(i, c), True)) for c in targets)
            for i in range(len(table))]
    if not any(have):
        raise DataError(f"{table.path}: no row has a value for every target ({', '.join(targets)})")
    end = max(i for i, ok in enumerate(have) if ok) + 1
    if len(table) - end < horizon:
        raise DataError(f"{table.where(end - 1)}: the forecast needs the known-future covariates "
                        f"({', '.join(future)}) of the {horizon} rows after the last target value; "
                        f"the file has {len(table) - end}")
    fut = np.array([[parse_number(table.rows[i][c], table.where(i, c)) for c in future]
                    for i in range(end, end + horizon)], dtype=np.float64)
    return Table(table.path, table.columns, table.rows[:end], table.lines[:end]), fut


def interpolate(values: np.ndarray, names: list[str], where: str) -> np.ndarray:
    """Linear interpolation of NaN gaps per column; leading / trailing gaps take the nearest value."""
    out = values.copy()
    idx = np.arange(values.shape[0])
    for j in range(values.shape[1]):
        col = out[:, j]
        ok = np.isfinite(col)
        if not ok.any():
            raise DataError(f"{where}: column {names[j]!r} has no numeric values at all")
        out[:, j] = np.interp(idx, idx[ok], col[ok])
    return out


@dataclass
class SplitPoints:
    n_train: int
    n_val_end: int
    n: int

    @property
    def has_validation(self) -> bool:
        return self.n_val_end > self.n_train


MIN_TRAIN_WINDOWS = 8  # training windows the automatic lookback leaves at least


def part_sizes(n: int, val_fraction: float, test_fraction: float, horizon: int) -> tuple[int, int]:
    """(validation, test) steps: the fractions of ``n``, each raised to one horizon when it is shorter."""
    return max(int(round(n * val_fraction)), horizon), max(int(round(n * test_fraction)), horizon)


def split_points(n: int, val_fraction: float, test_fraction: float, lookback: int, horizon: int) -> SplitPoints:
    """Train / validation / test boundaries; validation and test each hold at least one horizon.

    A series too short for a training part of more than ``lookback + horizon`` steps beside them has no
    validation part (``has_validation`` is False: no early stopping, the network trains on all data
    before the test part).
    """
    n_val, n_test = part_sizes(n, val_fraction, test_fraction, horizon)
    need = lookback + horizon
    for n_train in (n - n_val - n_test, n - n_test):
        if n_train >= need + 1:
            return SplitPoints(n_train, n - n_test, n)
    raise DataError(f"series of {n} steps is too short for lookback={lookback}, horizon={horizon}: the test part "
                    f"takes {n_test} steps (test_fraction={test_fraction}, at least one horizon) and the training "
                    f"part needs > {need} steps (even without a validation part it would have {n - n_test})")


def auto_lookback(n: int, preferred: int, horizon: int, val_fraction: float, test_fraction: float) -> int:
    """``preferred`` past steps, shortened so the training part keeps :data:`MIN_TRAIN_WINDOWS` windows
    (first with a validation part, else without one); at least 1."""
    n_val, n_test = part_sizes(n, val_fraction, test_fraction, horizon)
    for n_train in (n - n_val - n_test, n - n_test):
        room = n_train - horizon + 1 - MIN_TRAIN_WINDOWS
        if room >= 1:
            return min(preferred, room)
    return 1  # split_points then says why the series is too short


class Scaler:
    """Per-column standardisation fitted on the training part only."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)

    @classmethod
    def fit(cls, train_values: np.ndarray) -> "Scaler":
        std = train_values.std(axis=0)
        return cls(train_values.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse_targets(self, scaled: np.ndarray, n_targets: int) -> np.ndarray:
        """Targets (..., n_targets) back to the original units."""
        return scaled * self.std[:n_targets] + self.mean[:n_targets]

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        return cls(d["mean"], d["std"])


def origins(start: int, end: int, lookback: int, horizon: int, stride: int = 1) -> list[int]:
    """Forecast origins ``o`` with ``start <= o``, ``o >= lookback`` and ``o + horizon <= end``."""
    first = max(start, lookback)
    return list(range(first, end - horizon + 1, stride))


def windows(scaled: np.ndarray, origin_list: Sequence[int], lookback: int, horizon: int,
            n_targets: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (W, L, C) and targets (W, H, n_targets) of each origin."""
    x = np.stack([scaled[o - lookback:o] for o in origin_list]).astype(np.float32)
    y = np.stack([scaled[o:o + horizon, :n_targets] for o in origin_list]).astype(np.float32)
    return x, y


def future_windows(scaled: np.ndarray, origin_list: Sequence[int], horizon: int, n_future: int) -> np.ndarray:
    """Known-future covariates of the forecast steps, (W, H, n_future)."""
    return np.stack([scaled[o:o + horizon, scaled.shape[1] - n_future:] for o in origin_list]).astype(np.float32)


def infer_step(times: Sequence[str]):
    """A function ``h -> label`` for the h-th step after the last time (ISO dates or numbers)."""
    last, prev = times[-1], times[-2] if len(times) > 1 else None
    try:
        a, b = float(prev), float(last)
        step = b - a
        return lambda h: _fmt_number(b + h * step)
    except (TypeError, ValueError):
        pass
    try:
        a, b = np.datetime64(prev), np.datetime64(last)
        return lambda h: str(b + h * (b - a))
    except (TypeError, ValueError):
        return lambda h: f"{last}+{h}"


def _fmt_number(x: float) -> str:
    return str(int(x)) if math.isclose(x, round(x)) else f"{x:g}"
