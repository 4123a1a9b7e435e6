"""Pretrained face embedders (dlib via face_recognition, FaceNet): distillation teachers and evaluation peers.

Each embeds the labelled face of a photo given the detector box our cache recorded for it, so a
peer is scored, and a teacher learnt from, on the same face rnnface sees. Embeddings of a whole
face cache are computed once (in parallel, on the original photos) and stored beside the cache
as `teacher-<name>.npz`.
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rnnface.data.prepare import FaceCache, FaceRow
from rnnface.errors import ImageError, ModelError
from rnnface.io import load_image
from rnnface.registry import Registry


class PretrainedEmbedder(ABC):
    name: str
    dim: int

    @abstractmethod
    def embed(self, image: np.ndarray, box: np.ndarray | None) -> np.ndarray | None:
        """Unit embedding of the face at `box` (our detector's x1, y1, x2, y2; None if it found none), or None."""


_EMBEDDERS: Registry[PretrainedEmbedder] = Registry("pretrained embedder")


def create_pretrained(name: str) -> PretrainedEmbedder:
    return _EMBEDDERS.get(name)()


def list_pretrained() -> list[str]:
    return _EMBEDDERS.names()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@_EMBEDDERS.register("face_recognition")
class DlibEmbedder(PretrainedEmbedder):
    """dlib's ResNet-29 128-d embedder via face_recognition: its HOG face nearest our box, else our MTCNN box.

    The MTCNN fallback covers the photos HOG misses, so a HOG miss is not scored as a rejection.
    """

    name, dim = "face_recognition", 128

    def __init__(self) -> None:
        try:
            import face_recognition
        except ImportError as exc:
            raise ModelError(
                "the face_recognition embedder needs the optional extra: pip install 'rnnface[teacher]' "
                f"(dlib-bin, face_recognition_models, face_recognition --no-deps, setuptools<81): {exc}"
            ) from None
        self._fr = face_recognition

    def embed(self, image: np.ndarray, box: np.ndarray | None) -> np.ndarray | None:
        found = [np.array([l, t, r, b], float) for t, r, b, l in self._fr.face_locations(image)]
        if box is not None:
            best = max(found, key=lambda f: _iou(f, box), default=None)
            chosen = best if best is not None and _iou(best, box) >= 0.3 else np.asarray(box, float)
        elif found:
            h, w = image.shape[:2]
            chosen = min(found, key=lambda f: ((f[0] + f[2]) / 2 - w / 2) ** 2 + ((f[1] + f[3]) / 2 - h / 2) ** 2)
        else:
            return None
        h, w = image.shape[:2]
        left, top = int(max(0, round(chosen[0]))), int(max(0, round(chosen[1])))
        right, bottom = int(min(w, round(chosen[2]))), int(min(h, round(chosen[3])))
        vec = self._fr.face_encodings(image, [(top, right, bottom, left)])[0]
        return (vec / np.linalg.norm(vec)).astype(np.float32)


@_EMBEDDERS.register("facenet")
class FaceNetEmbedder(PretrainedEmbedder):
    """FaceNet's own 512-d embedding at its trained preprocessing (see rnnface.pretrained.facenet)."""

    name, dim = "facenet", 512

    def __init__(self) -> None:
        from rnnface.pretrained.facenet import FaceNet

        self._net = FaceNet(("embedding",))

    def embed(self, image: np.ndarray, box: np.ndarray | None) -> np.ndarray | None:
        if box is None:
            return None
        crop = self._net.crop.crop(image, np.asarray(box, float), None)
        return self._net(crop.image[None])["embedding"][0]


_worker: tuple[PretrainedEmbedder, Path] | None = None


def _init(name: str, root: Path) -> None:
    global _worker
    import cv2

    cv2.setNumThreads(1)
    _worker = (create_pretrained(name), root)


def _embed_row(row: FaceRow) -> np.ndarray | None:
    embedder, root = _worker
    try:
        return embedder.embed(load_image(root / row.path), None if row.box is None else np.array(row.box))
    except ImageError:
        return None


def pretrained_embeddings(cache: FaceCache, name: str, workers: int | None = None, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) embeddings of every cached face by the pretrained embedder `name`, and an (N,) validity mask.

    Computed once, then read from `teacher-<name>.npz`. FaceNet on a FaceNet-cropped cache reads
    view 0 of the front-end feature cache when one exists: the same numbers, already computed.
    """
    path = cache.root / f"teacher-{name}.npz"
    if path.is_file():
        data = np.load(path)
        if len(data["valid"]) == len(cache.rows):
            return data["embeddings"], data["valid"]
    valid_rows = np.array([r.status != "unreadable" for r in cache.rows])
    from rnnface.pretrained.features import FrontendFeatures

    if name == "facenet" and FrontendFeatures.complete(cache):
        feats = FrontendFeatures.open(cache)
        if "embedding" in feats.arrays:
            valid = valid_rows & np.array([r.box is not None for r in cache.rows])
            return _store(path, np.asarray(feats.arrays["embedding"][:, 0]), valid, name)
    create_pretrained(name)  # fail early, in this process, if the extra is missing
    context = multiprocessing.get_context("spawn")
    root = Path(cache.meta["data"])
    with ProcessPoolExecutor(workers or os.cpu_count() or 1, mp_context=context, initializer=_init, initargs=(name, root)) as pool:
        results = list(tqdm(pool.map(_embed_row, cache.rows, chunksize=16), total=len(cache.rows), desc=name, disable=not progress))
    dim = next((len(r) for r in results if r is not None), 1)
    valid = np.array([r is not None for r in results])
    embeddings = np.stack([r if r is not None else np.zeros(dim, np.float32) for r in results])
    return _store(path, embeddings, valid, name)


def _store(path: Path, embeddings: np.ndarray, valid: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    embeddings = np.where(valid[:, None], embeddings, 0).astype(np.float32)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, embeddings=embeddings, valid=valid, teacher=name)
    os.replace(tmp, path)
    return embeddings, valid
