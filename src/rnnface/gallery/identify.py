"""Who is in a photo: every face against the gallery, named when the best match clears the threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnface.detection import Face
from rnnface.errors import EmptyGalleryError
from rnnface.gallery.base import Gallery
from rnnface.gallery.records import UNKNOWN, Match, SearchBy
from rnnface.operating import SEARCH_FPIR, Threshold, ThresholdSpec
from rnnface.recognition.pipeline import FacePipeline, ImageInput, as_image


@dataclass(frozen=True)
class Identification:
    """One detected face: its best matches and the decision at the threshold."""

    face: Face
    matches: list[Match]
    threshold: Threshold

    @property
    def name(self) -> str:
        """The best match's name, or "unknown" when no one is similar enough."""
        best = self.matches[0] if self.matches else None
        return best.person if best is not None and best.similarity >= self.threshold.value else UNKNOWN

    def to_dict(self) -> dict:
        return {
            **self.face.to_dict(),
            "name": self.name,
            **self.threshold.to_dict(),
            "matches": [m.to_dict() for m in self.matches],
        }


def identify_image(
    gallery: Gallery,
    pipeline: FacePipeline,
    image: ImageInput,
    top_k: int = 5,
    threshold: ThresholdSpec = None,
    by: SearchBy = "face",
    fpir: float = SEARCH_FPIR,
) -> list[Identification]:
    """Every face in `image` (largest first) with its top-k gallery people; [] when the image has no face.

    `threshold`: a point name or a number; by default the one whose false-positive identification rate is `fpir`
    at this gallery's size (see `search_threshold`)."""
    search_threshold(gallery, pipeline, threshold, by, fpir)  # before any detection work
    faces, embeddings = pipeline.embed(as_image(image))
    return search_faces(gallery, pipeline, faces, embeddings, top_k, threshold, by, fpir)


def check_gallery(gallery: Gallery, pipeline: FacePipeline) -> None:
    """Raise unless the gallery holds people embedded by the pipeline's model."""
    if gallery.model_id is None:
        raise EmptyGalleryError(f"{gallery.location}: the gallery is empty; enroll people first (rnnface enroll)")
    gallery.check_model(pipeline.model_id)


def search_threshold(
    gallery: Gallery, pipeline: FacePipeline, threshold: ThresholdSpec = None, by: SearchBy = "face", fpir=SEARCH_FPIR
) -> Threshold:
    """The threshold of a search of this gallery: a stranger is compared with every stored face (`by` face) or
    every person's template, so the default is set for `fpir` at that many comparisons."""
    check_gallery(gallery, pipeline)
    return pipeline.threshold(threshold, comparisons=gallery.entries(by), fpir=fpir)


def search_faces(
    gallery: Gallery,
    pipeline: FacePipeline,
    faces: list[Face],
    embeddings: np.ndarray,
    top_k: int = 5,
    threshold: ThresholdSpec = None,
    by: SearchBy = "face",
    fpir: float = SEARCH_FPIR,
) -> list[Identification]:
    """The gallery part of `identify_image`, for faces already embedded (so a caller can hold the gallery only for
    it)."""
    decide = search_threshold(gallery, pipeline, threshold, by, fpir)
    if not faces:
        return []
    results = gallery.search(embeddings, top_k=top_k, by=by)
    return [Identification(face, matches, decide) for face, matches in zip(faces, results)]
