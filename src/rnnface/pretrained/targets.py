"""Distillation targets from pretrained embedders: one model, or an ensemble of several.

Each teacher's vectors are centred on the training photos (dlib's share a large common component:
different people still score ~0.85 cosine) and renormalised. An ensemble concatenates its members,
each scaled by 1 / sqrt(std of its cosines over training-photo pairs): the dot product of two
targets is then the sum of the members' cosines divided by their spreads, the z-score fusion that
outscores either member, and every target has the same norm. Labels are never used.
"""

from __future__ import annotations

import numpy as np

from rnnface.data.prepare import FaceCache
from rnnface.pretrained.embedders import pretrained_embeddings

#: Teachers made of several pretrained embedders.
ENSEMBLES: dict[str, tuple[str, ...]] = {"ensemble": ("facenet", "face_recognition")}


def centred(embeddings: np.ndarray, valid: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
    """Subtract the mean of the valid `fit` rows (default: all valid rows) and renormalise; invalid rows are 0."""
    mask = valid.copy()
    if fit is not None:
        mask &= np.isin(np.arange(len(valid)), fit)
    out = embeddings - embeddings[mask].mean(axis=0)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    out[~valid] = 0.0
    return out.astype(np.float32)


def cosine_spread(unit: np.ndarray, rows: np.ndarray, pairs: int = 20000, seed: int = 0) -> float:
    """Standard deviation of the cosine between random pairs of `rows`."""
    rng = np.random.default_rng(seed)
    a, b = rng.choice(rows, pairs), rng.choice(rows, pairs)
    return float(np.einsum("ij,ij->i", unit[a], unit[b]).std())


def teacher_targets(cache: FaceCache, teacher: str, fit: np.ndarray, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) targets for every cache row and an (N,) validity mask; statistics from the `fit` rows only."""
    members = ENSEMBLES.get(teacher, (teacher,))
    parts, valid = [], np.ones(len(cache.rows), bool)
    for name in members:
        emb, ok = pretrained_embeddings(cache, name, progress=progress)
        parts.append(centred(emb, ok, fit))
        valid &= ok
    if len(parts) > 1:
        rows = fit[valid[fit]]
        parts = [p / np.sqrt(cosine_spread(p, rows)) for p in parts]
    targets = np.concatenate(parts, axis=1)
    targets[~valid] = 0.0
    return targets.astype(np.float32), valid
