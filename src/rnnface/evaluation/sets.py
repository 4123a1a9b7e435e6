"""Set-to-set (template) verification and identification on LFW, like IJB's templates.

People of the held-out folds with at least 4 images; in each round every person's images are
split in two halves and a template (a random set of 1-8 items) is drawn from each half. Genuine
pairs are a person's two templates, impostor pairs every cross-person pair of the round; the
gallery for rank-1 holds each person's first template, probed by the second. Conditions: "clean"
(the photos as they are) and "noisy" (70% of the items degraded: low resolution, blur, occlusion,
exposure, as video frames are). Methods: one image of the template, mean pooling, the aggregator.
Backbone and aggregator must both have left these people out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from rnnface.aggregation.model import RecurrentAggregator, load_aggregator, mean_pool
from rnnface.aggregation.sets import SetData, draw_set, embed_variants
from rnnface.data.prepare import FaceCache
from rnnface.evaluation.lfw import DisjointnessError
from rnnface.evaluation.protocol import tar_at_far
from rnnface.models.checkpoint import load_checkpoint
from rnnface.training.data import held_out_people

CONDITIONS = {"clean": 1.0, "noisy": 0.3}  # share of clean items in a template
MIN_IMAGES = 4
MAX_SET = 8


def template_scores(pool, rounds_data) -> tuple[np.ndarray, np.ndarray, float]:
    """(scores, same, rank-1) of one pooling over rounds of (A, B) templates."""
    scores, same, hits, n = [], [], 0, 0
    for a, b in rounds_data:
        za = np.stack([pool(e, c) for e, c in a])
        zb = np.stack([pool(e, c) for e, c in b])
        sims = za @ zb.T
        scores.append(sims.ravel())
        same.append(np.eye(len(a), dtype=bool).ravel())
        hits += int((sims.argmax(0) == np.arange(len(a))).sum())
        n += len(a)
    return np.concatenate(scores), np.concatenate(same), hits / n


def _methods(aggregator: RecurrentAggregator) -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    return {
        "single image": lambda e, c: e[0],
        "mean pooling": lambda e, c: mean_pool(e),
        "recurrent aggregator": aggregator.aggregate,
    }


def draw_templates(data: SetData, people: list[str], clean_share: float, rng: np.random.Generator):
    """Two disjoint templates per person: lists of (embeddings, cues) for halves A and B."""
    a, b = [], []
    for p in people:
        images = rng.permutation(data.images_of[p])
        half = len(images) // 2
        for part, out in ((images[:half], a), (images[half:], b)):
            size = int(rng.integers(1, min(MAX_SET, len(part)) + 1))
            chosen = rng.choice(part, size=size, replace=False)
            out.append(draw_set(data, chosen, size, rng, clean_share))
    return a, b


def evaluate_sets(
    cache: FaceCache, backbone: str | Path, aggregator: str | Path, folds: tuple[int, ...] = (0, 1, 2, 3, 4), rounds: int = 3, seed: int = 0
) -> dict:
    """TAR@FAR 1e-2/1e-3 and rank-1 per condition and method, on people both models left out."""
    checkpoint = load_checkpoint(backbone)
    agg, agg_meta = load_aggregator(aggregator, checkpoint.model_id)
    for name, meta in (("backbone", checkpoint.meta), ("aggregator", agg_meta)):
        missing = set(folds) - set(meta.get("exclude_folds", []))
        if missing:
            raise DisjointnessError(f"the {name} was trained on the people of folds {sorted(missing)}; evaluate on folds it left out")
    counts = cache.images_per_person()
    people = sorted(p for p in held_out_people(cache, tuple(folds)) if counts.get(p, 0) >= MIN_IMAGES)
    seen = (set(checkpoint.meta.get("train_people", [])) | set(agg_meta.get("train_people", []))) & set(people)
    if seen:
        raise DisjointnessError(f"{len(seen)} evaluation people were trained on, e.g. {sorted(seen)[0]}")
    data = embed_variants(cache, checkpoint, set(people), variants=3, seed=seed + 1)
    rows = []
    with torch.inference_mode():
        for condition, clean_share in CONDITIONS.items():
            rng = np.random.default_rng(seed)
            rounds_data = [draw_templates(data, people, clean_share, rng) for _ in range(rounds)]
            for method, pool in _methods(agg).items():
                s, y, rank1 = template_scores(pool, rounds_data)
                rows.append(
                    {
                        "condition": condition,
                        "method": method,
                        "tar_at_far_1e-2": tar_at_far(s, y, 1e-2)[0],
                        "tar_at_far_1e-3": tar_at_far(s, y, 1e-3)[0],
                        "rank1": rank1,
                    }
                )
    return {
        "people": len(people),
        "rounds": rounds,
        "genuine_pairs": rounds * len(people),
        "impostor_pairs": rounds * len(people) * (len(people) - 1),
        "folds": list(folds),
        "backbone": str(backbone),
        "aggregator": str(aggregator),
        "rows": rows,
    }


def markdown(report: dict) -> str:
    lines = ["| condition | method | TAR@FAR=1e-2 | TAR@FAR=1e-3 | rank-1 |", "| --- | --- | --- | --- | --- |"]
    for r in report["rows"]:
        lines.append(
            f"| {r['condition']} | {r['method']} | {100 * r['tar_at_far_1e-2']:.2f}% | {100 * r['tar_at_far_1e-3']:.2f}% | {100 * r['rank1']:.2f}% |"
        )
    return "\n".join(lines) + "\n"
