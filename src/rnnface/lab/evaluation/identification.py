"""LFW 1:N identification (open gallery of distractors), scored only by identity-disjoint models.

For each model and the folds it left out: the gallery holds one image of every person appearing in
those folds' pairs (the first in file order); the probes are all their other images. Everyone in
those folds with a single image is in the gallery too, as a distractor with no probe. Neither a
probe's person nor any gallery person was in that model's training set (checked). Rank-k counts
the probes whose person is among the k most similar gallery entries.

Everything runs through the real gallery code path: the gallery images are enrolled into a fresh
SQLite + FAISS gallery per model, and probes are searched in it. Open set: each probe is also
treated as a stranger by setting its own person aside; it is rejected when its best other match is
below the threshold (the one given, or the one at the false-accept rate `far` over every cross-person pair
of the evaluated people). DIR is the share of probes identified at rank 1 *and* above that threshold (the
detection-and-identification rate of open-set search).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnface.gallery import FaceRecord, Match, open_gallery
from rnnface.lab.data.lfw import Pair
from rnnface.lab.data.prepare import FaceCache
from rnnface.lab.evaluation.lfw import DisjointnessError
from rnnface.lab.evaluation.sources import EmbeddingSource
from rnnface.operating import SEARCH_FPIR, Calibration, lowest_threshold


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold set at a false-accept rate over every cross-person pair of the evaluated people."""

    far: float
    threshold: float
    tar: float  # share of same-person pairs (all of them, not only View 2's) accepted at the threshold
    impostor_pairs: int
    genuine_pairs: int


@dataclass(frozen=True)
class IdentificationReport:
    rank1: float
    rank5: float
    probes: int
    gallery_sizes: dict[str, int]  # per model: people in its gallery (with distractors)
    threshold: float | None = None
    strangers_rejected: float | None = None  # open set: probes rejected once their own person is set aside
    dir_at_threshold: float | None = None  # rank-1 hit and above the threshold
    operating_point: OperatingPoint | None = None
    calibration: Calibration | None = None  # the false-accept curve of these cross-person pairs
    search: list[dict] | None = None  # per gallery: the threshold set for FPIR 1e-2 at its size, and what it gave

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "calibration"}
        out["operating_point"] = self.operating_point and self.operating_point.__dict__.copy()
        return out


