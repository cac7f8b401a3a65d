"""Speech synthesis scores: mel cepstral distortion and whether an attention alignment is monotonic.

**Mel cepstral distortion** (Kubichek 1993) between a reference and a synthesised utterance. The
cepstrum of a frame is the cosine series of its log-*amplitude* mel spectrum,
``ln|S_m| = c_0 + 2 sum_k c_k cos(pi k (m + 1/2) / M)``, i.e. ``c_k = (1 / M) sum_m ln|S_m| cos(...)``
with ``ln|S_m|`` half the natural-log power of :class:`~rnnkit.modules.audio_features.FeatureExtractor`'s
log-mel frames; coefficients 1..K (c0, the loudness, left out). The two sequences are aligned by dynamic
time warping on the Euclidean cepstral distance (their durations differ), and
``MCD = (10 / ln 10) * sqrt(2 * sum_k (c_k - c'_k)^2)`` is averaged over the aligned pairs, in dB.
The cepstra come from an 80-band mel filterbank, not SPTK's all-pass warped spectrum, so compare these
values with each other, not with published MCDs.

**Monotonic alignment** (no skipped or repeated words). From the attention weights of free-running
synthesis (decoder steps x input symbols, the input being the words of ``text`` and an end symbol), the
words are the runs of non-space symbols; a symbol between words belongs to the word before it, and the end
symbol to the last word. The alignment is monotonic when

(a) no word is skipped: every word gets at least ``min_mass`` decoder steps' worth of attention
    (the weights summed over its symbols and over all steps);
(b) no word is repeated: the word of the attended symbol (the weights' argmax) never goes back to an
    earlier word;
(c) the last word is reached, and (d) the stop token fired before the step limit.

The largest backward and forward moves of the attended symbol are reported too, as diagnostics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def cepstrum_basis(n_mels: int, n_out: int) -> np.ndarray:
    """(n_mels, n_out): log-mel *power* frames @ basis = cepstra c_0..c_{n_out-1} of the log amplitude."""
    n, k = np.arange(n_mels)[:, None], np.arange(n_out)[None, :]
    return np.cos(np.pi / n_mels * (n + 0.5) * k) / (2.0 * n_mels)


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j) of the cheapest monotonic path through ``cost`` (N, M) from (0, 0) to (N-1, M-1),
    steps (1, 0), (0, 1), (1, 1)."""
    N, M = cost.shape
    acc = np.full((N + 1, M + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, N + 1):  # rows in Python, the row's recursion along j also sequential: O(NM)
        row, prev = acc[i], acc[i - 1]
        c = cost[i - 1]
        for j in range(1, M + 1):
            row[j] = c[j - 1] + min(prev[j - 1], prev[j], row[j - 1])
    i, j, path = N, M, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        step = np.argmin([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]])
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    path.reverse()
    idx = np.array(path)
    return idx[:, 0], idx[:, 1]


def mel_cepstral_distortion(reference: np.ndarray, synthesised: np.ndarray, n_ceps: int = 24) -> float:
    """MCD in dB between log-mel frames (T1, M) and (T2, M), DTW-aligned, c0 excluded."""
    if reference.ndim != 2 or synthesised.ndim != 2 or reference.shape[1] != synthesised.shape[1]:
        raise ValueError(f"MCD needs two (T, M) log-mel arrays with the same M, got {reference.shape} and "
                         f"{synthesised.shape}")
    if not 1 <= n_ceps < reference.shape[1]:
        raise ValueError(f"n_ceps must be in [1, {reference.shape[1]}), got {n_ceps}")
    basis = cepstrum_basis(reference.shape[1], n_ceps + 1)[:, 1:]                # (M, K)
    a, b = reference.astype(np.float64) @ basis, synthesised.astype(np.float64) @ basis
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))               # (T1, T2)
    i, j = dtw_path(cost)
    per_frame = np.sqrt(2.0 * ((a[i] - b[j]) ** 2).sum(-1))
    return float(10.0 / math.log(10.0) * per_frame.mean())


@dataclass
class AlignmentCheck:
    monotonic: bool
    skipped: list[str]     # words that got less than min_mass attention
    repeated: list[str]    # words attended again after a later word
    reached_end: bool
    stopped: bool
    max_back: int          # largest backward move of the attended symbol
    max_jump: int          # largest forward move
    reason: str            # "" when monotonic, else what failed


def word_of_symbol(text: str, n: int) -> tuple[np.ndarray, list[str]]:
    """(word index of each of ``n`` input symbols, the words): ``text``'s symbols, then end symbols."""
    words, index, current = [], [], -1
    previous_space = True
    for ch in text:
        if ch != " " and previous_space:
            words.append("")
            current += 1
        if ch != " ":
            words[-1] += ch
        previous_space = ch == " "
        index.append(max(current, 0))
    if not words:
        raise ValueError("the text has no words")
    index += [len(words) - 1] * (n - len(text))
    return np.array(index[:n]), words


def check_alignment(weights: np.ndarray, text: str, stopped: bool, min_mass: float = 0.5) -> AlignmentCheck:
    """Is the alignment ``weights`` (steps, N) of ``text`` monotonic? (see the module docstring)."""
    if weights.ndim != 2 or weights.shape[0] == 0:
        raise ValueError(f"alignment must be (steps, N) with at least one step, got {weights.shape}")
    if weights.shape[1] < len(text):
        raise ValueError(f"alignment covers {weights.shape[1]} symbols, the text has {len(text)}")
    word, words = word_of_symbol(text, weights.shape[1])
    mass = np.bincount(word, weights=weights.sum(0), minlength=len(words))       # (words,)
    pos = weights.argmax(1)
    attended = word[pos]                                                         # (steps,)
    moves = np.diff(pos) if len(pos) > 1 else np.zeros(1, dtype=int)
    skipped = [w for w, m in zip(words, mass) if m < min_mass]
    furthest = np.maximum.accumulate(attended)
    repeated = sorted({words[w] for w, f in zip(attended, furthest) if w < f}, key=words.index)
    reached_end = bool(attended.max() == len(words) - 1)
    problems = []
    if skipped:
        problems.append(f"skipped {skipped}")
    if repeated:
        problems.append(f"repeated {repeated}")
    if not reached_end:
        problems.append(f"stopped at word {words[attended.max()]!r} of {len(words)}")
    if not stopped:
        problems.append("the stop token never fired")
    return AlignmentCheck(not problems, skipped, repeated, reached_end, stopped, int(max(0, -moves.min())),
                          int(max(0, moves.max())), "; ".join(problems))
