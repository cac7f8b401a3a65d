"""The classical spoken-word baseline: MFCC statistics over frames -> RBF support-vector machine.

Each clip's frames (log-mel or MFCC, as the classify run computes them) become one fixed-length
vector: the MFCCs (the DCT-II of log-mel frames, the first ``n_mfcc`` kept) and their deltas, each
summarised by its mean and standard deviation over the clip's frames -> ``4 * n_mfcc`` numbers. The
vectors are standardised on the training split and classified by ``sklearn.svm.SVC`` (RBF kernel),
the bar recurrent spoken-digit classifiers are usually measured against.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from rnnkit.metrics import classification_report
from rnnkit.modules.audio_features import FeatureConfig, add_deltas, dct_matrix
from rnnkit.tasks.baselines.text import _labels
from rnnkit.tasks.runs import need


def mfcc_statistics(frames: np.ndarray | torch.Tensor, config: FeatureConfig) -> np.ndarray:
    """One clip's frames (T, num_features) -> (4 * n_mfcc,): mean and std of the MFCCs and of their deltas."""
    x = torch.as_tensor(np.asarray(frames), dtype=torch.float64)
    width = x.shape[1] // (1 + config.deltas)                     # the static part, before any deltas
    base = x[:, :width]                                           # (T, M) log-mel or (T, n_mfcc) MFCC
    if config.kind == "logmel":
        base = base @ dct_matrix(width, min(config.n_mfcc, width))  # (T, n_mfcc)
    feats = add_deltas(base[None], 1)[0]                          # (T, 2 n_mfcc)
    std = feats.std(0, unbiased=False) if len(feats) > 1 else torch.zeros(feats.shape[1], dtype=feats.dtype)
    return torch.cat([feats.mean(0), std]).numpy()


def mfcc_svm(train_frames: Sequence, train_labels, test_frames: Sequence, test_labels, config: FeatureConfig,
             C: float = 10.0) -> dict:
    """Accuracy, macro-F1, parameter count (support vectors x width + dual coefficients) and fit time."""
    svm = need("sklearn.svm", "the MFCC + SVM baseline")
    preprocessing = need("sklearn.preprocessing", "the MFCC + SVM baseline")
    classes, ytr, yte = _labels(train_labels, test_labels)
    t0 = time.perf_counter()
    Xtr = np.stack([mfcc_statistics(f, config) for f in train_frames])          # (N, 4 n_mfcc)
    scaler = preprocessing.StandardScaler().fit(Xtr)
    clf = svm.SVC(C=C, kernel="rbf", gamma="scale").fit(scaler.transform(Xtr), ytr)
    elapsed = time.perf_counter() - t0
    Xte = scaler.transform(np.stack([mfcc_statistics(f, config) for f in test_frames]))
    rep = classification_report(yte, clf.predict(Xte).tolist(), len(classes))
    params = int(clf.support_vectors_.size + clf.dual_coef_.size + clf.intercept_.size)
    return {**rep.summary(), "parameters": params, "train_s": elapsed}
