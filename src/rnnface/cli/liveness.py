"""Liveness commands: `liveness` (is this face live?) and `authenticate` (live, and this enrolled person?)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnface.cli.options import (
    TYPER,
    DeviceOpt,
    GalleryOpt,
    JsonOpt,
    MinScoreOpt,
    ModelOpt,
    RuntimeOpt,
    detector,
    pipeline,
    print_json,
    threshold_option,
)
from rnnface.operating import THRESHOLD_HELP
from rnnface.settings import Settings

app = typer.Typer(**TYPER)

LivenessModelOpt = Annotated[
    Path | None, typer.Option("--liveness-model", help="Liveness checkpoint (default: the shipped one).")
]
AuthThresholdOpt = Annotated[
    str | None,
    typer.Option(
        "--threshold",
        help=f"A stricter identity threshold than the operator's: {THRESHOLD_HELP}. The default and the loosest "
        "allowed is RNNFACE_AUTHENTICATE_THRESHOLD (strict, FAR 1e-4, unless the operator set another); a looser "
        "one is refused.",
        callback=lambda value: threshold_option(value),
    ),
]
CameraOpt = Annotated[int | None, typer.Option("--camera", help="Read this camera (index) instead of a file.")]
ChallengeOpt = Annotated[
    bool, typer.Option("--challenge", help="Also require a head turn (ask the person to turn their head).")
]
EveryOpt = Annotated[int, typer.Option(min=1, help="Read every Nth frame of a video.")]
FramesOpt = Annotated[int, typer.Option("--frames", min=1, help="Most frames read (after --every).")]


def _source(path: Path | None, camera: int | None) -> str | int:
    if (path is None) == (camera is None):
        raise typer.BadParameter("give a photo or video file, or --camera N (one of them)")
    return camera if camera is not None else str(path)


def _checker(liveness_model: Path | None, min_score: float | None, embedder: tuple | None = None):
    """The liveness checker, its model loaded now (and, for `embedder` = (model, runtime, device), the
    embedding model too), so a missing model fails before a clip is read."""
    from rnnface.liveness.check import LivenessChecker
    from rnnface.recognition.pipeline import FacePipeline

    faces = detector(min_score, None, False)
    pipe = FacePipeline(detector=faces) if embedder is None else pipeline(embedder[0], embedder[1], faces, embedder[2])
    checker = LivenessChecker(pipe, liveness_model)
    checker.load()
    return checker


@app.command()
def liveness(
    source: Annotated[Path | None, typer.Argument(help="A photo or a video file.")] = None,
    camera: CameraOpt = None,
    challenge: ChallengeOpt = False,
    every: EveryOpt = 3,
    frames: FramesOpt = 32,
    liveness_model: LivenessModelOpt = None,
    min_score: MinScoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Is the face live or a printed photo? A photo is judged alone, a clip by its frames together (per-frame
    scores with --json). Exit 0 live, 1 not live, 2 when it cannot be judged."""
    from rnnface.liveness.clip import read_clip

    clip = read_clip(_source(source, camera), every, frames)
    result, _ = _checker(liveness_model, min_score).check(clip, challenge=challenge)
    if as_json:
        print_json(result.to_dict())
    else:
        verdict = "live" if result.live else "not live"
        typer.echo(
            f"{verdict}: {result.reason} (live score {result.score:.3f}, threshold {result.threshold:.3f}, "
            f"{result.window}-frame windows, {len(result.faces)} of {len(clip)} frames with a face)"
        )
        if result.challenge is not None:
            typer.echo(
                f"head-turn challenge: {'passed' if result.challenge.passed else 'failed'}: {result.challenge.reason}"
            )
    raise typer.Exit(0 if result.live else 1)


@app.command()
def authenticate(
    name: Annotated[str, typer.Argument(help="The enrolled person to authenticate as.")],
    source: Annotated[Path | None, typer.Argument(help="A video file of the person (or --camera N).")] = None,
    camera: CameraOpt = None,
    gallery: GalleryOpt = None,
    threshold: AuthThresholdOpt = None,
    challenge: ChallengeOpt = False,
    every: EveryOpt = 3,
    frames: FramesOpt = 32,
    model: ModelOpt = None,
    liveness_model: LivenessModelOpt = None,
    runtime: RuntimeOpt = None,
    device: DeviceOpt = None,
    min_score: MinScoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Is this NAME, live? Liveness, then 1:1 against NAME's gallery template at the operator's threshold
    (RNNFACE_AUTHENTICATE_THRESHOLD, strict: FAR 1e-4) or a stricter --threshold. Nothing is enrolled or changed.
    Exit 0 accepted, 1 rejected, 2 when it cannot be judged."""
    from rnnface.gallery import open_gallery
    from rnnface.liveness.authenticate import authenticate_frames
    from rnnface.liveness.clip import read_clip

    checker = _checker(liveness_model, min_score, (model, runtime, device))
    with open_gallery(gallery, create=False) as g:
        clip = read_clip(_source(source, camera), every, frames)
        floor = Settings.from_env().authenticate_threshold
        result = authenticate_frames(g, checker, name, clip, threshold, challenge, floor=floor)
    if as_json:
        print_json(result.to_dict())
    else:
        live = result.liveness
        typer.echo(f"{result.decision}: {name}")
        typer.echo(
            f"  liveness: {'live' if live.live else 'not live'}: {live.reason} (score {live.score:.3f}, "
            f"threshold {live.threshold:.3f}, {len(live.faces)} frames with a face)"
        )
        typer.echo(
            f"  identity: similarity {result.similarity:.4f} to {name}'s template, threshold "
            f"{result.threshold.value:.4f} ({result.threshold.describe()})"
        )
    raise typer.Exit(0 if result.accepted else 1)