def cross_person(groups: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(impostor, genuine) cosines of every pair of images within each group of (embeddings, person labels)."""
    impostor, genuine = [], []
    for emb, labels in groups:
        upper = np.triu_indices(len(emb), k=1)
        scores = (emb @ emb.T)[upper].astype(np.float32)
        same = labels[upper[0]] == labels[upper[1]]
        impostor.append(scores[~same])
        genuine.append(scores[same])
    return np.concatenate(impostor), np.concatenate(genuine)


def operating_point(groups: list[tuple[np.ndarray, np.ndarray]], far: float) -> OperatingPoint:
    """The threshold at `far` over all cross-person pairs within each group of (embeddings, person labels)."""
    impostor, genuine = cross_person(groups)
    return _point(np.sort(impostor)[::-1], genuine, far)


def _point(impostor_desc: np.ndarray, genuine: np.ndarray, far: float) -> OperatingPoint:
    threshold = lowest_threshold(impostor_desc, far)  # at most a `far` share of impostors at or above it
    return OperatingPoint(far, threshold, float(np.mean(genuine >= threshold)), len(impostor_desc), len(genuine))


def rank_hits(results: list[list[Match]], truth: list[str], ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """How many probes have their identity among their top-k ranked people, for each k."""
    hit_rank = [next((r for r, m in enumerate(row) if m.person == t), max(ks)) for row, t in zip(results, truth)]
    return {k: sum(r < k for r in hit_rank) for k in ks}


def stranger_scores(results: list[list[Match]], truth: list[str]) -> np.ndarray:
    """Each probe's best similarity to someone else: its score were its own person not enrolled."""
    return np.array([next((m.similarity for m in row if m.person != t), -1.0) for row, t in zip(results, truth)])


@dataclass
class GalleryGroup:
    """The people one source scores: its gallery rows (one image a person), its probe rows (their other images),
    the embeddings of both in that order, which embedded (a peer may find no face) and each row's person."""

    source: EmbeddingSource
    gallery_rows: list[int]
    probe_rows: list[int]
    emb: np.ndarray
    valid: np.ndarray
    labels: np.ndarray

    @property
    def probes(self) -> np.ndarray:
        return self.labels[len(self.gallery_rows) :]


def gallery_groups(cache: FaceCache, sources: list[EmbeddingSource], pairs: list[Pair]) -> list[GalleryGroup]:
    """One group per source: the people of the folds it covers first (a model that never saw them, or a peer),
    embedded by it; DisjointnessError when it was trained on any of them."""
    images_of: defaultdict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(cache.rows):
        if row.status != "unreadable":
            images_of[row.person].append(i)
    groups: list[GalleryGroup] = []
    done: set[int] = set()
    for source in sources:
        folds = source.folds - done
        done |= folds
        people = sorted({path.split("/")[0] for p in pairs if p.fold in folds for path in (p.a, p.b)})
        if not people:
            continue
        seen = source.train_people & set(people)
        if seen:
            raise DisjointnessError(f"{source.name} was trained on {len(seen)} gallery people, e.g. {sorted(seen)[0]}")
        gallery_rows = [images_of[p][0] for p in people if images_of[p]]
        probe_rows = [r for p in people for r in images_of[p][1:]]
        emb, valid = source.embed(gallery_rows + probe_rows)
        labels = np.array([cache.rows[r].person for r in gallery_rows + probe_rows])
        groups.append(GalleryGroup(source, gallery_rows, probe_rows, emb, valid, labels))
    return groups


def search_group(cache: FaceCache, group: GalleryGroup) -> list[list[Match]]:
    """Each probe's top-5 people, searched through the real gallery code path: the group's gallery images
    enrolled into a fresh SQLite + FAISS gallery. A photo where a peer found no face is neither enrolled nor
    found: its probe is a miss (and, as a stranger, rejected)."""
    n = len(group.gallery_rows)
    with (
        tempfile.TemporaryDirectory(prefix="rnnface-1n-") as tmp,
        open_gallery(Path(tmp) / "lfw.db", index="flat") as gallery,
    ):
        entries = zip(group.labels[:n], group.emb[:n], group.gallery_rows, group.valid[:n])
        gallery.enroll_many(
            [(str(pid), [FaceRecord(e, cache.rows[r].path)]) for pid, e, r, ok in entries if ok],
            group.source.model_id,
        )
        found = iter(gallery.search(group.emb[n:][group.valid[n:]], top_k=5))
        return [next(found) if ok else [] for ok in group.valid[n:]]


def identified(results: list[list[Match]], truth: list[str], threshold: float) -> np.ndarray:
    """Whether each probe's first match is its own person and at or above `threshold` (DIR's hits)."""
    return np.array([bool(r) and r[0].person == t and r[0].similarity >= threshold for r, t in zip(results, truth)])


def identify_lfw(
    cache: FaceCache,
    sources: list[EmbeddingSource],
    pairs: list[Pair],
    threshold: float | None = None,
    far: float | None = None,
) -> IdentificationReport:
    """1:N over the people of `pairs`, each fold group by the source covering it (`gallery_groups`).

    Open set at `threshold`, or, with `far`, at the threshold of that false-accept rate over every
    cross-person pair of the evaluated people (millions of pairs, so rates down to 1e-5 are measured).
    """
    groups = gallery_groups(cache, sources, pairs)
    point = calibration = None
    if far is not None:
        impostor, genuine = cross_person([(g.emb[g.valid], g.labels[g.valid]) for g in groups])
        calibration = Calibration.from_scores(impostor, genuine, f"LFW View 2 people, {len(groups)} gallery group(s)")
        point = _point(np.sort(impostor)[::-1], genuine, far)
        threshold = point.threshold
    hits, strangers, found, search = {1: 0, 5: 0}, [], [], []
    for g in groups:
        results = search_group(cache, g)
        truth = [str(t) for t in g.probes]
        for k, n in rank_hits(results, truth).items():
            hits[k] += n
        if calibration is not None:  # a search threshold set for this gallery's size: what FPIR it really gives
            aimed = calibration.search(len(g.gallery_rows), SEARCH_FPIR)
            search.append(
                {
                    "gallery": g.source.name,
                    "entries": len(g.gallery_rows),
                    "threshold": aimed.value,
                    "fpir_aimed": SEARCH_FPIR,
                    "fpir_measured": float(np.mean(stranger_scores(results, truth) >= aimed.value)),
                    "identified": float(np.mean(identified(results, truth, aimed.value))),
                }
            )
        if threshold is not None:
            strangers.append(stranger_scores(results, truth))
            found.append(identified(results, truth, threshold))
    probes = sum(len(g.probe_rows) for g in groups)
    sizes = {g.source.name: len(g.gallery_rows) for g in groups}
    if threshold is None:
        return IdentificationReport(hits[1] / probes, hits[5] / probes, probes, sizes)
    return IdentificationReport(
        hits[1] / probes,
        hits[5] / probes,
        probes,
        sizes,
        threshold,
        float(np.mean(np.concatenate(strangers) < threshold)),
        float(np.concatenate(found).sum() / probes),
        point,
        calibration,
        search or None,
    )
