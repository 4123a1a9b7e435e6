"""The FastAPI application: versioned JSON routes under /api/v1, the web page at /, JSON errors everywhere.

Built by `create_app(settings)`; the model loads on the first request that needs it (or on /ready),
inference runs in worker threads off the event loop, and no state lives at module level.
"""

import logging
import re
import secrets
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import PurePath
from typing import Annotated, Any, TypeVar

import anyio
import numpy as np
from fastapi import APIRouter, Depends, FastAPI, File, Form, Path, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from rnnface import __version__
from rnnface.errors import (
    EmptyGalleryError,
    FaceIndexError,
    GalleryError,
    GalleryUnavailableError,
    ImageError,
    ImageTooLargeError,
    ModelError,
    ModelMismatchError,
    NoFaceError,
    ReadOnlyGalleryError,
    RnnfaceError,
    UnknownPersonError,
)
from rnnface.gallery.base import check_name
from rnnface.gallery.enroll import face_record, pool_template
from rnnface.gallery.identify import search_faces
from rnnface.io import load_image
from rnnface.service import schemas
from rnnface.service.body import BodyGuard
from rnnface.service.engine import Engine
from rnnface.service.settings import ServiceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

#: HTTP status for each kind of error a user can cause (most specific first).
STATUS_OF: list[tuple[type[Exception], int]] = [
    (ImageTooLargeError, 413),
    (ImageError, 422),
    (NoFaceError, 422),
    (FaceIndexError, 422),
    (UnknownPersonError, 404),
    (EmptyGalleryError, 409),
    (ModelMismatchError, 409),
    (ReadOnlyGalleryError, 503),
    (GalleryUnavailableError, 503),
    (GalleryError, 422),
    (ModelError, 503),
]


class HttpError(Exception):
    """An error with its status, raised by the request checks (size, type, key)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


#: An absolute filesystem path (two or more segments), to be cut down to its last segment.
_PATH = re.compile(r"(?<![\w.:/])(?:/[^\s/:'\",;()]+){2,}")


def redact(text: str, known: tuple[str, ...] = ()) -> str:
    """`text` with server paths replaced by their file names (the `known` ones, which may hold spaces, first;
    then anything shaped like an absolute path): no response tells where files live."""
    for path in sorted(known, key=len, reverse=True):
        text = text.replace(path, PurePath(path).name)
    return _PATH.sub(lambda m: m.group(0).rsplit("/", 1)[-1], text)


def source_name(source: str) -> str:
    """What a client may see of a face's source: an upload label as it is, a server file by its name only."""
    return PurePath(source).name if PurePath(source).is_absolute() else source


def _error(status: int, message: str, kind: str, known: tuple[str, ...] = ()) -> JSONResponse:
    return JSONResponse({"detail": redact(message, known), "type": kind}, status_code=status)


