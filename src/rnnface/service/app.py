"""The FastAPI application: versioned JSON routes under /api/v1, the web page at /, API docs at /docs.

Built by `create_app(settings)`; the model loads on the first request that needs it (or on /ready),
inference runs in worker threads off the event loop, and no state lives at module level.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from pathlib import PurePath

import anyio
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from rnnface import __version__
from rnnface.service.access import READ, admitter
from rnnface.service.body import BodyGuard
from rnnface.service.engine import Engine
from rnnface.service.errors import install_error_handlers
from rnnface.service.routes import api
from rnnface.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application with its own engine (model + gallery) and settings."""
    settings = settings or Settings.from_env()
    engine = Engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await anyio.to_thread.run_sync(engine.close)

    # FastAPI's own /docs loads Swagger UI from a CDN (blank offline, a third-party script on an admin page):
    # ours serves the copy that ships in the swagger-ui-bundle package.
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
    known = {str(p) for p in (settings.gallery, settings.model) if p} | {str(PurePath(settings.gallery).parent)}
    install_error_handlers(app, tuple(known - {"", "."}))
    app.include_router(api)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[READ])
    async def openapi_spec() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[READ])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="rnnface API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )

    app.add_middleware(BodyGuard, admit=admitter(app, settings), body_timeout_s=settings.body_timeout_s)
    static = resources.files("rnnface.service") / "static"
    app.mount("/static/swagger", StaticFiles(directory=str(swagger_ui_path)), name="swagger")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"))

    return app
