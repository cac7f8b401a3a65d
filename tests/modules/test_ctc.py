import itertools
import math

import pytest
import torch

from rnnkit.modules.ctc import collapse, greedy_decode, prefix_beam_search, word_timings


def brute_force(log_probs, blank=0):
    """label sequence -> log P, summed over every alignment of the (T, V) frame distribution."""
    T, V = log_probs.shape
    totals = {}
    for path in itertools.product(range(V), repeat=T):
        p = math.exp(sum(float(log_probs[t, s]) for t, s in enumerate(path)))
        key = tuple(collapse(path, blank))
        totals[key] = totals.get(key, 0.0) + p
    return {k: math.log(v) for k, v in totals.items()}


def path_scores(path, V, sharp=5.0):
    """(T, V) logits that put most mass on the given frame path."""
    scores = torch.zeros(len(path), V)
    scores[torch.arange(len(path)), torch.tensor(path)] = sharp
    return scores


def test_collapse_and_greedy():
    assert collapse([0, 1, 1, 0, 1, 2, 2, 0, 0]) == [1, 1, 2]
    assert collapse([3, 3, 3]) == [3] and collapse([0, 0]) == []
    batch = torch.stack([path_scores([1, 1, 0, 1, 2], 3), path_scores([2, 0, 2, 2, 1], 3)])
    assert greedy_decode(batch) == [[1, 1, 2], [2, 2, 1]]
    assert greedy_decode(batch, torch.tensor([2, 3])) == [[1], [2, 2]]
    assert greedy_decode(path_scores([0, 2, 2], 3)) == [[2]]


@pytest.mark.parametrize("T", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_beam_search_equals_brute_force_enumeration(T, seed):
    logits = torch.randn(T, 3, generator=torch.Generator().manual_seed(seed)) * 2
    exact = brute_force(torch.log_softmax(logits.double(), -1))
    hyps = prefix_beam_search(logits, beam_width=100)               # wide enough to keep every prefix
    assert {h.tokens for h in hyps} == set(exact)
    for h in hyps:
        assert h.ctc_score == pytest.approx(exact[h.tokens], abs=1e-9)
        assert h.score == h.ctc_score
    best = max(exact, key=exact.get)
    assert hyps[0].tokens == best
    narrow = prefix_beam_search(logits, beam_width=2)
    assert len(narrow) <= 2 and all(h.ctc_score <= exact[h.tokens] + 1e-9 for h in narrow)


def test_beam_finds_a_label_greedy_misses():
    # frame distributions where the best single path is "blank blank" but label 1 has more total mass
    p = torch.tensor([[0.4, 0.3, 0.3], [0.4, 0.3, 0.3]]).log()
    assert greedy_decode(p) == [[]]
    exact = brute_force(p.double())
    assert exact[(1,)] > exact[()]          # 0.3*0.3 + 2 * 0.4*0.3 = 0.33 > 0.16
    assert prefix_beam_search(p, beam_width=4)[0].tokens == (1,)


class BigramLM:
    """log P(token | last token) from a table; unseen pairs get a low floor."""

    def __init__(self, table, floor=-10.0):
        self.table, self.floor = table, floor
        self.calls = 0

    def __call__(self, prefix, token):
        self.calls += 1
        return self.table.get((prefix[-1] if prefix else None, token), self.floor)


def test_shallow_fusion_reranks_with_the_lm_and_the_insertion_bonus():
    # CTC slightly prefers label 1 over label 2 in a one-label utterance
    p = torch.tensor([[0.1, 0.5, 0.4], [0.8, 0.1, 0.1]]).log()
    plain = prefix_beam_search(p, beam_width=8)
    assert plain[0].tokens == (1,)
    lm = BigramLM({(None, 2): math.log(0.9), (None, 1): math.log(0.1)})
    fused = prefix_beam_search(p, beam_width=8, lm=lm, alpha=1.0)
    assert fused[0].tokens == (2,) and lm.calls > 0
    top = fused[0]
    assert top.lm_score == pytest.approx(math.log(0.9))
    assert top.score == pytest.approx(top.ctc_score + 1.0 * top.lm_score)
    assert prefix_beam_search(p, beam_width=8, lm=lm, alpha=0.0)[0].tokens == (1,)
    # an insertion bonus large enough makes the two-label reading win
    assert len(prefix_beam_search(p, beam_width=8)[0].tokens) == 1
    assert len(prefix_beam_search(p, beam_width=8, beta=5.0)[0].tokens) == 2


def test_word_timings_from_the_greedy_alignment():
    symbols = ["_", " ", "a", "b"]
    #      frame: 0  1  2  3  4  5  6  7
    scores = path_scores([2, 2, 0, 3, 1, 1, 3, 3], 4)
    words = word_timings(scores, symbols, frame_seconds=0.04)
    assert [(w.word, round(w.start, 6), round(w.end, 6)) for w in words] == [("ab", 0.0, 0.16), ("b", 0.24, 0.32)]
    # word-level vocabulary: every label is a word
    words = word_timings(path_scores([0, 2, 2, 0, 3, 0], 4), ["_", "x", "yes", "no"], 0.1, separator=None)
    assert [(w.word, round(w.start, 6), round(w.end, 6)) for w in words] == [("yes", 0.1, 0.3), ("no", 0.4, 0.5)]
    with pytest.raises(ValueError, match="symbols has 3 entries"):
        word_timings(scores, symbols[:3], 0.04)
