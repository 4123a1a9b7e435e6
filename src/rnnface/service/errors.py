"""Every error the service answers, in one place: which status each kind of error gets, and one JSON shape.

Responses never carry a server path: messages that quote one are cut to its file name.
"""

from __future__ import annotations

import logging
import re
from pathlib import PurePath

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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
    SeveralFacesError,
    UnknownFaceError,
    UnknownPersonError,
)

log = logging.getLogger("rnnface.service")

#: HTTP status for each kind of error a user can cause (most specific first; anything else rnnface raises: 422).
STATUS_OF: list[tuple[type[Exception], int]] = [
    (ImageTooLargeError, 413),
    (ImageError, 422),
    (NoFaceError, 422),
    (SeveralFacesError, 422),
    (FaceIndexError, 422),
    (UnknownPersonError, 404),
    (UnknownFaceError, 404),
    (EmptyGalleryError, 409),
    (ModelMismatchError, 409),
    (ReadOnlyGalleryError, 503),
    (GalleryUnavailableError, 503),
    (GalleryError, 422),
    (ModelError, 503),
    (RnnfaceError, 422),
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


def error_response(status: int, message: str, kind: str, known: tuple[str, ...] = ()) -> JSONResponse:
    """The one error shape: {"detail": what went wrong, "type": its kind}."""
    return JSONResponse({"detail": redact(message, known), "type": kind}, status_code=status)


def status_of(exc: RnnfaceError) -> int:
    return next(code for cls, code in STATUS_OF if isinstance(exc, cls))


def install_error_handlers(app: FastAPI, known_paths: tuple[str, ...]) -> None:
    """Answer every error of `app` in the one shape, with paths in `known_paths` cut to their names."""

    @app.exception_handler(HttpError)
    async def http_error(request: Request, exc: HttpError) -> JSONResponse:
        return error_response(exc.status, str(exc), "request", known_paths)

    @app.exception_handler(RnnfaceError)
    async def rnnface_error(request: Request, exc: RnnfaceError) -> JSONResponse:
        return error_response(status_of(exc), str(exc), type(exc).__name__, known_paths)

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own refusals (multipart limits: "Too many files", "Part exceeded maximum size"; 404; 405)
        return error_response(exc.status_code, str(exc.detail), "request")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error_response(422, "; ".join(parts) or "invalid request", "validation")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error (logged on the server)", "internal")
