"""Dataset commands: prepare (detect and crop a dataset once), features (a front-end's maps, once), and
derive-mobilefacenet (the shipped MobileFaceNet weights, from its TFLite file)."""

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
    detector: Annotated[str | None, typer.Option(help="Detector backend (default: the one users get).")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes (default: all cores).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a complete cache exists.")] = False,
) -> None:
    """Detect and crop every image once into a compact cache for training and evaluation."""
    from dataclasses import replace

    from rnnface.alignment import CROPS
    from rnnface.lab.data.prepare import PrepareConfig
    from rnnface.lab.data.prepare import prepare as run_prepare

    if crop not in CROPS:
        raise typer.BadParameter(f"--crop must be one of {', '.join(CROPS)}")
    spec = CROPS[crop]
    if size is not None:
        if spec.method != "template":
            raise typer.BadParameter(f"--size applies to template crops; the {crop} crop is {spec.size} px")
        spec = replace(spec, size=size)
    config = PrepareConfig(crop=spec) if detector is None else PrepareConfig(crop=spec, detector=detector)
    cache = run_prepare(data_dir, out, config, workers=workers, force=force)
    meta = cache.meta
    counts = meta["counts"]
    typer.echo(
        f"{'reused' if cache.reused else 'built'} {out}: {meta['images']} images of {meta['people']} people, "
        f"{counts['ok']} aligned on a detected face, {counts['no_face']} with no face detected (centre-crop fallback), "
        f"{counts['unreadable']} unreadable; built in {meta['seconds']:.0f} s with {meta['workers']} workers"
    )


@app.command()
def features(
    cache_dir: Annotated[Path, typer.Argument(help="Face cache made with `rnnface prepare` at the front-end's crop.")],
    frontend: Annotated[
        str | None, typer.Option(help="facenet or mobilefacenet (default: the one whose crop the cache holds).")
    ] = None,
    views: Annotated[int, typer.Option(help="Views per face: the crop, its mirror, then random jitters.")] = 3,
    workers: Annotated[int | None, typer.Option(help="Processes (default: all cores).")] = None,
    force: Annotated[bool, typer.Option(help="Recompute even if a complete feature cache exists.")] = False,
    join: Annotated[
        Path | None,
        typer.Option(
            help="Another face cache of the same images cut for the other CNN, its features built: write the joint "
            "feature cache a two-CNN fusion head reads (nothing is recomputed or copied)."
        ),
    ] = None,
) -> None:
    """Run a pretrained front-end once over a face cache, keeping the feature maps hybrid heads train on."""
    from rnnface.lab.data.features import build_features, join_features
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.models.frontends import SINGLE, frontend_for_crop

    cache = FaceCache.open(cache_dir)
    if join is not None:
        feats = join_features(cache, FaceCache.open(join))
        typer.echo(f"{feats.root}: {', '.join(f'{k} {tuple(v.shape)}' for k, v in feats.arrays.items())}")
        return
    if frontend is None:
        frontend = getattr(frontend_for_crop(cache.crop), "name", "facenet")
    if frontend not in SINGLE:
        raise typer.BadParameter(f"--frontend must be one of {', '.join(SINGLE)}")
    feats = build_features(cache, views=views, workers=workers, force=force, frontend=frontend)
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in feats.arrays.items())
    typer.echo(f"{feats.root}: {shapes}; {feats.meta['seconds']:.0f} s with {feats.meta['workers']} workers")


@app.command("derive-mobilefacenet")
def derive_mobilefacenet(
    tflite: Annotated[Path, typer.Argument(help="MobileFaceNet.tflite (see ../shared/models/README.md).")],
    out: Annotated[Path, typer.Option(help="Where to write the weights.")] = Path(
        "src/rnnface/weights/mobilefacenet.pt"
    ),
) -> None:
    """Derive the shipped MobileFaceNet weights from its TFLite file (needs the tflite extra)."""
    from rnnface.models.mobilefacenet_tflite import derive_weights

    typer.echo(f"wrote {out} (SHA-256 {derive_weights(tflite, out)})")
