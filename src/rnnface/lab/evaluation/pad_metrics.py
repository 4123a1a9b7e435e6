"""Presentation-attack detection metrics as ISO/IEC 30107-3 defines them, and the curves behind them.

Scores are live probabilities (higher: more likely bona fide); a presentation is accepted as bona fide when
its score is at least the threshold. APCER: attacks accepted; BPCER: bona fide presentations rejected; ACER:
their mean. With one attack species (printed photos) APCER is that species' rate, and HTER, which NUAA papers
report, is the same mean under the names FAR and FRR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PadErrors:
    threshold: float
    apcer: float
    bpcer: float

    @property
    def acer(self) -> float:
        return (self.apcer + self.bpcer) / 2

    @property
    def hter(self) -> float:
        return self.acer


def errors_at(scores: np.ndarray, live: np.ndarray, threshold: float) -> PadErrors:
    """APCER and BPCER of `scores` (live probability) with labels `live` at `threshold`."""
    scores, live = np.asarray(scores, dtype=np.float64), np.asarray(live, dtype=bool)
    if not live.any() or live.all():
        raise ValueError("PAD errors need both bona fide and attack presentations")
    accepted = scores >= threshold
    return PadErrors(float(threshold), float(accepted[~live].mean()), float((~accepted[live]).mean()))


def curve(scores: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, APCER, BPCER) at every distinct score, thresholds ascending."""
    scores, live = np.asarray(scores, dtype=np.float64), np.asarray(live, dtype=bool)
    thresholds = np.unique(scores)
    order = np.sort(scores[~live])
    bona = np.sort(scores[live])
    apcer = 1.0 - np.searchsorted(order, thresholds, side="left") / len(order)
    bpcer = np.searchsorted(bona, thresholds, side="left") / len(bona)
    return thresholds, apcer, bpcer


def eer_threshold(scores: np.ndarray, live: np.ndarray) -> float:
    """The threshold at which APCER and BPCER are closest (the equal-error point), midway between scores."""
    thresholds, apcer, bpcer = curve(scores, live)
    i = int(np.argmin(np.abs(apcer - bpcer) + 1e-9 * (apcer + bpcer)))
    if i == 0:
        return float(thresholds[0])
    return float((thresholds[i] + thresholds[i - 1]) / 2) if apcer[i] <= bpcer[i] else float(thresholds[i])


def eer(scores: np.ndarray, live: np.ndarray) -> float:
    """Equal error rate: the mean of APCER and BPCER where they cross (threshold-free, for comparison)."""
    _, apcer, bpcer = curve(scores, live)
    i = int(np.argmin(np.abs(apcer - bpcer)))
    return float((apcer[i] + bpcer[i]) / 2)
