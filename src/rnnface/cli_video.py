"""Video and multi-image commands of the `rnnface` CLI: video, train-aggregator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from rnnface.cli_gallery import GalleryOpt, ModelOpt

app = typer.Typer()

@app.command()
def video(
    source: Annotated[str, typer.Argument(help="Video file, camera index (0) or stream URL (rtsp://, http://).")],
    gallery: GalleryOpt = None,
    model: ModelOpt = None,
    every: Annotated[int, typer.Option(min=1, help="Detect faces on every Nth frame.")] = 3,
    pooling: Annotated[str, typer.Option(help="How a track becomes one embedding: auto (shipped aggregator), mean, or an aggregator checkpoint.")] = "auto",
    threshold: Annotated[Optional[float], typer.Option(help="Cosine threshold for a name (default: the model's).")] = None,
    out_json: Annotated[Optional[Path], typer.Option("--json", help="Write the timeline as JSON here.")] = None,
    out_video: Annotated[Optional[Path], typer.Option("--out-video", help="Write the annotated video (.mp4) here.")] = None,
    timeline: Annotated[Optional[Path], typer.Option(help="Write the who-is-on-screen picture (.png) here.")] = None,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="Stop after N frames (needed for endless live sources).")] = None,
    min_face: Annotated[int, typer.Option(min=12, help="Smallest face to find, in pixels (smaller is slower).")] = 40,
    reembed: Annotated[int, typer.Option(min=1, help="Re-embed a face that plainly continues its track every Nth detection.")] = 2,
) -> None:
    """Track and recognize the faces of a video: a JSON timeline, an annotated video and a timeline picture."""
    from rnnface.aggregation.pooling import resolve_pooling
    from rnnface.detection import DEFAULT_DETECTOR, create_detector
    from rnnface.errors import RnnfaceError
    from rnnface.gallery import open_gallery
    from rnnface.io.paths import check_output
    from rnnface.recognition import FacePipeline
    from rnnface.video.process import process_video
    from rnnface.video.render import VideoWriter, draw_timeline
    from rnnface.video.source import OPEN_TIMEOUT_MS, VideoError, open_source

    for path, what in ((out_json, "timeline JSON"), (out_video, "annotated video"), (timeline, "timeline picture")):
        if path is not None:
            check_output(path, what)  # before the whole video is processed
    pipeline = FacePipeline(model=model, detector=create_detector(DEFAULT_DETECTOR, min_face_size=min_face))
    pool, pooling_name = resolve_pooling(pooling, pipeline.embedder.checkpoint.model_id)
    src = open_source(source)
    if src.live and max_frames is None:
        typer.echo("live source: stop with Ctrl-C, or pass --max-frames", err=True)
    writer = VideoWriter(out_video, src.fps) if out_video else None
    try:
        with open_gallery(gallery or None) as g:
            report = process_video(src, pipeline, g, pool, pooling_name, every, threshold, writer, max_frames, reembed=reembed)
    finally:
        src.close()
        if writer is not None:
            writer.close()
    if report.frames == 0:
        raise VideoError(f"{source}: no frame could be decoded")
    duration = report.frames / report.video_fps
    if out_json:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(report.to_dict(), indent=2))
    if timeline:
        draw_timeline(report.tracks, duration, timeline)
    typer.echo(f"{source}: {report.frames} frames ({duration:.1f} s), detection every {report.detect_every}, "
               f"{report.processing_fps:.1f} frames/s processed; pooling: {report.pooling}")
    if not report.tracks:
        typer.echo("no face tracks found")
    for t in report.tracks:
        typer.echo(f"  track {t.id}: {t.person} ({t.confidence:.3f}) {t.first_time:.1f}-{t.last_time:.1f} s, {t.frames_used} frames")
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
        raise RnnfaceError(f"{source}: the video ended early ({report.frames} of {src.frames} frames): {why}; results cover what was decoded")


@app.command("train-aggregator")
def train_aggregator(
    backbone: Annotated[Path, typer.Option(help="Checkpoint whose embeddings the aggregator pools.")],
    cache: Annotated[Path, typer.Option(help="Aligned-face cache (rnnface prepare).")] = Path("cache/lfw112"),
    out: Annotated[Path, typer.Option(help="Output directory (aggregator.pt, metrics.csv).")] = Path("runs/aggregator"),
    exclude_folds: Annotated[str, typer.Option(help="LFW View-2 folds whose people are left out, e.g. 0,1,2,3,4 ('' for none).")] = "",
    steps: Annotated[int, typer.Option(min=1, help="Training steps (batches of sets).")] = 600,
    variants: Annotated[int, typer.Option(min=1, help="Versions of each image: 1 clean + degraded ones.")] = 3,
    cell: Annotated[str, typer.Option(help="gru, lstm or rnn.")] = "gru",
    correction: Annotated[bool, typer.Option(help="Learn a correction beside the attention weights (off: attention-weighted mean).")] = True,
    anchor: Annotated[float, typer.Option(help="Weight of the pull towards mean pooling (0 = none).")] = 5.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train the recurrent aggregator on sets of LFW faces (identity-disjoint when folds are excluded)."""
    from rnnface.training.aggregator import AggregatorTrainConfig, train_aggregator as run

    folds = tuple(int(f) for f in exclude_folds.split(",") if f.strip())
    cfg = AggregatorTrainConfig(backbone=str(backbone), cache=str(cache), out=str(out), exclude_folds=folds, steps=steps, variants=variants, cell=cell, correction=correction, anchor=anchor, seed=seed)
    path = run(cfg)
    typer.echo(f"aggregator: {path}")
