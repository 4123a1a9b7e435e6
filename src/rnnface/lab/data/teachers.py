"""Pretrained embeddings of a whole face cache, and the distillation targets made from them.

Each pretrained embedder (see `rnnface.pretrained.embedders`) embeds every cached face once, in
parallel on the original photos at the box the cache recorded, stored beside the cache as
`teacher-<name>.npz`. Targets: each teacher's vectors are centred on the training photos (dlib's
share a large common component: different people still score ~0.85 cosine) and renormalised. An
ensemble concatenates its members, each scaled by 1 / sqrt(std of its cosines over training-photo
pairs): the dot product of two targets is then the sum of the members' cosines divided by their
spreads, the z-score fusion that outscores either member, and every target has the same norm.
Labels are never used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnface.errors import ImageError
from rnnface.io import load_image
from rnnface.io.paths import atomic_output
from rnnface.lab.data.features import FrontendFeatures
from rnnface.lab.data.prepare import FaceCache, FaceRow
from rnnface.lab.data.workers import worker_pool
from rnnface.pretrained.embedders import PretrainedEmbedder, create_pretrained, pretrained_class
from rnnface.progress import progress_bar
from rnnface.similarity import normalize

#: Teachers made of several pretrained embedders.
ENSEMBLES: dict[str, tuple[str, ...]] = {"ensemble": ("facenet", "face_recognition")}

_worker: tuple[PretrainedEmbedder, Path] | None = None


def _init(name: str, root: Path) -> None:
    global _worker
    _worker = (create_pretrained(name), root)


def _embed_row(row: FaceRow) -> np.ndarray | None:
    assert _worker is not None  # set by each worker's initializer
    embedder, root = _worker
    try:
        return embedder.embed(load_image(root / row.path), None if row.box is None else np.array(row.box))
    except ImageError:
        return None


def pretrained_embeddings(
    cache: FaceCache, name: str, workers: int | None = None, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) embeddings of every cached face by the pretrained embedder `name`, and an (N,) validity mask.

    Computed once, then read from `teacher-<name>.npz`. An embedder that is a front-end of its own (FaceNet,
    MobileFaceNet) reads the cache's feature cache of that front-end when one exists (view 0, and view 1 the mirror
    for a flip peer): the same numbers, already computed.
    """
    path = cache.root / f"teacher-{name}.npz"
    if path.is_file():
        data = np.load(path)
        if len(data["valid"]) == len(cache.rows):
            return data["embeddings"], data["valid"]
    valid_rows = np.array([r.status != "unreadable" for r in cache.rows])
    kind = pretrained_class(name)
    if kind.frontend is not None and FrontendFeatures.complete(cache, kind.frontend):
        feats = FrontendFeatures.open(cache, kind.frontend)
        if "embedding" in feats.arrays and feats.views >= kind.views:
            valid = valid_rows & np.array([r.box is not None for r in cache.rows])
            summed = np.asarray(feats.arrays["embedding"][:, : kind.views], np.float32).sum(axis=1)
            return _store(path, normalize(summed), valid, name)
    create_pretrained(name)  # fail early, in this process, if the extra is missing
    root = Path(cache.meta["data"])
    with worker_pool(workers, _init, (name, root)) as pool:
        rows = pool.map(_embed_row, cache.rows, chunksize=16)
        results = list(progress_bar(rows, enabled=progress, total=len(cache.rows), desc=name))
    dim = next((len(r) for r in results if r is not None), 1)
    valid = np.array([r is not None for r in results])
    embeddings = np.stack([r if r is not None else np.zeros(dim, np.float32) for r in results])
    return _store(path, embeddings, valid, name)


def _store(path: Path, embeddings: np.ndarray, valid: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    embeddings = np.where(valid[:, None], embeddings, 0).astype(np.float32)
    with atomic_output(path, "teacher embeddings") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, embeddings=embeddings, valid=valid, teacher=name)
    return embeddings, valid


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


def teacher_targets(
    cache: FaceCache, teacher: str, fit: np.ndarray, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
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