NameParam = Annotated[str, Path(min_length=1, max_length=256, description="The person's name, as enrolled.")]
ImageFile = Annotated[UploadFile, File(description="A photo: JPEG, PNG, WebP, BMP, GIF or TIFF.")]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """A new application with its own engine (model + gallery) and settings."""
    settings = settings or ServiceSettings.from_env()
    engine = Engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await anyio.to_thread.run_sync(engine.close)

    # No /docs or /redoc: FastAPI serves them from a CDN (blank offline, a third-party script on an admin page).
    # The spec is at /openapi.json, open or keyed like every read.
    app = FastAPI(
        title="rnnface",
        version=__version__,
        summary="Face detection, verification and 1:N identification with recurrent networks.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    app.state.settings = settings
    # server paths that error messages may quote (the gallery's, the model's): cut to their names in responses
    known_paths = tuple({str(p) for p in (settings.gallery, settings.model) if p} | {str(PurePath(settings.gallery).parent)} - {"", "."})
    decode_slots = threading.BoundedSemaphore(settings.max_concurrent_decodes)
    key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Needed by write routes (and reads when RNNFACE_OPEN_READS=false).")

    def check_key(key: str | None, what: str) -> None:
        expected = settings.api_key.get_secret_value() if settings.api_key else None
        if expected is None:
            raise HttpError(401, f"{what} need an API key, and this server has none configured (set RNNFACE_API_KEY)")
        if key is None or not secrets.compare_digest(key.encode(), expected.encode()):
            raise HttpError(401, "missing or wrong API key (X-API-Key header)")

    async def writer(key: Annotated[str | None, Depends(key_header)]) -> None:
        check_key(key, "write routes")

    async def reader(key: Annotated[str | None, Depends(key_header)]) -> None:
        if not settings.open_reads:
            check_key(key, "read routes")

    async def read_image(upload: UploadFile, field: str) -> np.ndarray:
        """Bytes of an uploaded image within the limits, decoded; nothing touches the filesystem."""
        if not (upload.content_type or "").startswith("image/"):
            raise HttpError(415, f"{field}: expected an image upload (image/*), got {upload.content_type or 'no content type'}")
        data = await upload.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise HttpError(413, f"{field}: file larger than the limit of {settings.max_upload_bytes:,} bytes")

        def decode() -> np.ndarray:
            # The slot is taken in the worker thread, so a decode abandoned by a timeout still holds it until it ends.
            with decode_slots:
                return load_image(data, max_pixels=settings.max_pixels, max_decoded_bytes=settings.max_decoded_bytes)

        try:
            return await compute(decode)  # decoding counts against the request's time limit too
        except ImageError as exc:
            message = str(exc).split(": ", 1)[-1]
            raise type(exc)(f"{field}: {message}") from None

    async def compute(fn: Callable[[], T], timeout: bool = True) -> T:
        """Run blocking work in a worker thread; reads give up with 504 after the configured time."""
        if not timeout:
            return await anyio.to_thread.run_sync(fn)
        with anyio.move_on_after(settings.request_timeout_s) as scope:
            return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
        if scope.cancelled_caught:
            raise HttpError(504, f"request took longer than {settings.request_timeout_s:g} s")

    @app.exception_handler(HttpError)
    async def http_error(request: Request, exc: HttpError) -> JSONResponse:
        return _error(exc.status, str(exc), "request", known_paths)

    @app.exception_handler(RnnfaceError)
    async def rnnface_error(request: Request, exc: RnnfaceError) -> JSONResponse:
        status = next(code for cls, code in STATUS_OF + [(RnnfaceError, 422)] if isinstance(exc, cls))
        return _error(status, str(exc), type(exc).__name__, known_paths)

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own refusals (multipart limits: "Too many files", "Part exceeded maximum size"; 404; 405)
        return _error(exc.status_code, str(exc.detail), "request")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return _error(422, "; ".join(parts) or "invalid request", "validation")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal server error (logged on the server)", "internal")

    api = APIRouter(prefix="/api/v1")
    errors: dict[int | str, dict[str, Any]] = {code: {"model": schemas.Error} for code in (401, 404, 409, 413, 415, 422, 503, 504)}

    @api.get("/health", response_model=schemas.Health, tags=["service"])
    async def health() -> schemas.Health:
        """Liveness: the process answers."""
        return schemas.Health(status="ok", version=__version__)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(reader)])
    async def openapi_spec() -> JSONResponse:
        return JSONResponse(app.openapi())

    @api.get("/ready", response_model=schemas.Ready, responses={503: {"model": schemas.Error}}, dependencies=[Depends(reader)], tags=["service"])
    async def ready() -> schemas.Ready:
        """Readiness: the model is loaded and the gallery opens (loads them if needed)."""

        def check() -> schemas.Ready:
            model_id = engine.pipeline.embedder.checkpoint.model_id
            with engine.gallery() as g:
                return schemas.Ready(status="ready", model=model_id, gallery_model=g.model_id, people=len(g.people()))

        try:
            return await compute(check, timeout=False)
        except RnnfaceError as exc:
            raise HttpError(503, f"not ready: {exc}") from None

    @api.post("/detect", response_model=schemas.Detection, responses=errors, dependencies=[Depends(reader)], tags=["faces"])
    async def detect(image: ImageFile) -> schemas.Detection:
        """Every face: box, score, 5 landmarks (largest first)."""
        img = await read_image(image, "image")
        faces = await compute(lambda: engine.pipeline.detect(img))
        return schemas.Detection(width=img.shape[1], height=img.shape[0], faces=[f.to_dict() for f in faces])

    @api.post("/embed", response_model=schemas.Embedding, responses=errors, dependencies=[Depends(reader)], tags=["faces"])
    async def embed(image: ImageFile) -> schemas.Embedding:
        """Every face with its unit embedding from the recurrent model."""
        img = await read_image(image, "image")
        faces, emb = await compute(lambda: engine.pipeline.embed(img))
        model_id = engine.pipeline.embedder.checkpoint.model_id
        return schemas.Embedding(model=model_id, faces=[{**f.to_dict(), "embedding": e.round(6).tolist()} for f, e in zip(faces, emb)])

    @api.post("/verify", response_model=schemas.VerifyResult, responses=errors, dependencies=[Depends(reader)], tags=["recognition"])
    async def verify(
        image_a: ImageFile,
        image_b: ImageFile,
        threshold: Annotated[float | None, Form(ge=-1, le=1, description="Cosine threshold (default: the model's calibrated one).")] = None,
    ) -> schemas.VerifyResult:
        """Are the largest faces of two photos the same person?"""
        a = await read_image(image_a, "image_a")
        b = await read_image(image_b, "image_b")
        result = await compute(lambda: engine.pipeline.verify(a, b, threshold=threshold, names=("image_a", "image_b")))
        return schemas.VerifyResult(**result.to_dict())

    @api.post("/identify", response_model=schemas.IdentifyResult, responses=errors, dependencies=[Depends(reader)], tags=["recognition"])
    async def identify(
        image: ImageFile,
        top_k: Annotated[int, Form(ge=1, le=50, description="People listed per face.")] = 3,
        threshold: Annotated[float | None, Form(ge=-1, le=1, description="Cosine threshold for a name.")] = None,
    ) -> schemas.IdentifyResult:
        """Every face with its top-k people from the gallery, named or `unknown`."""
        img = await read_image(image, "image")

        def run() -> list:
            pipeline = engine.pipeline
            faces, embeddings = pipeline.embed(img)  # detection and embedding need no gallery: it stays free meanwhile
            with engine.gallery() as g:
                return search_faces(g, pipeline, faces, embeddings, top_k=top_k, threshold=threshold)

        results = await compute(run)
        faces = [r.to_dict() for r in results]
        for face in faces:  # a CLI-enrolled face's source is a server path: only its file name goes out
            for match in face["matches"]:
                match["source"] = source_name(match["source"])
        return schemas.IdentifyResult(width=img.shape[1], height=img.shape[0], faces=faces)

    @api.get("/people", response_model=schemas.PeopleList, responses=errors, dependencies=[Depends(reader)], tags=["people"])
    async def list_people() -> schemas.PeopleList:
        """Everyone enrolled."""

        def run() -> schemas.PeopleList:
            with engine.gallery() as g:
                return schemas.PeopleList(model=g.model_id, people=[p.to_dict() for p in g.people()])

        return await compute(run)

    # {name:path}: a name with "/" (sent as %2F, which the server decodes) must still reach its person
    @api.get("/people/{name:path}", response_model=schemas.Person, responses=errors, dependencies=[Depends(reader)], tags=["people"])
    async def get_person(name: NameParam) -> schemas.Person:
        """One enrolled person, with the sources of their faces."""

        def run() -> schemas.Person:
            with engine.gallery() as g:
                faces = list(g.faces(name))
            if not faces:
                raise UnknownPersonError(f"no person named {name!r}")
            return schemas.Person(name=name, faces=len(faces), sources=[source_name(f.source) for f in faces])

        return await compute(run)

    @api.post("/people", status_code=201, response_model=schemas.Enrolled, responses=errors, dependencies=[Depends(writer)], tags=["people"])
    async def enroll(
        name: Annotated[str, Form(min_length=1, max_length=256, description="The person's name.")],
        images: Annotated[list[UploadFile], File(description="One or more photos, one face each.")],
        largest: Annotated[bool, Form(description="Use the largest face of a photo with several.")] = False,
        keep_crops: Annotated[bool, Form(description="Store aligned crops so the gallery can be re-embedded.")] = False,
    ) -> schemas.Enrolled:
        """Enroll (or add photos to) a person, all photos in one transaction; unusable photos are listed, not stored."""
        check_name(name)  # before any upload is decoded
        if len(images) > settings.max_images:
            raise HttpError(413, f"at most {settings.max_images} images per enrollment, got {len(images)}")
        # One rule with the CLI: a photo that cannot be used (not an image, corrupt, no face, several faces) is
        # listed with its reason and the others are enrolled; the request fails only when none can be used.
        labels = [f"upload:{(f.filename or f'image{i}')[:200]}" for i, f in enumerate(images)]
        decoded, skipped = [], []  # (input position, ...) so the skips are listed in upload order
        for i, (upload, label) in enumerate(zip(images, labels)):
            try:
                decoded.append((i, await read_image(upload, f"images[{i}]"), label))
            except (ImageError, HttpError) as exc:
                if isinstance(exc, ImageTooLargeError) or getattr(exc, "status", 415) == 413:
                    raise  # a limit refuses the whole request
                skipped.append((i, label, str(exc).split(": ", 1)[-1]))

        def run() -> schemas.Enrolled:
            pipeline = engine.pipeline
            model_id = pipeline.embedder.checkpoint.model_id
            records = []
            for i, img, label in decoded:
                try:
                    records.append(face_record(pipeline, img, label, largest=largest, keep_crop=keep_crops, largest_option="largest=true"))
                except RnnfaceError as exc:
                    skipped.append((i, label, str(exc)))
            skipped.sort()
            if not records:
                raise NoFaceError(f"nothing enrolled for {name!r}: " + "; ".join(f"{label}: {reason}" for _, label, reason in skipped))
            with engine.gallery() as g:
                stored = g.enroll(name, records, model_id)
                pool_template(g, name, engine.pool)
            already = len(records) - len(stored)
            return schemas.Enrolled(name=name, faces=len(stored), already=already, skipped=[{"image": label, "reason": r} for _, label, r in skipped])

        return await compute(run, timeout=False)  # a write runs to completion: its transaction commits or not at all

    @api.delete("/people/{name:path}", response_model=schemas.Removed, responses=errors, dependencies=[Depends(writer)], tags=["people"])
    async def delete_person(name: NameParam) -> schemas.Removed:
        """Delete a person with every embedding, crop and source reference."""

        def run() -> schemas.Removed:
            with engine.gallery() as g:
                return schemas.Removed(name=name, faces=g.remove(name))

        return await compute(run, timeout=False)

    app.include_router(api)

    def authorize(scope) -> tuple[int, str] | None:
        """The key check of the routes, decided from the headers alone, before any body byte is read."""
        path, method = scope.get("path", ""), scope.get("method", "GET")
        write = path.startswith("/api/v1/people") and method in ("POST", "DELETE")
        read = (path.startswith("/api/v1/") and path != "/api/v1/health") or path == "/openapi.json"
        if not write and not (read and not settings.open_reads):
            return None
        key = dict(scope.get("headers") or []).get(b"x-api-key")
        try:
            check_key(key.decode("latin-1") if key is not None else None, "write routes" if write else "read routes")
        except HttpError as exc:
            return exc.status, str(exc)
        return None

    app.add_middleware(
        BodyGuard,
        max_bytes=settings.max_upload_bytes * settings.max_images + 65_536,
        read_timeout_s=settings.body_timeout_s,
        authorize=authorize,
    )
    static = resources.files("rnnface.service") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"))

    return app
