"""How well a clustering recovers the true people: pairwise and BCubed precision, recall and F.

Pairwise counts pairs of faces (a pair put together that is one person is a true positive), so large
people weigh quadratically; BCubed averages over faces (each face's share of its group that is its
person, and of its person that is in its group), so a person with one photo counts as much as one with
500. A face left alone (label -1) is a group of its own in both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Scores:
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f: float
    groups: int  # groups of 2+ faces
    singletons: int  # faces left alone or in a group of one
    people: int  # true people (identities) among the faces

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _codes(labels: np.ndarray) -> np.ndarray:
    """Labels as 0..G-1, every -1 (left alone) a group of its own."""
    labels = np.asarray(labels).copy()
    alone = labels == -1
    labels[alone] = labels.max(initial=0) + 1 + np.arange(int(alone.sum()))
    return np.unique(labels, return_inverse=True)[1]


def score(truth: np.ndarray, predicted: np.ndarray) -> Scores:
    """Scores of `predicted` group labels (-1: left alone) against `truth` person labels, one per face."""
    t = np.unique(np.asarray(truth), return_inverse=True)[1]
    p = _codes(predicted)
    if len(t) != len(p):
        raise ValueError(f"{len(t)} true labels but {len(p)} predicted ones")
    cells = np.unique(t * (p.max(initial=0) + 1) + p, return_counts=True)[1].astype(np.float64)
    group_sizes = np.bincount(p).astype(np.float64)
    person_sizes = np.bincount(t).astype(np.float64)
    together = float((cells * (cells - 1)).sum())
    predicted_pairs = float((group_sizes * (group_sizes - 1)).sum())
    true_pairs = float((person_sizes * (person_sizes - 1)).sum())
    pp = together / predicted_pairs if predicted_pairs else 1.0
    pr = together / true_pairs if true_pairs else 1.0
    # BCubed: a face in cell (person i, group j) has precision n_ij / |group j| and recall n_ij / |person i|
    order = np.unique(t * (p.max(initial=0) + 1) + p, return_index=True)[1]
    cell_group = group_sizes[p[order]]
    cell_person = person_sizes[t[order]]
    n = len(t)
    bp = float((cells**2 / cell_group).sum() / n) if n else 1.0
    br = float((cells**2 / cell_person).sum() / n) if n else 1.0
    return Scores(
        pp,
        pr,
        _f(pp, pr),
        bp,
        br,
        _f(bp, br),
        int((group_sizes > 1).sum()),
        int((group_sizes == 1).sum()),
        len(person_sizes),
    )
