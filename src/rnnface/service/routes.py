"""The versioned JSON routes under /api/v1. Each declares its access (READ, WRITE) and computes with the app's
Engine; errors are raised as rnnface or HTTP errors and answered by `rnnface.service.errors`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile

from rnnface import __version__
from rnnface.errors import ImageError, ImageTooLargeError, RnnfaceError, UnknownPersonError
from rnnface.gallery.enroll import EnrollSummary, NothingEnrolledError, store_person, usable_faces
from rnnface.gallery.identify import search_faces
from rnnface.gallery.records import check_name
from rnnface.service import schemas
from rnnface.service.access import READ, WRITE
from rnnface.service.engine import Engine
from rnnface.service.errors import HttpError, source_name

NameParam = Annotated[str, Path(min_length=1, max_length=256, description="The person's name, as enrolled.")]
ImageFile = Annotated[UploadFile, File(description="A photo: JPEG, PNG, WebP, BMP, GIF or TIFF.")]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.Error} for code in (401, 404, 409, 413, 415, 422, 503, 504)
}
#: How an API client asks enrollment to take the largest face of a photo with several.
LARGEST_HINT = "set largest=true to use its largest face"


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(engine_of)]
api = APIRouter(prefix="/api/v1")


@api.get("/health", response_model=schemas.Health, tags=["service"])
async def health() -> schemas.Health:
    """Liveness: the process answers."""
    return schemas.Health(status="ok", version=__version__)


@api.get(
    "/ready",
    response_model=schemas.Ready,
    responses={503: {"model": schemas.Error}},
    dependencies=[READ],
    tags=["service"],
)
async def ready(engine: EngineDep) -> schemas.Ready:
    """Readiness: the model is loaded and the gallery opens (loads them if needed)."""

    def check() -> schemas.Ready:
        model_id = engine.pipeline.model_id
        with engine.gallery() as g:
            return schemas.Ready(status="ready", model=model_id, gallery_model=g.model_id, people=len(g.people()))

    try:
        return await engine.compute(check, timeout=False)
    except RnnfaceError as exc:
        raise HttpError(503, f"not ready: {exc}") from None


@api.post("/detect", response_model=schemas.Detection, responses=ERRORS, dependencies=[READ], tags=["faces"])
async def detect(engine: EngineDep, image: ImageFile) -> schemas.Detection:
    """Every face: box, score, 5 landmarks (largest first)."""
    img = await engine.read_image(image, "image")
    faces = await engine.compute(lambda: engine.pipeline.detect(img))
    return schemas.Detection(width=img.shape[1], height=img.shape[0], faces=[f.to_dict() for f in faces])


@api.post("/embed", response_model=schemas.Embedding, responses=ERRORS, dependencies=[READ], tags=["faces"])
async def embed(engine: EngineDep, image: ImageFile) -> schemas.Embedding:
    """Every face with its unit embedding from the recurrent model."""
    img = await engine.read_image(image, "image")
    faces, emb = await engine.compute(lambda: engine.pipeline.embed(img))
    faces_out = [{**f.to_dict(), "embedding": e.round(6).tolist()} for f, e in zip(faces, emb)]
    return schemas.Embedding(model=engine.pipeline.model_id, faces=faces_out)


@api.post("/verify", response_model=schemas.VerifyResult, responses=ERRORS, dependencies=[READ], tags=["recognition"])
async def verify(
    engine: EngineDep,
    image_a: ImageFile,
    image_b: ImageFile,
    threshold: Annotated[
        float | None, Form(ge=-1, le=1, description="Cosine threshold (default: the model's calibrated one).")
    ] = None,
) -> schemas.VerifyResult:
    """Are the largest faces of two photos the same person?"""
    a = await engine.read_image(image_a, "image_a")
    b = await engine.read_image(image_b, "image_b")
    result = await engine.compute(
        lambda: engine.pipeline.verify(a, b, threshold=threshold, names=("image_a", "image_b"))
    )
    return schemas.VerifyResult(**result.to_dict())


@api.post(
    "/identify", response_model=schemas.IdentifyResult, responses=ERRORS, dependencies=[READ], tags=["recognition"]
)
async def identify(
    engine: EngineDep,
    image: ImageFile,
    top_k: Annotated[int, Form(ge=1, le=50, description="People listed per face.")] = 3,
    threshold: Annotated[float | None, Form(ge=-1, le=1, description="Cosine threshold for a name.")] = None,
) -> schemas.IdentifyResult:
    """Every face with its top-k people from the gallery, named or `unknown`."""
    img = await engine.read_image(image, "image")

    def run() -> list:
        pipeline = engine.pipeline
        faces, embeddings = pipeline.embed(img)  # detection and embedding need no gallery: it stays free meanwhile
        with engine.gallery() as g:
            return search_faces(g, pipeline, faces, embeddings, top_k=top_k, threshold=threshold)

    faces = [r.to_dict() for r in await engine.compute(run)]
    for face in faces:  # a CLI-enrolled face's source is a server path: only its file name goes out
        for match in face["matches"]:
            match["source"] = source_name(match["source"])
    return schemas.IdentifyResult(width=img.shape[1], height=img.shape[0], faces=faces)


@api.get("/people", response_model=schemas.PeopleList, responses=ERRORS, dependencies=[READ], tags=["people"])
async def list_people(engine: EngineDep) -> schemas.PeopleList:
    """Everyone enrolled."""

    def run() -> schemas.PeopleList:
        with engine.gallery() as g:
            return schemas.PeopleList(model=g.model_id, people=[p.to_dict() for p in g.people()])

    return await engine.compute(run)


# {name:path}: a name with "/" (sent as %2F, which the server decodes) must still reach its person
@api.get("/people/{name:path}", response_model=schemas.Person, responses=ERRORS, dependencies=[READ], tags=["people"])
async def get_person(engine: EngineDep, name: NameParam) -> schemas.Person:
    """One enrolled person, with the sources of their faces."""

    def run() -> schemas.Person:
        with engine.gallery() as g:
            faces = list(g.faces(name))
        if not faces:
            raise UnknownPersonError(f"no person named {name!r}")
        return schemas.Person(name=name, faces=len(faces), sources=[source_name(f.source) for f in faces])

    return await engine.compute(run)


@api.post(
    "/people", status_code=201, response_model=schemas.Enrolled, responses=ERRORS, dependencies=[WRITE], tags=["people"]
)
async def enroll(
    engine: EngineDep,
    name: Annotated[str, Form(min_length=1, max_length=256, description="The person's name.")],
    images: Annotated[list[UploadFile], File(description="One or more photos, one face each.")],
    largest: Annotated[bool, Form(description="Use the largest face of a photo with several.")] = False,
    keep_crops: Annotated[bool, Form(description="Store aligned crops so the gallery can be re-embedded.")] = False,
) -> schemas.Enrolled:
    """Enroll (or add photos to) a person, all photos in one transaction; unusable photos are listed, not stored."""
    check_name(name)  # before any upload is decoded
    limit = engine.settings.max_images
    if len(images) > limit:
        raise HttpError(413, f"at most {limit} images per enrollment, got {len(images)}")
    # One rule with the CLI: a photo that cannot be used (not an image, corrupt, no face, several faces) is
    # listed with its reason and the others are enrolled; the request fails only when none can be used.
    photos, positions, undecodable = [], [], []  # positions: each photo's place among the uploads
    for i, upload in enumerate(images):
        label = f"upload:{(upload.filename or f'image{i}')[:200]}"
        try:
            photos.append((label, await engine.read_image(upload, f"images[{i}]")))
            positions.append(i)
        except (ImageError, HttpError) as exc:
            if isinstance(exc, ImageTooLargeError) or getattr(exc, "status", 415) == 413:
                raise  # a limit refuses the whole request
            undecodable.append((i, label, str(exc).split(": ", 1)[-1]))

    def in_upload_order(summary: EnrollSummary) -> list[tuple[str, str]]:
        """Every skipped upload with its reason, in the order they came: those that did not decode and those
        enrollment skipped (each of which is the next photo of its label)."""
        pending = list(zip(positions, (label for label, _ in photos)))
        skipped = list(undecodable)
        for label, reason in summary.with_hint(LARGEST_HINT).skipped:
            k = next(k for k, (_, candidate) in enumerate(pending) if candidate == label)
            skipped.append((pending.pop(k)[0], label, reason))
        return [(label, reason) for _, label, reason in sorted(skipped)]

    def run() -> EnrollSummary:
        pipeline, summary = engine.pipeline, EnrollSummary()
        with engine.gallery() as g:
            g.check_model(pipeline.model_id)  # before any detection work
        records = usable_faces(pipeline, photos, summary, largest, keep_crops)  # the gallery stays free meanwhile
        with engine.gallery() as g:
            return store_person(g, pipeline.model_id, name, records, summary, engine.pool)

    try:
        summary = await engine.compute(run, timeout=False)  # a write runs to completion
    except NothingEnrolledError as exc:
        reasons = "; ".join(f"{label}: {reason}" for label, reason in in_upload_order(exc.summary))
        raise NothingEnrolledError(f"nothing enrolled for {name!r}: {reasons}", exc.summary) from None
    skipped = [{"image": label, "reason": reason} for label, reason in in_upload_order(summary)]
    return schemas.Enrolled(name=name, faces=summary.faces, already=summary.already, skipped=skipped)


@api.delete(
    "/people/{name:path}", response_model=schemas.Removed, responses=ERRORS, dependencies=[WRITE], tags=["people"]
)
async def delete_person(engine: EngineDep, name: NameParam) -> schemas.Removed:
    """Delete a person with every embedding, crop and source reference."""

    def run() -> schemas.Removed:
        with engine.gallery() as g:
            return schemas.Removed(name=name, faces=g.remove(name))

    return await engine.compute(run, timeout=False)
