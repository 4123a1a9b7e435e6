"""The service and the main job: serve (HTTP API, web page, API docs), demo (the whole job on LFW)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnface.cli.options import TYPER, GalleryOpt, MinFaceOpt, MinScoreOpt, ModelOpt, image_root, pipeline

app = typer.Typer(**TYPER)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (each loads its own model).")] = 1,
    gallery: GalleryOpt = None,
    model: ModelOpt = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Key that write routes need in X-API-Key (default: $RNNFACE_API_KEY; unset: writes are refused)."
        ),
    ] = None,
    min_score: MinScoreOpt = None,
    min_face: MinFaceOpt = None,
) -> None:
    """Run the HTTP API (/api/v1; interactive docs at /docs, spec at /openapi.json) and the web page (/).
    Every other setting is an RNNFACE_* variable (see the README)."""
    import os

    import uvicorn

    from rnnface.settings import Settings

    overrides = {
        "RNNFACE_GALLERY": gallery,
        "RNNFACE_MODEL": str(model) if model else None,
        "RNNFACE_API_KEY": api_key,
        "RNNFACE_MIN_SCORE": None if min_score is None else str(min_score),
        "RNNFACE_MIN_FACE": None if min_face is None else str(min_face),
    }
    os.environ.update({k: v for k, v in overrides.items() if v})  # the worker processes read the settings afresh
    settings = Settings.from_env()  # fail here, before binding, on a malformed setting
    writes = "need X-API-Key" if settings.api_key else "disabled: no RNNFACE_API_KEY"
    typer.echo(
        f"rnnface service on http://{host}:{port}/ (API docs at /docs; gallery {settings.gallery}; writes {writes})"
    )
    uvicorn.run(
        "rnnface.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        limit_concurrency=settings.max_connections,  # more connections at once are answered 503
    )


@app.command()
def demo(
    data: Annotated[
        Path | None, typer.Option(help="LFW root holding lfw/ and pairs.txt (default: $RNNFACE_DATA).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the gallery and the annotated pictures.")] = Path(
        "demo-out"
    ),
    model: ModelOpt = None,
    people: Annotated[int, typer.Option(min=1, help="People to enroll.")] = 6,
    strangers: Annotated[int, typer.Option(min=0, help="People left out, to be answered `unknown`.")] = 4,
) -> None:
    """The main job on LFW: enroll people, identify them and strangers in other photos, verify pairs, draw the
    results."""
    from rnnface.lab.demo import run_demo

    run_demo(image_root(data), out, pipeline(model), typer.echo, people=people, strangers=strangers)
