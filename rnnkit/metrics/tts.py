"""Speech synthesis scores: mel cepstral distortion and whether an attention alignment is monotonic.

**Mel cepstral distortion** (Kubichek 1993) between a reference and a synthesised utterance:
cepstra are the orthonormal DCT-II of each log-mel frame (natural-log power, the frames of
:class:`~rnnkit.modules.audio_features.FeatureExtractor`), coefficients 1..K (c0, the loudness, left out);
the two sequences are aligned by dynamic time warping on the Euclidean cepstral distance (their durations
differ), and ``MCD = (10 / ln 10) * sqrt(2 * sum_k (c_k - c'_k)^2)`` is averaged over the aligned
pairs, in dB. These cepstra are of log *power* mel spectra, so values are about twice those computed
on log-amplitude mel-generalised cepstra by SPTK: compare MCDs within rnnkit only.

**Monotonic alignment.** From the attention weights of free-running synthesis (decoder steps x input
symbols), the attended position of each step is the weights' argmax. The alignment is monotonic when
(a) the position never moves back by more than ``max_back`` symbols (a repeated word moves it back),
(b) never jumps forward by more than ``max_skip`` symbols in one step (a skipped word jumps), (c) it
ends within ``end_slack`` symbols of the last input symbol (nothing left unread), and (d) the stop token
fired before the step limit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def dct_basis(n_mels: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II (n_mels, n_out)."""
    n, k = np.arange(n_mels)[:, None], np.arange(n_out)[None, :]
    d = np.cos(np.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    d[:, 0] /= math.sqrt(2.0)
    return d


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


def mel_cepstral_distortion(reference: np.ndarray, synthesised: np.ndarray, n_ceps: int = 13) -> float:
    """MCD in dB between log-mel frames (T1, M) and (T2, M), DTW-aligned, c0 excluded."""
    if reference.ndim != 2 or synthesised.ndim != 2 or reference.shape[1] != synthesised.shape[1]:
        raise ValueError(f"MCD needs two (T, M) log-mel arrays with the same M, got {reference.shape} and "
                         f"{synthesised.shape}")
    if not 1 <= n_ceps < reference.shape[1]:
        raise ValueError(f"n_ceps must be in [1, {reference.shape[1]}), got {n_ceps}")
    basis = dct_basis(reference.shape[1], n_ceps + 1)[:, 1:]                     # (M, K)
    a, b = reference.astype(np.float64) @ basis, synthesised.astype(np.float64) @ basis
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))               # (T1, T2)
    i, j = dtw_path(cost)
    per_frame = np.sqrt(2.0 * ((a[i] - b[j]) ** 2).sum(-1))
    return float(10.0 / math.log(10.0) * per_frame.mean())


@dataclass
class AlignmentCheck:
    monotonic: bool
    max_back: int          # largest backward move of the attended position
    max_jump: int          # largest forward move
    end_gap: int           # input symbols after the last attended position
    stopped: bool
    reason: str            # "" when monotonic, else what failed


def check_alignment(weights: np.ndarray, stopped: bool, max_back: int = 1, max_skip: int = 3,
                    end_slack: int = 2) -> AlignmentCheck:
    """Is the alignment ``weights`` (steps, N) monotonic? (see the module docstring)."""
    if weights.ndim != 2 or weights.shape[0] == 0:
        raise ValueError(f"alignment must be (steps, N) with at least one step, got {weights.shape}")
    pos = weights.argmax(1)
    moves = np.diff(pos) if len(pos) > 1 else np.zeros(1, dtype=int)
    back, jump = int(max(0, -moves.min())), int(max(0, moves.max()))
    end_gap = int(weights.shape[1] - 1 - pos.max())
    problems = []
    if back > max_back:
        problems.append(f"moves back {back} symbols")
    if jump > max_skip:
        problems.append(f"skips {jump} symbols")
    if end_gap > end_slack:
        problems.append(f"stops {end_gap} symbols before the end")
    if not stopped:
        problems.append("the stop token never fired")
    return AlignmentCheck(not problems, back, jump, end_gap, stopped, "; ".join(problems))
