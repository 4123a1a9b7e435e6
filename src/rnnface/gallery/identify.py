"""Who is in a photo: every face against the gallery, named when the best match clears the threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnface.detection import Face
from rnnface.errors import EmptyGalleryError
from rnnface.gallery.base import Gallery
from rnnface.gallery.records import UNKNOWN, Match, SearchBy
from rnnface.recognition.pipeline import FacePipeline, ImageInput, as_image


@dataclass(frozen=True)
class Identification:
    """One detected face: its best matches and the decision at the threshold."""

    face: Face
    matches: list[Match]
    threshold: float

    @property
    def name(self) -> str:
        """The best match's name, or "unknown" when no one is similar enough."""
        return self.matches[0].person if self.matches and self.matches[0].similarity >= self.threshold else UNKNOWN

    def to_dict(self) -> dict:
        return {
            **self.face.to_dict(),
            "name": self.name,
            "threshold": round(self.threshold, 4),
            "matches": [m.to_dict() for m in self.matches],
        }


def identify_image(
    gallery: Gallery,
    pipeline: FacePipeline,
    image: ImageInput,
    top_k: int = 5,
    threshold: float | None = None,
    by: SearchBy = "face",
) -> list[Identification]:
    """Every face in `image` (largest first) with its top-k gallery people; [] when the image has no face."""
    check_gallery(gallery, pipeline)  # before any detection work
    pipeline.threshold(threshold)
    faces, embeddings = pipeline.embed(as_image(image))
    return search_faces(gallery, pipeline, faces, embeddings, top_k, threshold, by)


def check_gallery(gallery: Gallery, pipeline: FacePipeline) -> None:
    """Raise unless the gallery holds people embedded by the pipeline's model."""
    if gallery.model_id is None:
        raise EmptyGalleryError(f"{gallery.location}: the gallery is empty; enroll people first (rnnface enroll)")
    gallery.check_model(pipeline.model_id)


def search_faces(
    gallery: Gallery,
    pipeline: FacePipeline,
    faces: list[Face],
    embeddings: np.ndarray,
    top_k: int = 5,
    threshold: float | None = None,
    by: SearchBy = "face",
) -> list[Identification]:
    """The gallery part of `identify_image`, for faces already embedded (so a caller can hold the gallery only for
    it)."""
    check_gallery(gallery, pipeline)
    decide = pipeline.threshold(threshold)
    if not faces:
        return []
    results = gallery.search(embeddings, top_k=top_k, by=by)
    return [Identification(face, matches, decide) for face, matches in zip(faces, results)]
