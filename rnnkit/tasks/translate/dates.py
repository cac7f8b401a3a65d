"""A built-in synthetic sequence-to-sequence task: normalising dates written in many ways.

    "3rd of March 2021" -> "2021-03-03"      "Wednesday, March 3, 2021" -> "2021-03-03"
    "03.03.2021"        -> "2021-03-03"      "2021/3/3"                 -> "2021-03-03"

Numeric forms are unambiguous: day first with dots (European), year first with slashes. The task
needs attention to copy digits and a learned month table, and learns in a short CPU run with
character tokens (``rnnkit.tasks.translate.train_dates``).
"""
from __future__ import annotations

import datetime as dt
import random
from typing import Callable, List

from .data import Pair

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _month(d: dt.date) -> str:
    return MONTHS[d.month - 1]


FORMATS: List[Callable[[dt.date], str]] = [
    lambda d: f"{ordinal(d.day)} of {_month(d)} {d.year}",
    lambda d: f"{_month(d)} {ordinal(d.day)}, {d.year}",
    lambda d: f"{d.day} {_month(d)} {d.year}",
    lambda d: f"{_month(d)[:3]} {d.day}, {d.year}",
    lambda d: f"{d.day} {_month(d)[:3].lower()} {d.year}",
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: f"{_month(d).upper()} {d.day} {d.year}",
    lambda d: f"{DAYS[d.weekday()]}, {_month(d)} {d.day}, {d.year}",
    lambda d: f"the {ordinal(d.day)} of {_month(d).lower()}, {d.year}",
]


def date_pairs(n: int, seed: int = 0, first_year: int = 1950, last_year: int = 2049) -> List[Pair]:
    """``n`` (written date, ISO date) pairs, dates uniform in the years given, formats uniform."""
    rng = random.Random(seed)
    start = dt.date(first_year, 1, 1).toordinal()
    end = dt.date(last_year, 12, 31).toordinal()
    out = []
    for _ in range(n):
        d = dt.date.fromordinal(rng.randint(start, end))
        out.append(Pair(rng.choice(FORMATS)(d), d.isoformat()))
    return out
