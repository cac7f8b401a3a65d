"""n-gram Markov language model with interpolated Kneser-Ney smoothing (Chen & Goodman 1999).

The model the RNN language-model literature measures itself against (Mikolov
et al. 2010 compare with a Kneser-Ney 5-gram).  Tokens are integer ids from
any rnnkit tokenizer (characters, words, subwords)::

    P(w | h) = max(c(h w) - D, 0) / c(h)  +  D * N1+(h .) / c(h) * P(w | h[1:])

with continuation counts ``N1+(. h w)`` in place of ``c(h w)`` below the
highest order, and the unigram level interpolated with the uniform
distribution over the vocabulary so that no token has probability zero.
A context never seen backs off to the shorter one.
"""
from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from typing import Iterable, Sequence


class KneserNey:
    def __init__(self, order: int, vocab_size: int, discount: float = 0.75):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {discount}")
        self.n, self.V, self.D = order, vocab_size, discount
        # counts[k][context] = Counter(next token), k = context length 0 .. n-1
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(order)]
        self.totals: list[dict[tuple, int]] = []
        self.types: list[dict[tuple, int]] = []

    def fit(self, streams: Iterable[Sequence[int]]) -> "KneserNey":
        """Count n-grams in each token stream (streams are independent documents).

        The first tokens of a document have shorter contexts; their raw counts join the level of
        that context length, beside the continuation counts (any positive counts normalise).
        """
        top = self.n - 1
        raw: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(self.n)]
        for seq in streams:
            seq = list(seq)
            for i, w in enumerate(seq):
                ctx = tuple(seq[max(0, i - top):i])
                raw[len(ctx)][ctx][w] += 1
        self.counts = [defaultdict(Counter) for _ in range(self.n)]
        self.counts[top] = raw[top]
        for k in range(top - 1, -1, -1):
            level = self.counts[k]
            for ctx, nxt in self.counts[k + 1].items():   # N1+(. ctx w): distinct left extensions
                for w in nxt:
                    level[ctx[1:]][w] += 1
            for ctx, nxt in raw[k].items():
                for w, c in nxt.items():
                    level[ctx][w] += c
        return self.set_counts(self.counts)

    def set_counts(self, counts: list[dict[tuple, Counter]]) -> "KneserNey":
        """Install the smoothed counts of each level (as :meth:`fit` makes them, or as a saved run holds them)."""
        if len(counts) != self.n:
            raise ValueError(f"an order-{self.n} model has {self.n} levels of counts, got {len(counts)}")
        self.counts = counts
        self.totals = [{ctx: sum(c.values()) for ctx, c in level.items()} for level in self.counts]
        self.types = [{ctx: len(c) for ctx, c in level.items()} for level in self.counts]
        return self

    def prob(self, context: Sequence[int], w: int) -> float:
        ctx = tuple(context[-(self.n - 1):]) if self.n > 1 else ()
        return self._p(ctx, w)

    def _p(self, ctx: tuple, w: int) -> float:
        k = len(ctx)
        lower = 1.0 / self.V if k == 0 else self._p(ctx[1:], w)
        total = self.totals[k].get(ctx, 0)
        if total == 0:
            return lower
        c = self.counts[k][ctx].get(w, 0)
        return max(c - self.D, 0.0) / total + self.D * self.types[k][ctx] / total * lower

    def cross_entropy(self, streams: Iterable[Sequence[int]]) -> tuple[float, int]:
        """(mean negative log-likelihood in nats per token, tokens scored)."""
        nll, n = 0.0, 0
        for seq in streams:
            seq = list(seq)
            for i, w in enumerate(seq):
                nll -= math.log(self.prob(seq[max(0, i - self.n + 1):i], w))
                n += 1
        return nll / max(n, 1), n

    def distribution(self, context: Sequence[int]) -> list[float]:
        return [self.prob(context, w) for w in range(self.V)]

    def generate(self, prompt: Sequence[int], length: int, temperature: float = 1.0, seed: int = 0) -> list[int]:
        rng = random.Random(seed)
        seq = list(prompt)
        for _ in range(length):
            p = self.distribution(seq)
            if temperature <= 0:
                seq.append(max(range(self.V), key=p.__getitem__))
                continue
            weights = [q ** (1.0 / temperature) for q in p]
            seq.append(rng.choices(range(self.V), weights=weights)[0])
        return seq[len(prompt):]

    @property
    def parameters(self) -> int:
        """Stored n-gram counts (the model's size)."""
        return sum(len(c) for level in self.counts for c in level.values())
