"""Verification metrics on hand-made scores with known answers, and the identity-disjointness guard."""

from __future__ import annotations

import numpy as np
import pytest

from rnnface.lab.data.lfw import Pair
from rnnface.lab.evaluation.lfw import DisjointnessError, assign_models, check_disjoint
from rnnface.lab.evaluation.protocol import best_threshold, kfold_accuracy, tar_at_far, verification_report


def test_best_threshold_separates_separable_scores():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    same = np.array([0, 0, 0, 1, 1, 1], bool)
    assert best_threshold(scores, same) == pytest.approx(0.5)


def test_kfold_accuracy_known_answer():
    # Fold 0 is separable; its unique best threshold is 0.5 (midway between 0.2 and 0.8).
    # Fold 1 has a "same" pair scored low (0.2); its unique best threshold is 0.6 (5 of 6 right).
    scores = np.array([0.1, 0.2, 0.8, 0.9, 0.1, 0.25, 0.3, 0.2, 0.9, 0.95])
    same = np.array([0, 0, 1, 1, 0, 0, 0, 1, 1, 1], bool)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    accs, thresholds = kfold_accuracy(scores, same, folds)
    assert thresholds.tolist() == pytest.approx([0.6, 0.5])  # each chosen on the *other* fold
    assert accs.tolist() == pytest.approx([1.0, 5 / 6])


def test_tar_at_far_known_answer():
    neg = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    pos = np.array([0.5, 0.9985, 0.9995, 1.0])
    scores = np.concatenate([neg, pos])
    same = np.concatenate([np.zeros(1000, bool), np.ones(4, bool)])
    tar, t = tar_at_far(scores, same, 1e-3)  # one false accept allowed: only 0.999 may pass
    assert 0.998 < t <= 0.999
    assert tar == 0.75
    tar, t = tar_at_far(scores, same, 1e-2)  # ten allowed: 0.990 .. 0.999
    assert 0.989 < t <= 0.990 and tar == 0.75


def test_report_auc_and_eer():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    same = np.array([0, 0, 1, 1], bool)
    report = verification_report(scores, same, np.array([0, 0, 1, 1]))
    assert report.auc == pytest.approx(0.75)
    perfect = verification_report(
        np.array([0.1, 0.2, 0.8, 0.9]), same.copy() | np.array([0, 0, 1, 1], bool), np.array([0, 1, 0, 1])
    )
    assert perfect.auc == 1.0 and perfect.eer == 0.0 and perfect.accuracy_mean == 1.0


def test_disjointness_check_fails_loudly():
    pairs = [Pair(3, "Ann/Ann_0001.jpg", "Bob/Bob_0001.jpg", False)]
    check_disjoint(pairs, {"Cid"}, "model-a")
    with pytest.raises(DisjointnessError, match="model-a was trained on Bob, who appears in fold 3"):
        check_disjoint(pairs, {"Bob"}, "model-a")


def test_every_fold_needs_an_excluding_model():
    metas = {"a": {"exclude_folds": [0, 1]}, "b": {"exclude_folds": [2]}}
    assert assign_models(metas, [0, 1, 2]) == {0: "a", 1: "a", 2: "b"}
    with pytest.raises(DisjointnessError, match="fold 3 has no identity-disjoint model"):
        assign_models(metas, [0, 1, 2, 3])


def test_rank_hits_and_stranger_scores_known_answer():
    from rnnface.gallery import Match
    from rnnface.lab.evaluation.identification import rank_hits, stranger_scores

    def ranked(*people):
        return [Match(p, 1.0 - 0.1 * i) for i, p in enumerate(people)]

    results = [
        ranked("a", "b", "c", "d", "e"),  # truth a: rank 1
        ranked("a", "b", "c", "d", "e"),  # truth f: not in the top 5
        ranked("e", "d", "b", "c", "a"),  # truth c: rank 4
    ]
    assert rank_hits(results, ["a", "f", "c"]) == {1: 1, 5: 2}
    np.testing.assert_allclose(stranger_scores(results, ["a", "f", "c"]), [0.9, 1.0, 1.0])
