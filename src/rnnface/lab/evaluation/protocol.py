"""Verification metrics from similarity scores: k-fold accuracy, ROC, AUC, EER, TAR at FAR.

Pure functions of (scores, labels, folds) so they can be checked on hand-made scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from rnnface.errors import RnnfaceError


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold maximising accuracy of `score >= t` (midpoint between neighbouring scores)."""
    order = np.argsort(scores)
    s, y = scores[order], same[order].astype(int)
    # Accuracy when everything from position i upward is called "same": TNs below + TPs from i.
    tn_below = np.concatenate([[0], np.cumsum(1 - y)])
    tp_above = np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    correct = tn_below + tp_above
    i = int(np.argmax(correct))
    if i == 0:
        return float(s[0] - 1e-6)
    if i == len(s):
        return float(s[-1] + 1e-6)
    return float((s[i - 1] + s[i]) / 2)


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-fold accuracy with the threshold chosen on the other folds; returns (accuracies, thresholds)."""
    if len(np.unique(folds)) < 2:
        raise RnnfaceError("k-fold accuracy needs pairs from at least 2 folds (the threshold is chosen on the others)")
    accs, thresholds = [], []
    for fold in np.unique(folds):
        test = folds == fold
        t = best_threshold(scores[~test], same[~test])
        accs.append(float(np.mean((scores[test] >= t) == same[test])))
        thresholds.append(t)
    return np.array(accs), np.array(thresholds)


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the lowest threshold whose false-accept rate is <= `far`."""
    neg = np.sort(scores[~same])[::-1]
    allowed = int(np.floor(far * len(neg)))  # false accepts permitted
    threshold = np.nextafter(neg[allowed], np.inf) if allowed < len(neg) else -np.inf
    return float(np.mean(scores[same] >= threshold)), float(threshold)


def equal_error_rate(scores: np.ndarray, same: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(same, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


@dataclass(frozen=True)
class VerificationReport:
    accuracy_mean: float
    accuracy_std: float
    fold_accuracies: list[float]
    auc: float
    eer: float
    tar_at_far: dict[str, float]  # "1e-02" -> TAR
    threshold_at_far: dict[str, float]  # "1e-03" -> cosine threshold
    pairs: int

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def verification_report(scores, same, folds, fars=(1e-2, 1e-3)) -> VerificationReport:
    """All verification metrics for pooled scores of person-disjoint folds."""
    scores, same, folds = np.asarray(scores, float), np.asarray(same, bool), np.asarray(folds)
    accs, _ = kfold_accuracy(scores, same, folds)
    tars, thresholds = {}, {}
    for far in fars:
        tar, t = tar_at_far(scores, same, far)
        tars[f"{far:.0e}"], thresholds[f"{far:.0e}"] = tar, t
    return VerificationReport(
        accuracy_mean=float(accs.mean()),
        accuracy_std=float(accs.std()),
        fold_accuracies=[round(float(a), 4) for a in accs],
        auc=float(roc_auc_score(same, scores)),
        eer=equal_error_rate(scores, same),
        tar_at_far=tars,
        threshold_at_far=thresholds,
        pairs=len(scores),
    )
