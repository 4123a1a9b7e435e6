"""Images -> gallery: detect, align and embed each face, then store it (one transaction per person)."""

from __future__ import annotations

import io
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from rnnface.aggregation.model import quality_cues
from rnnface.aggregation.pooling import Pool
from rnnface.errors import GalleryError, RnnfaceError
from rnnface.gallery.base import EnrollSummary, FaceRecord, Gallery, check_name
from rnnface.io import load_image
from rnnface.recognition.pipeline import FacePipeline


def png_bytes(crop: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG")
    return buf.getvalue()


def face_record(
    pipeline: FacePipeline,
    image: str | os.PathLike | np.ndarray,
    source: str | None = None,
    largest: bool = False,
    keep_crop: bool = False,
    largest_option: str = "--largest",
) -> FaceRecord:
    """The one face of an enrollment photo (path or RGB array); raises RnnfaceError naming why it cannot be used.

    `largest_option` is how the caller's interface spells "use the largest face" (CLI flag, API field)."""
    pixels = load_image(image) if not isinstance(image, np.ndarray) else image
    faces = pipeline.detect(pixels)
    if not faces:
        raise RnnfaceError("no face")
    if len(faces) > 1 and not largest:
        raise RnnfaceError(f"several faces ({len(faces)}); enroll a photo of one person, or pass {largest_option}")
    crop = pipeline.align(pixels, faces[:1])[0].image
    embedding = pipeline.embedder.embed_crops(crop[None])[0]
    box = tuple(float(v) for v in faces[0].box)
    cues = quality_cues(crop, faces[0].score, box[3] - box[1])
    return FaceRecord(embedding, source if source is not None else str(image), box, png_bytes(crop) if keep_crop else None, cues)


def pool_template(gallery: Gallery, name: str, pool: Pool | None) -> None:
    """Set `name`'s template by `pool` over all their stored faces (None keeps the gallery's mean)."""
    if pool is None:
        return
    faces = list(gallery.faces(name))
    if len(faces) < 2 or any(f.cues is None for f in faces):
        return  # one face, or faces enrolled without cues: the mean is all there is to do
    gallery.set_template(name, pool(np.stack([f.embedding for f in faces]), np.stack([f.cues for f in faces])))


def enroll_images(
    gallery: Gallery,
    pipeline: FacePipeline,
    name: str,
    images: Sequence[str | os.PathLike],
    largest: bool = False,
    keep_crops: bool = False,
    pool: Pool | None = None,
) -> EnrollSummary:
    """Enroll `name` from several photos in one transaction; photos that cannot be used are skipped with a reason."""
    check_name(name)
    model_id = pipeline.embedder.checkpoint.model_id
    gallery.check_model(model_id)  # before any detection work
    summary, records = EnrollSummary(), []
    for path in images:
        try:
            records.append(face_record(pipeline, path, largest=largest, keep_crop=keep_crops))
        except RnnfaceError as exc:
            summary.skipped.append((str(path), _reason(exc, path)))
    if not records:
        reasons = "; ".join(f"{p}: {r}" for p, r in summary.skipped)
        raise GalleryError(f"nothing enrolled for {name!r}: {reasons}")
    stored = gallery.enroll(name, records, model_id)
    pool_template(gallery, name, pool)
    summary.people, summary.faces, summary.already = 1, len(stored), len(records) - len(stored)
    return summary


def _reason(exc: RnnfaceError, path: str | os.PathLike) -> str:
    """The error text without the file name prefix the image loader adds."""
    text = str(exc)
    prefix = f"{path}: "
    return f"unreadable: {text[len(prefix):]}" if text.startswith(prefix) else text


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
    """Enroll every `<root>/<Person>/<image>`; each person is committed on its own, so an interruption keeps those done."""
    from tqdm import tqdm

    from rnnface.data.folders import list_identity_images

    root = Path(root)
    by_person: dict[str, list[Path]] = defaultdict(list)
    for record in list_identity_images(root):
        by_person[record.person].append(root / record.path)
    people = sorted(by_person)[:limit_people]
    model_id = pipeline.embedder.checkpoint.model_id
    gallery.check_model(model_id)
    summary = EnrollSummary()
    for person in tqdm(people, desc="enroll", unit="person", disable=not progress):
        try:
            check_name(person)
        except GalleryError as exc:  # e.g. a folder name with a trailing space: list it and go on with the others
            summary.refused.append((person, str(exc)))
            continue
        records = []
        for path in by_person[person]:
            try:
                records.append(face_record(pipeline, path, largest=largest, keep_crop=keep_crops))
            except RnnfaceError as exc:
                summary.skipped.append((str(path), _reason(exc, path)))
        if records:
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
    """Re-embed every stored face with the pipeline's model from its kept aligned crop; return faces re-embedded."""
    stored = list(gallery.faces())
    if not stored:
        raise GalleryError(f"{gallery.location}: the gallery is empty; nothing to reindex")
    missing = [f for f in stored if f.crop_png is None]
    if missing:
        raise GalleryError(
            f"{gallery.location}: cannot reindex: {len(missing)} of {len(stored)} faces were enrolled without their aligned crop "
            f"(e.g. {missing[0].person}: {missing[0].source or 'no source'}); enroll with --keep-crops, or re-enroll those people "
            "from their photos with the new model"
        )
    crops = np.stack([np.asarray(Image.open(io.BytesIO(f.crop_png)).convert("RGB")) for f in stored])
    spec = pipeline.embedder.crop
    if crops.shape[1] != spec.size:
        raise GalleryError(
            f"{gallery.location}: cannot reindex: the kept crops are {crops.shape[1]}-pixel crops cut for another kind of "
            f"model, and this model needs {spec.size}-pixel {spec.method} crops; re-enroll the people from their photos"
        )
    embeddings = pipeline.embedder.embed_crops(crops)
    gallery.replace_embeddings(pipeline.embedder.checkpoint.model_id, {f.id: e for f, e in zip(stored, embeddings)})
    return len(stored)
