"""The video command: face tracks of a file, camera or stream, recognized as wholes."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from rnnface.cli.options import (
    TYPER,
    DeviceOpt,
    FpirOpt,
    GalleryOpt,
    JsonOpt,
    MinScoreOpt,
    ModelOpt,
    RuntimeOpt,
    ThresholdOpt,
    detector,
    pipeline,
    print_json,
)

app = typer.Typer(**TYPER)


def _print_report(report, source: str, named: bool) -> None:
    duration = report.frames / report.video_fps
    typer.echo(
        f"{source}: {report.frames} frames ({duration:.1f} s), detection every {report.detect_every}, "
        f"{report.processing_fps:.1f} frames/s processed; pooling: {report.pooling}"
    )
    if not report.tracks:
        typer.echo("no face tracks found")
    elif not named:
        typer.echo("no gallery enrolled yet: every track is `unknown` (enroll people, or pass --gallery)")
    else:
        typer.echo(f"names at threshold {report.threshold.value:.3f}: {report.threshold.describe()}")
    for t in report.tracks:
        span = f"{t.first_time:.1f}-{t.last_time:.1f} s"
        typer.echo(f"  track {t.id}: {t.person} ({t.confidence:.3f}) {span}, {t.frames_used} faces embedded")


@app.command()
def video(
    source: Annotated[str, typer.Argument(help="Video file, camera index (0) or stream URL (rtsp://, http://).")],
    gallery: GalleryOpt = None,
    model: ModelOpt = None,
    every: Annotated[int, typer.Option(min=1, help="Detect faces on every Nth frame.")] = 3,
    pooling: Annotated[
        str,
        typer.Option(
            help="How a track becomes one embedding: auto (shipped aggregator), mean, or an aggregator checkpoint."
        ),
    ] = "auto",
    threshold: ThresholdOpt = None,
    fpir: FpirOpt = 0.01,
    as_json: JsonOpt = False,
    out_json: Annotated[Path | None, typer.Option("--out-json", help="Write the timeline as JSON here.")] = None,
    out_video: Annotated[
        Path | None, typer.Option("--out-video", help="Write the annotated video (.mp4) here.")
    ] = None,
    timeline: Annotated[Path | None, typer.Option(help="Write the who-is-on-screen picture (.png) here.")] = None,
    max_frames: Annotated[
        int | None, typer.Option(min=1, help="Stop after N frames (needed for endless live sources).")
    ] = None,
    min_face: Annotated[
        int, typer.Option("--min-face", min=12, help="Smallest face to find, in pixels (smaller is slower).")
    ] = 40,
    min_score: MinScoreOpt = None,
    runtime: RuntimeOpt = None,
    device: DeviceOpt = None,
    reembed: Annotated[
        int, typer.Option(min=1, help="Re-embed a face that plainly continues its track every Nth detection.")
    ] = 2,
) -> None:
    """Track and recognize the faces of a video: a JSON timeline, an annotated video and a timeline picture."""
    import json

    from rnnface.aggregation.pooling import resolve_pooling
    from rnnface.errors import RnnfaceError
    from rnnface.gallery import naming_gallery
    from rnnface.io.paths import atomic_output, check_output
    from rnnface.video.process import process_video
    from rnnface.video.render import VideoWriter, draw_timeline
    from rnnface.video.source import OPEN_TIMEOUT_MS, VideoError, open_source

    for path, what in ((out_json, "timeline JSON"), (out_video, "annotated video"), (timeline, "timeline picture")):
        if path is not None:
            check_output(path, what)  # before the whole video is processed
    pipe = pipeline(model, runtime, detector(min_score, min_face), device)
    pool = resolve_pooling(pooling, pipe.model_id)
    with ExitStack() as stack:
        src = open_source(source)
        stack.callback(src.close)
        g = stack.enter_context(naming_gallery(gallery or None))
        if src.live and max_frames is None:
            typer.echo("live source: stop with Ctrl-C, or pass --max-frames", err=True)
        writer = stack.enter_context(VideoWriter(out_video, src.fps)) if out_video else None
        report = process_video(src, pipe, g, pool, every, threshold, writer, max_frames, reembed=reembed, fpir=fpir)
        if report.frames == 0:
            raise VideoError(f"{source}: no frame could be decoded")
    duration = report.frames / report.video_fps
    if out_json:
        with atomic_output(out_json, "timeline JSON") as tmp:
            tmp.write_text(json.dumps(report.to_dict(), indent=2))
    if timeline:
        draw_timeline(report.tracks, duration, timeline, cuts=tuple(c / report.video_fps for c in report.cuts))
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report, source, g is not None)
        for path, what in ((out_json, "timeline JSON"), (out_video, "annotated video"), (timeline, "timeline picture")):
            if path:
                typer.echo(f"{what}: {path}")
    if src.stalled:
        raise RnnfaceError(
            f"{source}: the stream stalled: no frame for {OPEN_TIMEOUT_MS // 1000} s after {report.frames} frames; "
            "results cover what was received"
        )
    if report.truncated:
        why = "the stream stalled or was cut off" if src.live else "truncated or damaged file"
        raise RnnfaceError(
            f"{source}: the video ended early ({report.frames} of {src.frames} frames): {why}; results cover what "
            "was decoded"
        )
