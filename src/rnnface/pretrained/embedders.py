"""Pretrained face embedders (dlib via face_recognition, FaceNet, MobileFaceNet): distillation teachers and
evaluation peers.

Each embeds the labelled face of a photo given the detector box our cache recorded for it, so a
peer is scored, and a teacher learnt from, on the same face rnnface sees (whole face caches are
embedded by `rnnface.lab.data.teachers`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import cast

import numpy as np

from rnnface.detection import box_iou
from rnnface.errors import ModelError
from rnnface.registry import Registry
from rnnface.similarity import normalize


class PretrainedEmbedder(ABC):
    """A pretrained model that embeds the face at a given box of a photo, with its own preprocessing."""

    name: str
    dim: int
    #: The front-end whose feature cache holds this embedder's vectors (view 0 the crop, view 1 its mirror), if any,
    #: and how many of those views it sums.
    frontend: str | None = None
    views: int = 1

    @abstractmethod
    def embed(self, image: np.ndarray, box: np.ndarray | None) -> np.ndarray | None:
        """Unit embedding of the face at `box` (our detector's x1, y1, x2, y2; None if it found none), or None."""


_EMBEDDERS: Registry[PretrainedEmbedder] = Registry("pretrained embedder")


def pretrained_class(name: str) -> type[PretrainedEmbedder]:
    """The class registered as `name` (its front-end and views, without loading it)."""
    return cast(type[PretrainedEmbedder], _EMBEDDERS.get(name))  # the registered factories are the classes


def create_pretrained(name: str) -> PretrainedEmbedder:
    """The pretrained embedder registered as `name` (ModelError when its optional extra is missing)."""
    return _EMBEDDERS.get(name)()


def list_pretrained() -> list[str]:
    """Names of the registered pretrained embedders."""
    return _EMBEDDERS.names()


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

    def _hog(self, image: np.ndarray) -> list[np.ndarray]:
        """face_recognition's HOG faces as (x1, y1, x2, y2) boxes."""
        return [np.array([lf, tp, rt, bt], float) for tp, rt, bt, lf in self._fr.face_locations(image)]

    def embed(self, image: np.ndarray, box: np.ndarray | None) -> np.ndarray | None:
        found = self._hog(image)
        if box is not None:
            best = max(found, key=lambda f: box_iou(f, box), default=None)
            chosen = best if best is not None and box_iou(best, box) >= 0.3 else np.asarray(box, float)
        elif found:
            h, w = image.shape[:2]
            chosen = min(found, key=lambda f: ((f[0] + f[2]) / 2 - w / 2) ** 2 + ((f[1] + f[3]) / 2 - h / 2) ** 2)
        else:
            return None
        return self._encode(image, chosen)

    def embed_own(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """face_recognition on its own: its HOG face nearest the centre, else the whole photo as the box (as a user
        passing known_face_locations would); and whether HOG found a face."""
        h, w = image.shape[:2]
        centre = np.array([w / 2, h / 2])
        best = min(self._hog(image), key=lambda f: float(np.linalg.norm((f[:2] + f[2:]) / 2 - centre)), default=None)
        return self._encode(image, best if best is not None else np.array([0.0, 0.0, w, h])), best is not None

    def _encode(self, image: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        left, top = int(max(0, round(chosen[0]))), int(max(0, round(chosen[1])))
        right, bottom = int(min(w, round(chosen[2]))), int(min(h, round(chosen[3])))
        vec = self._fr.face_encodings(image, [(top, right, bottom, left)])[0]
        return (vec / np.linalg.norm(vec)).astype(np.float32)


@_EMBEDDERS.register("facenet")
class FaceNetEmbedder(PretrainedEmbedder):
    """FaceNet's own 512-d embedding at its trained preprocessing (see rnnface.pretrained.facenet)."""

    name, dim, frontend = "facenet", 512, "facenet"

    def __init__(self) -> None:
        from rnnface.pretrained.facenet import shared_facenet

        self._net = shared_facenet()

    def embed(self, image: np.ndarray, box: np.ndarray | None) -> np.ndarray | None:
        if box is None:
            return None
        crop = self._net.crop.crop(image, np.asarray(box, float), None)
        return self._net(crop.image[None])["embedding"][0]


@_EMBEDDERS.register("mobilefacenet")
class MobileFaceNetEmbedder(PretrainedEmbedder):
    """MobileFaceNet's own 192-d embedding on the ArcFace template crop of the default detector's landmarks (the
    detection nearest the given box; the box's typical landmarks when it finds none there)."""

    name, dim, frontend = "mobilefacenet", 192, "mobilefacenet"

    def __init__(self) -> None:
        from rnnface.detection import DEFAULT_DETECTOR, create_detector
        from rnnface.pretrained.mobilefacenet import MobileFaceNetRunner

        self._net = MobileFaceNetRunner(("embedding",))
        self._detector = create_detector(DEFAULT_DETECTOR)

    def embed(self, image: np.ndarray, box: np.ndarray | None) -> np.ndarray | None:
        from rnnface.detection import face_at

        if box is None:
            return None
        box = np.asarray(box, float)
        best = max(self._detector.detect(image), key=lambda f: box_iou(f.box, box), default=None)
        face = best if best is not None and box_iou(best.box, box) >= 0.3 else face_at(box)
        crop = self._net.crop.crop(image, face.box, face.landmarks).image
        crops = np.stack([crop, crop[:, ::-1]][: self.views])
        return normalize(self._net(crops)["embedding"].sum(axis=0))


@_EMBEDDERS.register("mobilefacenet-flip")
class MobileFaceNetFlipEmbedder(MobileFaceNetEmbedder):
    """MobileFaceNet with the mirrored crop's embedding added (its published protocol)."""

    name, views = "mobilefacenet-flip", 2
