"""Images -> gallery: detect, align and embed each face, then store it (one transaction per person)."""

from __future__ import annotations

import io
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from rnnface.aggregation.pooling import Pool
from rnnface.detection import main_faces
from rnnface.errors import DataError, GalleryError, NoFaceError, RnnfaceError, SeveralFacesError
from rnnface.gallery.base import Gallery
from rnnface.gallery.records import FaceRecord, StoredFace, check_person_name
from rnnface.recognition.pipeline import FacePipeline, ImageInput, as_image


@dataclass
class EnrollSummary:
    """What a bulk enrollment did: people/faces stored, and every skipped image with its reason."""

    people: int = 0
    faces: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # person folders not enrolled at all, with why
    ignored: list[tuple[str, str]] = field(default_factory=list)  # what lay outside the <Person>/<image> layout
    already: int = 0  # faces of images already in the gallery for that person (a re-run): not stored again
    # photos skipped for several faces (the interface says how to take the largest)
    several: list[str] = field(default_factory=list)

    def with_hint(self, hint: str) -> EnrollSummary:
        """This summary with `hint` (how the interface takes the largest face) after each several-faces reason."""
        skipped = [(i, f"{r}, or {hint}" if i in self.several else r) for i, r in self.skipped]
        return EnrollSummary(self.people, self.faces, skipped, self.refused, self.ignored, self.already, self.several)

    def to_dict(self) -> dict:
        return {
            "people": self.people,
            "faces": self.faces,
            "already": self.already,
            "skipped": [{"image": i, "reason": r} for i, r in self.skipped],
            "refused": [{"folder": f, "reason": r} for f, r in self.refused],
            "ignored": [{"path": p, "reason": r} for p, r in self.ignored],
        }


