"""Who may call what: every route declares its access (open, read or write) once, and one rule decides it
from the X-API-Key header. The route's dependency enforces it, and the body guard reads the same declaration
to refuse a request before any byte of its body is read."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from starlette.routing import Match

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


READ, WRITE = Depends(Requires("read")), Depends(Requires("write"))


def _routes(routes: list) -> list:
    """Every route, those of included routers too (FastAPI keeps an included router as one entry)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out += _routes(inner.routes) if inner is not None else [route]
    return out


def access_of(app: FastAPI, scope: dict) -> Access:
    """The access the route a request goes to declares ("open" for anything that declares none)."""
    for route in _routes(app.router.routes):
        if isinstance(route, APIRoute) and route.matches(scope)[0] is Match.FULL:
            declared = [d.dependency.access for d in route.dependencies if isinstance(d.dependency, Requires)]
            return declared[0] if declared else "open"
    return "open"


def authorizer(app: FastAPI, settings: Settings):
    """The body guard's check: (status, message) of a refusal decided from the headers alone, else None."""

    def authorize(scope: dict) -> tuple[int, str] | None:
        key = dict(scope.get("headers") or []).get(b"x-api-key")
        refused = refusal(settings, access_of(app, scope), key.decode("latin-1") if key is not None else None)
        return None if refused is None else (refused.status, str(refused))

    return authorize
