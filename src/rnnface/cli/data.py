"""Dataset commands: prepare (detect and crop a dataset once), features (a front-end's maps, once)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnface.cli.options import TYPER

app = typer.Typer(**TYPER)


@app.command()
def prepare(
    data_dir: Annotated[Path, typer.Argument(help="Identity-folder dataset (<Person>/<img>), e.g. LFW.")],
    out: Annotated[Path, typer.Option(help="Cache directory to write (reused when complete).")],
    crop: Annotated[
        str,
        typer.Option(
            help="How faces are cut out: arcface (5-point template) or facenet (box crop, the shipped model's)."
        ),
    ] = "arcface",
    size: Annotated[int | None, typer.Option(help="Side of the template crops in pixels (arcface: 112).")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes (default: all cores).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a complete cache exists.")] = False,
) -> None:
    """Detect and crop every image once into a compact cache for training and evaluation."""
    from dataclasses import replace

    from rnnface.alignment import CROPS
    from rnnface.data.prepare import PrepareConfig
    from rnnface.data.prepare import prepare as run_prepare

    if crop not in CROPS:
        raise typer.BadParameter(f"--crop must be one of {', '.join(CROPS)}")
    spec = CROPS[crop]
    if size is not None:
        if spec.method != "template":
            raise typer.BadParameter(f"--size applies to template crops; the {crop} crop is {spec.size} px")
        spec = replace(spec, size=size)
    cache = run_prepare(data_dir, out, PrepareConfig(crop=spec), workers=workers, force=force)
    meta = cache.meta
    counts = meta["counts"]
    typer.echo(
        f"{'reused' if cache.reused else 'built'} {out}: {meta['images']} images of {meta['people']} people, "
        f"{counts['ok']} aligned on a detected face, {counts['no_face']} with no face detected (centre-crop fallback), "
        f"{counts['unreadable']} unreadable; built in {meta['seconds']:.0f} s with {meta['workers']} workers"
    )


@app.command()
def features(
    cache_dir: Annotated[Path, typer.Argument(help="Face cache made with `rnnface prepare --crop facenet`.")],
    views: Annotated[int, typer.Option(help="Views per face: the crop, its mirror, then random jitters.")] = 3,
    workers: Annotated[int | None, typer.Option(help="Processes (default: all cores).")] = None,
    force: Annotated[bool, typer.Option(help="Recompute even if a complete feature cache exists.")] = False,
) -> None:
    """Run the FaceNet front-end once over a face cache, keeping the feature maps hybrid heads train on."""
    from rnnface.data.features import build_features
    from rnnface.data.prepare import FaceCache

    feats = build_features(FaceCache.open(cache_dir), views=views, workers=workers, force=force)
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in feats.arrays.items())
    typer.echo(f"{feats.root}: {shapes}; {feats.meta['seconds']:.0f} s with {feats.meta['workers']} workers")