def png_bytes(crop: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG")
    return buf.getvalue()


def face_record(
    pipeline: FacePipeline, image: ImageInput, source: str | None = None, largest: bool = False, keep_crop: bool = False
) -> FaceRecord:
    """The one face of an enrollment photo (path, bytes or RGB array): its dominant face, when every other face
    is much smaller or weaker (`main_faces`, the rule `prepare` uses too); NoFaceError, or SeveralFacesError for
    a group photo (with the count; the caller's interface says how to pick the largest)."""
    faces = pipeline.detect(pixels := as_image(image))
    if not faces:
        raise NoFaceError("no face")
    main = main_faces(faces)
    if len(main) > 1 and not largest:
        raise SeveralFacesError(f"several faces ({len(main)}); enroll a photo of one person", len(main))
    found = pipeline.embed_faces(pixels, faces[:1])[0]
    x1, y1, x2, y2 = (float(v) for v in found.face.box)
    box = (x1, y1, x2, y2)
    label = source if source is not None else str(image)
    return FaceRecord(found.embedding, label, box, png_bytes(found.crop) if keep_crop else None, found.cues)


def pool_template(gallery: Gallery, name: str, pool: Pool | None) -> None:
    """Set `name`'s template by `pool` over all their stored faces (None keeps the gallery's mean)."""
    if pool is None:
        return
    faces = list(gallery.faces(name))
    if len(faces) < 2 or any(f.cues is None for f in faces):
        return  # one face, or faces enrolled without cues: the mean is all there is to do
    cues = [f.cues for f in faces if f.cues is not None]  # every face has its cues (checked above)
    gallery.set_template(name, pool(np.stack([f.embedding for f in faces]), np.stack(cues)))


class NothingEnrolledError(GalleryError):
    """No photo of a person could be used; `summary` says why each was skipped."""

    def __init__(self, message: str, summary: EnrollSummary) -> None:
        super().__init__(message)
        self.summary = summary


def usable_faces(
    pipeline: FacePipeline,
    photos: Sequence[tuple[str, ImageInput]],
    summary: EnrollSummary,
    largest: bool = False,
    keep_crops: bool = False,
) -> list[FaceRecord]:
    """The face of each (label, image) photo that can be enrolled; the others go to `summary.skipped` with why."""
    records = []
    for label, image in photos:
        try:
            records.append(face_record(pipeline, image, source=label, largest=largest, keep_crop=keep_crops))
        except RnnfaceError as exc:
            summary.skipped.append((label, _reason(exc, label)))
            if isinstance(exc, SeveralFacesError):
                summary.several.append(label)
    return records


def enroll_photos(
    gallery: Gallery,
    pipeline: FacePipeline,
    name: str,
    photos: Sequence[tuple[str, ImageInput]],
    largest: bool = False,
    keep_crops: bool = False,
    pool: Pool | None = None,
) -> EnrollSummary:
    """Enroll `name` from (label, image) photos in one transaction; photos that cannot be used are skipped with a
    reason, and NothingEnrolledError says why when none can."""
    check_person_name(name)
    gallery.check_model(pipeline.model_id)  # before any detection work
    summary = EnrollSummary()
    records = usable_faces(pipeline, photos, summary, largest, keep_crops)
    return store_person(gallery, pipeline.model_id, name, records, summary, pool)


def store_person(
    gallery: Gallery,
    model_id: str,
    name: str,
    records: list[FaceRecord],
    summary: EnrollSummary,
    pool: Pool | None = None,
) -> EnrollSummary:
    """Store one person's usable faces (found by `usable_faces`, e.g. outside a lock on the gallery) in one
    transaction and pool their template; NothingEnrolledError when there are none."""
    if not records:
        reasons = "; ".join(f"{p}: {r}" for p, r in summary.skipped)
        raise NothingEnrolledError(f"nothing enrolled for {name!r}: {reasons}", summary)
    stored = gallery.enroll(name, records, model_id)
    pool_template(gallery, name, pool)
    summary.people, summary.faces, summary.already = 1, len(stored), len(records) - len(stored)
    return summary


def enroll_images(
    gallery: Gallery,
    pipeline: FacePipeline,
    name: str,
    images: Sequence[str | os.PathLike],
    largest: bool = False,
    keep_crops: bool = False,
    pool: Pool | None = None,
) -> EnrollSummary:
    """`enroll_photos` of image files, each labelled by its path."""
    return enroll_photos(gallery, pipeline, name, [(str(p), p) for p in images], largest, keep_crops, pool)


def _reason(exc: RnnfaceError, label: str) -> str:
    """The error text without the file name prefix the image loader adds."""
    text = str(exc)
    prefix = f"{label}: "
    return f"unreadable: {text[len(prefix) :]}" if text.startswith(prefix) else text


def enroll_directory(
    gallery: Gallery,
    pipeline: FacePipeline,
    root: str | os.PathLike,
    largest: bool = False,
    keep_crops: bool = False,
    limit_people: int | None = None,
    progress: bool = True,
    on_commit: Callable[[str, int], None] | None = None,
    pool: Pool | None = None,
) -> EnrollSummary:
    """Enroll every `<root>/<Person>/<image>`; each person is committed on its own, so an interruption keeps those
    done. Images at the root and folders inside a person's folder are listed in `ignored`; a person folder that is
    empty, or whose photos are all unusable, in `refused`."""
    from rnnface.io.folders import scan_identity_folders
    from rnnface.progress import progress_bar

    root = Path(root)
    scan = scan_identity_folders(root)
    by_person: dict[str, list[Path]] = defaultdict(list)
    for record in scan.records:
        by_person[record.person].append(root / record.path)
    if not (scan.records or scan.stray or scan.nested or scan.empty):
        raise DataError(f"{root}: no images found in the <Person>/<image> layout")
    summary = EnrollSummary()
    summary.ignored += [(p, "an image outside any person's folder: move it into one") for p in scan.stray]
    summary.ignored += [(p, "a folder inside a person's folder: its photos are not enrolled") for p in scan.nested]
    chosen = sorted(set(by_person) | set(scan.empty))[:limit_people]
    summary.refused += [(p, "no images in this folder") for p in scan.empty if p in chosen]
    people = [p for p in chosen if p in by_person]
    model_id = pipeline.model_id
    gallery.check_model(model_id)
    for person in progress_bar(people, enabled=progress, desc="enroll", unit="person"):
        try:
            check_person_name(person)
        except GalleryError as exc:  # e.g. a folder name with a trailing space: list it and go on with the others
            summary.refused.append((person, str(exc)))
            continue
        records = usable_faces(pipeline, [(str(p), p) for p in by_person[person]], summary, largest, keep_crops)
        if not records:
            summary.refused.append((person, f"no usable photo (all {len(by_person[person])} skipped)"))
            continue
        stored = gallery.enroll(person, records, model_id)
        summary.already += len(records) - len(stored)
        if not stored:
            continue  # everyone of theirs was enrolled by an earlier (interrupted) run
        pool_template(gallery, person, pool)
        summary.people += 1
        summary.faces += len(stored)
        if on_commit is not None:
            on_commit(person, len(stored))
    return summary


def reindex(gallery: Gallery, pipeline: FacePipeline) -> int:
    """Re-embed every stored face with the pipeline's model: from its kept aligned crop when that is cut as the model
    wants, else from the photo it was enrolled from (its face found again at the stored box); return faces
    re-embedded. Nothing changes unless every face can be re-embedded."""
    stored = list(gallery.faces())
    if not stored:
        raise GalleryError(f"{gallery.location}: the gallery is empty; nothing to reindex")
    crops = [_kept_crop(f, pipeline.crop.size) for f in stored]
    crops = [c if c is not None else _photo_crop(f, pipeline) for f, c in zip(stored, crops)]
    lost = [f for f, c in zip(stored, crops) if c is None]
    if lost:
        raise GalleryError(
            f"{gallery.location}: cannot reindex: {len(lost)} of {len(stored)} faces have neither a kept crop cut for "
            f"this model ({pipeline.crop.size}-pixel {pipeline.crop.method}) nor a readable photo with that face at "
            f"their source (e.g. {lost[0].person}: {lost[0].source or 'no source'}); remove and enroll those people "
            "again, or keep using the model the gallery was built with (--model)"
        )
    embeddings = pipeline.embed_crops(np.stack([c for c in crops if c is not None]))  # none is None (checked)
    gallery.replace_embeddings(pipeline.model_id, {f.id: e for f, e in zip(stored, embeddings)})
    return len(stored)


def _kept_crop(face: StoredFace, size: int) -> np.ndarray | None:
    """The face's kept aligned crop, when it has one of the model's size."""
    if face.crop_png is None:
        return None
    crop = np.asarray(Image.open(io.BytesIO(face.crop_png)).convert("RGB"))
    return crop if crop.shape[:2] == (size, size) else None


def _photo_crop(face: StoredFace, pipeline: FacePipeline) -> np.ndarray | None:
    """The face cut again from the photo it was enrolled from: the detection that best overlaps its stored box
    (IoU 0.5 at least), or None when the photo or the face is not there any more."""
    from rnnface.detection import box_iou

    path = Path(face.source) if face.source else None
    if path is None or face.box is None or not path.is_file():
        return None
    try:
        image = as_image(path)
    except RnnfaceError:
        return None
    box = np.asarray(face.box, float)
    best = max(pipeline.detect(image), key=lambda f: box_iou(f.box, box), default=None)
    if best is None or box_iou(best.box, box) < 0.5:
        return None
    return pipeline.align(image, [best])[0].image
