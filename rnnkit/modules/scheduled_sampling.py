"""Scheduled sampling (Bengio et al. 2015): how often a decoder is fed the gold previous token.

:func:`teacher_forcing_ratio` decays the probability of feeding the gold token from 1 to ``final`` over
``steps`` updates: ``linear``, ``exponential`` (1% of the gap left at the end) or ``inverse_sigmoid``
``k / (k + exp(u / k))`` with ``k = steps / 10``; ``constant`` keeps ``final`` throughout.
"""
from __future__ import annotations

import math

SCHEDULES = ("constant", "linear", "exponential", "inverse_sigmoid")


def teacher_forcing_ratio(final: float, schedule: str, steps: int, updates: int) -> float:
    """Probability of feeding the gold token after ``updates`` training batches."""
    if schedule not in SCHEDULES:
        raise ValueError(f"sampling schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if schedule == "constant":
        return final
    if schedule == "linear":
        frac = min(updates / steps, 1.0)
    elif schedule == "exponential":
        frac = 1.0 - 0.01 ** (updates / steps)
    else:
        k = max(steps / 10.0, 1.0)
        frac = 1.0 - k / (k + math.exp(min(updates / k, 700.0)))
    return 1.0 - (1.0 - final) * frac
