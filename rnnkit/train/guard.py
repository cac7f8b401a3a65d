"""The NaN/inf guard: what to do when a loss or gradient is not finite.

Policies (``TrainConfig.nan_policy``):

* ``skip``     - drop the update (gradients zeroed, the carried TBPTT state reset);
* ``rollback`` - also restore model, optimiser and schedule from the last good
  snapshot (taken at every checkpoint);
* ``raise``    - stop training with :class:`NonFiniteError`.

After ``max_bad_steps`` consecutive bad updates the guard raises as well.
"""
from __future__ import annotations

import math


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss or gradient and could not continue."""


class NonFiniteGuard:
    def __init__(self, policy: str, max_bad: int):
        self.policy, self.max_bad = policy, max_bad
        self.consecutive = 0
        self.total = 0

    @staticmethod
    def finite(value: float) -> bool:
        return math.isfinite(value)

    def ok(self) -> None:
        self.consecutive = 0

    def bad(self, step: int, what: str, value: float) -> str:
        """Record a bad update; returns the message, or raises per the policy."""
        self.consecutive += 1
        self.total += 1
        msg = (f"update {step}: non-finite {what} ({value}); "
               f"{'update skipped' if self.policy == 'skip' else 'rolled back to the last good checkpoint'}"
               f" ({self.consecutive} in a row)")
        if self.policy == "raise":
            raise NonFiniteError(f"update {step}: non-finite {what} ({value}); stopping (nan_policy=raise). "
                                 "Lower the learning rate, enable clip_norm, or train in fp32.")
        if self.consecutive >= self.max_bad:
            raise NonFiniteError(f"update {step}: {self.consecutive} consecutive non-finite updates "
                                 f"(last: {what} = {value}); giving up. Lower the learning rate, "
                                 "enable clip_norm, or train in fp32.")
        return msg
