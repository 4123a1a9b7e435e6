"""Where evaluation embeddings come from: identity-disjoint checkpoints (each for the folds it left
out) or a pretrained peer (for every fold). Protocols score pairs and run 1:N through this one
interface, so rnnface and its peers are measured by the same code on the same faces."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rnnface.lab.data.features import FrontendFeatures
from rnnface.lab.data.prepare import FaceCache
from rnnface.models import Checkpoint
from rnnface.recognition.embedder import Embedder
from rnnface.similarity import normalize


def embed_cached(embedder: Embedder, cache: FaceCache, rows: list[int], features: bool = True) -> np.ndarray:
    """Embeddings of cached faces; with `features`, the model's head reads its front-end's feature cache when there
    is one (view 0 is the crop as inference sees it, view 1 its mirror) instead of running the front-end again."""
    frontend = embedder.checkpoint.frontend
    if not features or not FrontendFeatures.complete(cache, frontend.name):
        return embedder.embed_crops(np.asarray(cache.faces[rows]))
    feats = FrontendFeatures.open(cache, frontend.name)
    names = embedder.model.inputs
    out = []
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        emb = embedder.embed_features({n: feats.arrays[n][chunk, 0] for n in names})
        if embedder.flip:
            emb = emb + embedder.embed_features({n: feats.arrays[n][chunk, 1] for n in names})
        out.append(normalize(emb.float().numpy()))
    return np.concatenate(out) if out else np.zeros((0, embedder.checkpoint.embed_dim), np.float32)


@dataclass
class EmbeddingSource:
    """Unit embeddings of cache rows, for the pairs of `folds`; `valid` False where no face was found."""

    name: str
    folds: set[int]
    model_id: str
    train_people: set[str] = field(default_factory=set)
    _embeddings: np.ndarray | None = None  # (N, D) for every cache row, when precomputed (peers)
    _valid: np.ndarray | None = None
    _embedder: Embedder | None = None
    _cache: FaceCache | None = None
    _features: bool = True  # read the front-end's feature cache (float32 FaceNet) where there is one
    _memo: dict[int, np.ndarray] = field(default_factory=dict)

    def embed(self, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(len(rows), D) embeddings and a (len(rows),) validity mask; each row is embedded once."""
        if self._embeddings is not None:
            assert self._valid is not None  # precomputed embeddings come with their mask
            return self._embeddings[rows], self._valid[rows]
        assert self._embedder is not None and self._cache is not None  # a model's source embeds on demand
        todo = sorted({r for r in rows if r not in self._memo})
        if todo:
            for r, e in zip(todo, embed_cached(self._embedder, self._cache, todo, self._features)):
                self._memo[r] = e
        valid = np.array([self._cache.rows[r].status != "unreadable" for r in rows], bool)
        return np.stack([self._memo[r] for r in rows]), valid


def model_source(
    name: str, ckpt: Checkpoint, folds: set[int], cache: FaceCache, flip: bool, runtime: str | None = None
) -> EmbeddingSource:
    """A checkpoint's embeddings; with a `runtime`, every crop runs through the whole model in it (no feature
    cache), as `embed --runtime` would."""
    return EmbeddingSource(
        Path(name).parent.name or name,
        folds,
        ckpt.model_id,
        set(ckpt.meta.get("train_people", [])) | set(ckpt.meta.get("train_keys", [])),
        _embedder=Embedder(ckpt, batch_size=128, flip=flip, runtime=runtime or "torch"),
        _cache=cache,
        _features=runtime is None,
    )


def peer_sources(cache: FaceCache, peer: str, fold_groups: list[set[int]] | None = None) -> list[EmbeddingSource]:
    """A pretrained peer, split into the same fold groups as the models it is compared with (so its
    1:N galleries are the same size), or one source for all folds."""
    whole = peer_source(cache, peer)
    if not fold_groups or len(fold_groups) == 1:
        return [whole]
    return [replace(whole, name=f"{peer}[{min(g)}-{max(g)}]", folds=set(g), _memo={}) for g in fold_groups]


def peer_source(cache: FaceCache, peer: str) -> EmbeddingSource:
    """A pretrained peer for all folds: its raw embeddings, or for an ensemble its fused target vectors."""
    from rnnface.lab.data.teachers import ENSEMBLES, pretrained_embeddings, teacher_targets

    if peer in ENSEMBLES:
        emb, valid = teacher_targets(cache, peer, np.arange(len(cache.rows)))
        emb = normalize(emb)
    else:
        emb, valid = pretrained_embeddings(cache, peer)
    return EmbeddingSource(peer, set(range(10)), f"peer:{peer}", _embeddings=emb, _valid=valid)
