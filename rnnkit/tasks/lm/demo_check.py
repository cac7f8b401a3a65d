"""Did ``rnnkit demo`` learn anything? The check that stands between a training run and its "generated text".

A character model that has not beaten the unigram level (each character drawn from the text's own
character frequencies, no context) writes noise; so does one that made only a handful of updates. The
demo then says so and exits non-zero instead of printing that noise as a result.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Optional

#: fewer updates than this cannot have taught a character model much (one update is all a 60-second
#: budget gave when a kernel build ran inside it)
MIN_UPDATES = 50


def unigram_nats(train: Iterable[str], val: Iterable[str]) -> float:
    """Cross-entropy in nats/char of ``val`` under ``train``'s character frequencies (add-one smoothed over
    the characters of both): the loss of a model that learned frequencies and no context."""
    counts = Counter()
    for doc in train:
        counts.update(doc)
    val_counts = Counter()
    for doc in val:
        val_counts.update(doc)
    alphabet = set(counts) | set(val_counts)
    total = sum(counts.values()) + len(alphabet)
    n_val = sum(val_counts.values())
    if not n_val:
        raise ValueError("unigram_nats: the validation text is empty")
    return -sum(n * math.log((counts[ch] + 1) / total) for ch, n in val_counts.items()) / n_val


def learning_verdict(updates: int, val_loss: Optional[float], unigram: float,
                     min_updates: int = MIN_UPDATES) -> Optional[str]:
    """Why the run cannot be shown as a result (None: it learned). ``val_loss`` in nats/char."""
    if updates < min_updates:
        return (f"training made only {updates} updates (at least {min_updates} are needed before the model "
                f"writes anything but noise)")
    if val_loss is None or not math.isfinite(val_loss):
        return "training produced no finite validation loss"
    if val_loss >= unigram:
        return (f"the validation loss {val_loss:.3f} nats/char did not fall below the unigram level "
                f"{unigram:.3f} (character frequencies alone): the model learned no context")
    return None
