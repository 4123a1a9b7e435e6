"""The face_recognition-style facade: verb-named functions returning arrays and dataclasses.

Models load on first use and are kept per model path, so repeated calls are cheap.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from rnnface.alignment import AlignedFace, align_face
from rnnface.detection import DEFAULT_DETECTOR, Face, create_detector
from rnnface.io import load_image
from rnnface.recognition.pipeline import FacePipeline, ImageInput, Verification, as_image, pick_face
from rnnface.similarity import cosine_similarity

if TYPE_CHECKING:
    from rnnface.gallery.enroll import EnrollSummary
    from rnnface.gallery.identify import Identification

__all__ = ["align", "compare", "detect", "embed", "enroll", "identify", "load_image", "verify"]


@lru_cache(maxsize=4)
def _detector(name: str):
    return create_detector(name)


@lru_cache(maxsize=4)
def _pipeline(model: str | None) -> FacePipeline:
    return FacePipeline(model=model)


def _model_key(model: str | os.PathLike | None) -> str | None:
    return None if model is None else str(model)


def detect(image: ImageInput, detector: str = DEFAULT_DETECTOR) -> list[Face]:
    """Every face in `image` (array, path or bytes): box, score and 5 landmarks, largest first."""
    return _detector(detector).detect(as_image(image))


def align(image: ImageInput, face: Face | np.ndarray | None, size: int = 112) -> AlignedFace:
    """Canonical `size` x `size` crop of `face` (a Face or (5, 2) landmarks; None: centre-crop fallback)."""
    landmarks = face.landmarks if isinstance(face, Face) else face
    return align_face(as_image(image), landmarks, size)


def embed(image: ImageInput, model: str | os.PathLike | None = None, face: int | None = None) -> np.ndarray:
    """Unit embeddings of the faces in `image`: (N, D) for all faces, or (D,) for face number `face`."""
    pipeline = _pipeline(_model_key(model))
    image = as_image(image)
    faces = pipeline.detect(image)
    if face is None:
        return pipeline.embed(image, faces)[1]
    i = pick_face(faces, face, "image")
    return pipeline.embed(image, [faces[i]])[1][0]


def compare(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Cosine similarity of two embeddings (or of every row of `a` with every row of `b`)."""
    return cosine_similarity(a, b)


def verify(
    image_a: ImageInput,
    image_b: ImageInput,
    model: str | os.PathLike | None = None,
    threshold: float | None = None,
) -> Verification:
    """Whether the largest faces of two images are the same person, at the model's calibrated threshold."""
    return _pipeline(_model_key(model)).verify(image_a, image_b, threshold=threshold)


def enroll(
    name: str,
    images: Sequence[str | os.PathLike],
    gallery: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
) -> EnrollSummary:
    """Store one person's photos (one face each) in a gallery (default: $RNNFACE_GALLERY or the user's data dir)."""
    from rnnface.gallery import open_gallery
    from rnnface.gallery.enroll import enroll_images

    with open_gallery(gallery) as g:
        return enroll_images(g, _pipeline(_model_key(model)), name, images)


def identify(
    image: ImageInput, gallery: str | os.PathLike | None = None, model: str | os.PathLike | None = None, top_k: int = 3
) -> list[Identification]:
    """Every face in `image` with its top-k gallery people; `.name` is "unknown" below the model's threshold."""
    from rnnface.gallery import open_gallery
    from rnnface.gallery.identify import identify_image

    with open_gallery(gallery, create=False) as g:
        return identify_image(g, _pipeline(_model_key(model)), image, top_k=top_k)
