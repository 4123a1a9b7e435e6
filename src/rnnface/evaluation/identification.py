"""LFW 1:N identification (open gallery of distractors), scored only by identity-disjoint models.

For each model and the folds it left out: the gallery holds one image of every person appearing in
those folds' pairs (the first in file order); the probes are all their other images. Everyone in
those folds with a single image is in the gallery too, as a distractor with no probe. Neither a
probe's person nor any gallery person was in that model's training set (checked). Rank-k counts
the probes whose person is among the k most similar gallery entries.

Everything runs through the real gallery code path: the gallery images are enrolled into a fresh
SQLite + FAISS gallery per model, and probes are searched in it. Open set: each probe is also
treated as a stranger by setting its own person aside; it is rejected when its best other match is
below the threshold (calibrated at FAR 1e-3 on the pairs). DIR is the share of probes identified at
rank 1 *and* above that threshold (the detection-and-identification rate of open-set search).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnface.data.lfw import read_pairs
from rnnface.data.prepare import FaceCache
from rnnface.evaluation.lfw import DisjointnessError, load_assigned
from rnnface.gallery import FaceRecord, Match, open_gallery
from rnnface.recognition.embedder import Embedder


@dataclass(frozen=True)
class IdentificationReport:
    rank1: float
    rank5: float
    probes: int
    gallery_sizes: dict[str, int]  # per model: people in its gallery (with distractors)
    threshold: float | None = None
    strangers_rejected: float | None = None  # open set: probes rejected once their own person is set aside
    dir_at_threshold: float | None = None  # rank-1 hit and above the threshold

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def rank_hits(results: list[list[Match]], truth: list[str], ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """How many probes have their identity among their top-k ranked people, for each k."""
    hit_rank = [next((r for r, m in enumerate(row) if m.person == t), max(ks)) for row, t in zip(results, truth)]
    return {k: sum(r < k for r in hit_rank) for k in ks}


def stranger_scores(results: list[list[Match]], truth: list[str]) -> np.ndarray:
    """Each probe's best similarity to someone else: its score were its own person not enrolled."""
    return np.array([next((m.similarity for m in row if m.person != t), -1.0) for row, t in zip(results, truth)])


def identify_lfw(
    cache: FaceCache,
    checkpoints: list[str | Path],
    pairs_path: str | Path,
    flip: bool = True,
    folds: set[int] | None = None,
    threshold: float | None = None,
) -> IdentificationReport:
    pairs = [p for p in read_pairs(pairs_path) if folds is None or p.fold in folds]
    loaded, assignment = load_assigned(checkpoints, pairs)
    images_of = defaultdict(list)
    for i, row in enumerate(cache.rows):
        if row.status != "unreadable":
            images_of[row.person].append(i)
    hits, probes, sizes, strangers, dir_hits = {1: 0, 5: 0}, 0, {}, [], 0
    for name, ckpt in loaded.items():
        folds = {f for f, owner in assignment.items() if owner == name}
        people = sorted({path.split("/")[0] for p in pairs if p.fold in folds for path in (p.a, p.b)})
        if not people:
            continue
        seen = set(ckpt.meta.get("train_people", [])) & set(people)
        if seen:
            raise DisjointnessError(f"{name} was trained on {len(seen)} gallery people, e.g. {sorted(seen)[0]}")
        gallery_rows = [images_of[p][0] for p in people if images_of[p]]
        gallery_ids = np.array([cache.rows[r].person for r in gallery_rows])
        probe_rows = [r for p in people for r in images_of[p][1:]]
        probe_ids = np.array([cache.rows[r].person for r in probe_rows])
        embedder = Embedder(ckpt, batch_size=128, flip=flip)
        g = embedder.embed_crops(np.asarray(cache.faces[gallery_rows]))
        q = embedder.embed_crops(np.asarray(cache.faces[probe_rows]))
        with tempfile.TemporaryDirectory(prefix="rnnface-1n-") as tmp, open_gallery(Path(tmp) / "lfw.db", index="flat") as gallery:
            model_id = ckpt.model_id
            gallery.enroll_many([(str(pid), [FaceRecord(e, cache.rows[r].path)]) for pid, e, r in zip(gallery_ids, g, gallery_rows)], model_id)
            results = gallery.search(q, top_k=5)
        truth = [str(t) for t in probe_ids]
        for k, n in rank_hits(results, truth).items():
            hits[k] += n
        if threshold is not None:
            strangers.append(stranger_scores(results, truth))
            dir_hits += sum(bool(row) and row[0].person == t and row[0].similarity >= threshold for row, t in zip(results, truth))
        probes += len(probe_rows)
        sizes[Path(name).parent.name or name] = len(gallery_rows)
    if threshold is None:
        return IdentificationReport(hits[1] / probes, hits[5] / probes, probes, sizes)
    rejected = float(np.mean(np.concatenate(strangers) < threshold))
    return IdentificationReport(hits[1] / probes, hits[5] / probes, probes, sizes, threshold, rejected, dir_hits / probes)
