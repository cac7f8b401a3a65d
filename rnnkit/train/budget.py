"""A time budget as a training plan: how many updates still fit, and how far the decay has come.

With ``max_time`` set, a run has no fixed number of updates: it has seconds. The learning-rate decay
must still end at the run's last update, so the plan is re-estimated after every update from the
update times measured so far (:class:`UpdateTimes`), and the decay advances by the share that
spreads what is left of it evenly over the updates estimated to remain (:class:`DecayProgress`)::

    left_k = (max_time - used_k) / (mean seconds of the last WINDOW updates)   # updates to come, k+1 first
    p_k    = p_{k-1} + (1 - p_{k-1}) / left_k     (1 once left_k <= 1)        # decay share of update k+1

so update ``k + 1`` runs at the learning rate of share ``p_k`` of the decay. With steady update times
``p_k`` is exactly linear in ``k`` and reaches 1 at the last update that fits in the budget; when the
machine slows down (or speeds up), the estimate shrinks (grows) and the rest of the decay is spread
over the new remainder, without a jump in the learning rate. A step cap (``epochs``,
``max_steps``) that comes first bounds ``left_k`` the same way. Both objects save and restore their state
so that a resumed run continues the same plan.
"""
from __future__ import annotations

import math
from collections import deque

#: updates whose mean duration estimates the next ones: long enough to smooth out one slow update,
#: short enough to follow a change of machine load within a minute or two of training
WINDOW = 50


class UpdateTimes:
    """Seconds per update, measured on the training clock (evaluations and checkpoints not counted)."""

    def __init__(self, window: int = WINDOW):
        self.spans: deque[float] = deque(maxlen=window)
        self.used_s = 0.0  # the training clock at the last update

    def record(self, used_s: float) -> None:
        """The training clock right after an update."""
        self.spans.append(max(used_s - self.used_s, 0.0))
        self.used_s = used_s

    def seconds_per_update(self) -> float | None:
        return sum(self.spans) / len(self.spans) if self.spans else None

    def updates_left(self, max_time: float) -> float:
        """Updates that still fit in ``max_time`` seconds of training (inf before any was measured)."""
        per = self.seconds_per_update()
        if per is None or per <= 0.0:
            return math.inf
        return max(max_time - self.used_s, 0.0) / per

    def state_dict(self) -> dict:
        return {"spans": list(self.spans), "used_s": self.used_s}

    def load_state_dict(self, sd: dict) -> None:
        self.spans.clear()
        self.spans.extend(float(s) for s in sd["spans"])
        self.used_s = float(sd["used_s"])


class DecayProgress:
    """Share ``p`` in [0, 1] of a learning-rate decay done, advanced once per update so that it reaches 1 at
    the last update of the current estimate."""

    def __init__(self):
        self.p = 0.0

    def advance(self, left: float) -> float:
        """Before an update, with ``left`` updates estimated to come counting that one: its share of the decay
        (1 when it is the last: ``left <= 1``)."""
        self.p = 1.0 if left <= 1.0 else self.p + (1.0 - self.p) / left
        return self.p

    def state_dict(self) -> dict:
        return {"p": self.p}

    def load_state_dict(self, sd: dict) -> None:
        self.p = float(sd["p"])


def cosine(p: float) -> float:
    """The cosine decay's factor at share ``p`` of the decay: 1 at p = 0, 0 at p = 1 (Loshchilov & Hutter 2017)."""
    return 0.5 * (1.0 + math.cos(math.pi * min(max(p, 0.0), 1.0)))
