"""Set-to-set (template) verification and identification on LFW, like IJB's templates.

People of the held-out folds with at least 4 images; in each round every person's images are
split in two halves and a template (a random set of 1-8 items) is drawn from each half. Genuine
pairs are a person's two templates, impostor pairs every cross-person pair of the round; the
gallery for rank-1 holds each person's first template, probed by the second. Conditions: "clean"
(the photos as they are) and "noisy" (70% of the items degraded: low resolution, blur, occlusion,
exposure, as video frames are). Methods: one image of the template, mean pooling, the aggregator.
Backbone and aggregator must both have left these people out.

The sets are made of each cached crop's `variants` versions (the first clean, the others degraded at
random: blur, low resolution, occlusion, bad light), all embedded once by the frozen backbone with
their quality cues, so sets can then be drawn freely (the aggregator's training draws them too).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from rnnface.aggregation.model import RecurrentAggregator, load_aggregator, mean_pool
from rnnface.lab.data.lfw import held_out_people
from rnnface.lab.data.prepare import FaceCache
from rnnface.lab.evaluation.lfw import DisjointnessError
from rnnface.lab.evaluation.protocol import tar_at_far
from rnnface.lab.evaluation.report import Report
from rnnface.lab.evaluation.sources import embed_cached
from rnnface.models.checkpoint import Checkpoint, load_checkpoint
from rnnface.recognition.embedder import Embedder
from rnnface.recognition.quality import quality_cues

CONDITIONS = {"clean": 1.0, "noisy": 0.3}  # share of clean items in a template
MIN_IMAGES = 4
MAX_SET = 8


#: Typical LFW face height in pixels (about half of the 250-pixel photo), for the size cue of cached crops.
LFW_FACE_HEIGHT = 110.0


def degrade(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A randomly degraded copy of an aligned crop and its effective resolution factor (0-1]."""
    size = crop.shape[0]
    out: np.ndarray = crop.astype(np.float32)
    factor = float(rng.uniform(0.2, 1.0))
    if factor < 0.9:  # low resolution: down and back up
        small = max(8, int(size * factor))
        out = cv2.resize(
            cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA), (size, size), interpolation=cv2.INTER_LINEAR
        )
    if rng.random() < 0.5:  # motion/defocus blur
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.8, 3.0)))
    if rng.random() < 0.3:  # occlusion patch
        h, w = (int(v) for v in rng.integers(size // 5, size // 2, size=2))
        y, x = (int(v) for v in rng.integers(0, size - max(h, w), size=2))
        out[y : y + h, x : x + w] = rng.uniform(0, 255, size=3)
    out = out * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)  # exposure
    shift = rng.uniform(-4, 4, size=2)
    out = cv2.warpAffine(
        out, np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32), (size, size), borderMode=cv2.BORDER_REFLECT
    )
    return np.clip(out, 0, 255).astype(np.uint8), factor


@dataclass
class SetData:
    """Embeddings and cues of every variant of every image of some people."""

    embeddings: np.ndarray  # (N, V, D)
    cues: np.ndarray  # (N, V, C)
    person_of: np.ndarray  # (N,) person name of each image
    images_of: dict[str, np.ndarray]  # person -> image indices

    @property
    def variants(self) -> int:
        return self.embeddings.shape[1]


def embed_variants(
    cache: FaceCache,
    checkpoint: Checkpoint,
    people: set[str],
    variants: int = 3,
    seed: int = 0,
    flip: bool | None = None,
) -> SetData:
    """Embed `variants` versions (clean + degraded) of every cached image of `people`."""
    rng = np.random.default_rng(seed)
    rows = [i for i, r in enumerate(cache.rows) if r.person in people and r.status != "unreadable"]
    embedder = Embedder(checkpoint, batch_size=256, flip=flip)
    emb, cues = [], []
    for v in range(variants):
        crops, cue_rows = [], []
        for i in rows:
            crop = np.asarray(cache.faces[i])
            factor = 1.0
            if v > 0:
                crop, factor = degrade(crop, rng)
            crops.append(crop)
            cue_rows.append(quality_cues(crop, cache.rows[i].score, LFW_FACE_HEIGHT * factor))
        # the clean variant is the cached face itself: a hybrid reads it from its feature cache
        emb.append(embed_cached(embedder, cache, rows) if v == 0 else embedder.embed_crops(np.stack(crops)))
        cues.append(np.stack(cue_rows))
    person_of = np.array([cache.rows[i].person for i in rows])
    images_of: dict[str, list[int]] = defaultdict(list)
    for j, p in enumerate(person_of):
        images_of[p].append(j)
    return SetData(np.stack(emb, 1), np.stack(cues, 1), person_of, {p: np.array(v) for p, v in images_of.items()})


def draw_set(
    data: SetData, images: np.ndarray, size: int, rng: np.random.Generator, clean_share: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """A set of `size` items from `images` (random order, a random variant of each, clean with p=clean_share)."""
    chosen = rng.choice(images, size=size, replace=len(images) < size)
    variant = (
        np.where(rng.random(size) < clean_share, 0, rng.integers(1, data.variants, size=size))
        if data.variants > 1
        else np.zeros(size, int)
    )
    return data.embeddings[chosen, variant], data.cues[chosen, variant]


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
    a: list[tuple[np.ndarray, np.ndarray]] = []
    b: list[tuple[np.ndarray, np.ndarray]] = []
    for p in people:
        images = rng.permutation(data.images_of[p])
        half = len(images) // 2
        for part, out in ((images[:half], a), (images[half:], b)):
            size = int(rng.integers(1, min(MAX_SET, len(part)) + 1))
            chosen = rng.choice(part, size=size, replace=False)
            out.append(draw_set(data, chosen, size, rng, clean_share))
    return a, b


def evaluate_sets(
    cache: FaceCache,
    backbone: str | Path,
    aggregator: str | Path,
    folds: tuple[int, ...] = (0, 1, 2, 3, 4),
    rounds: int = 3,
    seed: int = 0,
) -> dict:
    """TAR@FAR 1e-2/1e-3 and rank-1 per condition and method, on people both models left out."""
    checkpoint = load_checkpoint(backbone)
    agg, agg_meta = load_aggregator(aggregator, checkpoint.model_id)
    for name, meta in (("backbone", checkpoint.meta), ("aggregator", agg_meta)):
        missing = set(folds) - set(meta.get("exclude_folds", []))
        if missing:
            raise DisjointnessError(
                f"the {name} was trained on the people of folds {sorted(missing)}; evaluate on folds it left out"
            )
    counts = cache.images_per_person()
    people = sorted(p for p in held_out_people(cache.meta["data"], tuple(folds)) if counts.get(p, 0) >= MIN_IMAGES)
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
            f"| {r['condition']} | {r['method']} | {100 * r['tar_at_far_1e-2']:.2f}% | "
            f"{100 * r['tar_at_far_1e-3']:.2f}% | {100 * r['rank1']:.2f}% |"
        )
    return "\n".join(lines) + "\n"


def sets_report(cache: FaceCache, model: Path, aggregator: Path, folds: tuple[int, ...], rounds: int) -> Report:
    """`evaluate_sets` as a report (sets.json, sets.md)."""
    report = evaluate_sets(cache, model, aggregator, folds, rounds)
    return Report("sets", report, markdown(report))
