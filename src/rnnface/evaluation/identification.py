"""LFW 1:N identification (open gallery of distractors), scored only by identity-disjoint models.

For each model and the folds it left out: the gallery holds one image of every person appearing in
those folds' pairs (the first in file order); the probes are all their other images. Everyone in
those folds with a single image is in the gallery too, as a distractor with no probe. Neither a
probe's person nor any gallery person was in that model's training set (checked). Rank-k counts
the probes whose person is among the k most similar gallery entries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnface.data.lfw import read_pairs
from rnnface.data.prepare import FaceCache
from rnnface.evaluation.lfw import DisjointnessError, load_assigned
from rnnface.recognition.embedder import Embedder


@dataclass(frozen=True)
class IdentificationReport:
    rank1: float
    rank5: float
    probes: int
    gallery_sizes: dict[str, int]  # per model: people in its gallery (with distractors)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def rank_hits(probe_emb: np.ndarray, probe_ids: np.ndarray, gallery_emb: np.ndarray, gallery_ids: np.ndarray, ks=(1, 5)) -> dict[int, int]:
    """How many probes have their identity among the top-k gallery entries, for each k."""
    sims = probe_emb @ gallery_emb.T
    top = np.argsort(-sims, axis=1)[:, : max(ks)]
    hit_rank = np.array([next((r for r, g in enumerate(gallery_ids[row]) if g == pid), max(ks)) for row, pid in zip(top, probe_ids)])
    return {k: int((hit_rank < k).sum()) for k in ks}


def identify_lfw(
    cache: FaceCache, checkpoints: list[str | Path], pairs_path: str | Path, flip: bool = True, folds: set[int] | None = None
) -> IdentificationReport:
    pairs = [p for p in read_pairs(pairs_path) if folds is None or p.fold in folds]
    loaded, assignment = load_assigned(checkpoints, pairs)
    images_of = defaultdict(list)
    for i, row in enumerate(cache.rows):
        if row.status != "unreadable":
            images_of[row.person].append(i)
    hits, probes, sizes = {1: 0, 5: 0}, 0, {}
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
        for k, n in rank_hits(q, probe_ids, g, gallery_ids).items():
            hits[k] += n
        probes += len(probe_rows)
        sizes[Path(name).parent.name or name] = len(gallery_rows)
    return IdentificationReport(hits[1] / probes, hits[5] / probes, probes, sizes)
