"""Who may call what, with how much: every route declares its access (open, read or write) and the images it
takes, once. One rule decides the access from the X-API-Key header: the route's dependency enforces it, and the
body guard reads the same declarations to refuse a request before any byte of its body is read, and to cut off
a body past what the route can take."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Request, params
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from starlette.routing import Match

from rnnface.service.body import Admission
from rnnface.service.errors import HttpError
from rnnface.settings import Settings

Access = Literal["open", "read", "write"]
KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Needed by write routes (and reads when RNNFACE_OPEN_READS=false)."
)


def refusal(settings: Settings, access: Access, key: str | None) -> HttpError | None:
    """Why a request of `access` with `key` is refused (401), or None when it may go on."""
    if access == "open" or (access == "read" and settings.open_reads):
        return None
    expected = settings.api_key.get_secret_value() if settings.api_key else None
    if expected is None:
        return HttpError(
            401, f"{access} routes need an API key, and this server has none configured (set RNNFACE_API_KEY)"
        )
    if key is None or not secrets.compare_digest(key.encode(), expected.encode()):
        return HttpError(401, "missing or wrong API key (X-API-Key header)")
    return None


class Requires:
    """The dependency that declares a route's access and enforces it."""

    def __init__(self, access: Access) -> None:
        self.access = access

    async def __call__(self, request: Request, key: Annotated[str | None, Depends(KEY_HEADER)]) -> None:
        refused = refusal(request.app.state.settings, self.access, key)
        if refused is not None:
            raise refused


READ: params.Depends = Depends(Requires("read"))
WRITE: params.Depends = Depends(Requires("write"))


class Takes:
    """The dependency that declares how many images a route's body carries (its body limit follows)."""

    def __init__(self, images: int | None | Literal["frames"]) -> None:
        self.images = images  # None: as many as RNNFACE_MAX_IMAGES allows; "frames": a clip's, RNNFACE_MAX_FRAMES

    async def __call__(self) -> None:
        return None


def takes(images: int | None | Literal["frames"]) -> params.Depends:
    """`dependencies=[takes(1)]`: the route's body holds `images` uploads (None: up to RNNFACE_MAX_IMAGES;
    "frames": a clip's frames, up to RNNFACE_MAX_FRAMES of RNNFACE_MAX_FRAME_BYTES each)."""
    return Depends(Takes(images))


#: What a body may hold beside its images: the multipart framing and form fields.
FORM_BYTES = 65_536


def _routes(routes: list) -> list:
    """Every route, those of included routers too (FastAPI keeps an included router as one entry)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out += _routes(inner.routes) if inner is not None else [route]
    return out


def _declared(app: FastAPI, scope: dict) -> list:
    """The dependencies of the route a request goes to ([] when it goes to none of the API's routes)."""
    for route in _routes(app.router.routes):
        if isinstance(route, APIRoute) and route.matches(scope)[0] is Match.FULL:
            return [d.dependency for d in route.dependencies]
    return []


def access_of(app: FastAPI, scope: dict) -> Access:
    """The access the route a request goes to declares ("open" for anything that declares none)."""
    return next((d.access for d in _declared(app, scope) if isinstance(d, Requires)), "open")


def body_limit(app: FastAPI, scope: dict, settings: Settings) -> int:
    """Most bytes the body of a request may have: the images its route takes at their size limit, and a form."""
    images = next((d.images for d in _declared(app, scope) if isinstance(d, Takes)), 0)
    if images == "frames":
        return settings.max_frames * settings.max_frame_bytes + FORM_BYTES
    count = settings.max_images if images is None else images
    return count * settings.max_upload_bytes + FORM_BYTES


def admitter(app: FastAPI, settings: Settings):
    """The body guard's check, from the headers alone: a refusal, or the body limit of the request's route."""

    def admit(scope: dict) -> Admission:
        key = dict(scope.get("headers") or []).get(b"x-api-key")
        refused = refusal(settings, access_of(app, scope), key.decode("latin-1") if key is not None else None)
        limit = body_limit(app, scope, settings)
        return Admission(None if refused is None else (refused.status, str(refused)), limit)

    return admit
