"""Who is in my photos: every face of a set of photos embedded once, then grouped by person.

The threshold is one of the model's operating points (or a number): two groups merge while their faces, on
average, are as similar as a pair judged "same" at that point. Groups under `min_size` faces are left alone
(a face seen once is not a group yet). A member whose mean similarity to the rest of its group is under the
threshold is flagged `doubtful` but kept: on LFW (FaceNet's embeddings), taking such faces out lowered both
pairwise and BCubed F. Each group reports how alike its faces are (`cohesion`), how near the
closest other group is (`nearest`), and the face nearest its mean (the one to show when asking for a name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from rnnface.clustering.linkage import DEFAULT_K, Clustering, Group, Pooling
from rnnface.detection import Face
from rnnface.errors import ImageError, RnnfaceError
from rnnface.operating import Threshold, ThresholdSpec
from rnnface.recognition.pipeline import FacePipeline, ImageInput, as_image

#: Groups smaller than this are left alone by default: one photo of someone is not yet a person to name.
MIN_SIZE = 2
#: The operating point groups are merged at by default: the one that leaves fewest strangers together.
DEFAULT_POINT = "strict"
#: Why a photo that was read gave nothing to group.
NO_FACE = "no face detected"
#: How far a mean over many pairs counts more than one pair (`Pooling.rho`): the best rho of `rnnface eval cluster`
#: on LFW and CFP with both pretrained embeddings (on CFP with FaceNet's, tied with 0.55).
DEFAULT_RHO = 0.7


@dataclass(frozen=True)
class FoundFace:
    """One face of the photo set: where it is and its embedding."""

    source: str
    face: Face
    embedding: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {"image": self.source, **self.face.to_dict()}


@dataclass(frozen=True)
class PhotoGroups:
    """The faces of a photo set, their groups (largest first) and the faces left alone."""

    faces: list[FoundFace]
    groups: list[Group]
    alone: list[int]
    threshold: Threshold
    min_size: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (photo, why it gave no face)
    pooling: Pooling = field(default_factory=Pooling)

    def to_dict(self) -> dict:
        def group(number: int, g: Group) -> dict:
            shown = {"number": number, "size": g.size, "cohesion": round(g.cohesion, 4), "nearest": round(g.nearest, 4)}
            vectors = np.stack([self.faces[i].embedding for i in g.members])
            fit = (vectors @ vectors.sum(0) - 1) / max(1, g.size - 1)  # each face's mean cosine to the others
            members = [
                {**self.faces[i].to_dict(), "fit": round(float(f), 4), "doubtful": bool(f < self.threshold.value)}
                for i, f in zip(g.members, fit)
            ]
            return {**shown, "representative": self.faces[g.representative].to_dict(), "members": members}

        return {
            **self.threshold.to_dict(),
            **self.pooling.to_dict(),
            "min_size": self.min_size,
            "faces": len(self.faces),
            "groups": [group(n, g) for n, g in enumerate(self.groups)],
            "alone": [self.faces[i].to_dict() for i in self.alone],
            "skipped": [{"image": s, "reason": r} for s, r in self.skipped],
        }


def find_faces(pipeline: FacePipeline, photos: Iterable[tuple[str, ImageInput]]) -> tuple[list[FoundFace], list]:
    """Every face of every photo, embedded; photos that cannot be read or hold no face are listed with why."""
    found: list[FoundFace] = []
    skipped: list[tuple[str, str]] = []
    for source, image in photos:
        try:
            faces, embeddings = pipeline.embed(as_image(image))
        except (ImageError, RnnfaceError) as exc:
            skipped.append((source, str(exc)))
            continue
        if not faces:
            skipped.append((source, NO_FACE))
        found.extend(FoundFace(source, f, e) for f, e in zip(faces, embeddings))
    return found, skipped


def check_readable(faces: list[FoundFace], skipped: list[tuple[str, str]]) -> None:
    """ImageError when not one photo could be read (every one skipped, none for want of a face): that is bad
    input, not an empty set of groups."""
    if not faces and skipped and all(reason != NO_FACE for _, reason in skipped):
        source, reason = skipped[0]
        raise ImageError(
            f"none of the {len(skipped)} photo(s) could be read (first: {source}: {reason.removeprefix(source + ': ')})"
        )


def clustering_threshold(pipeline: FacePipeline, threshold: ThresholdSpec = None) -> Threshold:
    """The threshold groups merge at: `threshold` (a point name or a cosine), by default DEFAULT_POINT."""
    return pipeline.threshold(DEFAULT_POINT if threshold is None else threshold)


def clustering_pooling(pipeline: FacePipeline) -> Pooling:
    """How group means are pooled (DEFAULT_RHO, about the model's own background cosine); plain average linkage
    for a model without a calibration, whose background is unknown."""
    calibration = pipeline.load().checkpoint.calibration
    return Pooling() if calibration is None else Pooling(DEFAULT_RHO, calibration.background)


def group_faces(
    faces: list[FoundFace],
    threshold: Threshold,
    min_size: int = MIN_SIZE,
    skipped: list | None = None,
    pooling: Pooling | None = None,
) -> PhotoGroups:
    """`faces` grouped at `threshold`: groups of at least `min_size`, and the faces in none."""
    pooling = pooling or Pooling()
    clustering = Clustering(threshold.value, DEFAULT_K, pooling)
    if faces:
        clustering.add(np.stack([f.embedding for f in faces]))
    groups = clustering.groups(min_size)
    grouped = {i for g in groups for i in g.members}
    alone = [i for i in range(len(faces)) if i not in grouped]
    return PhotoGroups(faces, groups, alone, threshold, min_size, skipped or [], pooling)


def cluster_photos(
    pipeline: FacePipeline,
    photos: Iterable[tuple[str, ImageInput]],
    threshold: ThresholdSpec = None,
    min_size: int = MIN_SIZE,
) -> PhotoGroups:
    """Find, embed and group every face of `photos` ((name, image) pairs); nothing is stored anywhere."""
    decide = clustering_threshold(pipeline, threshold)
    faces, skipped = find_faces(pipeline, photos)
    check_readable(faces, skipped)
    return group_faces(faces, decide, min_size, skipped, clustering_pooling(pipeline))
