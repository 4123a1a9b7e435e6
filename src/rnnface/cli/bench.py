"""`rnnface bench`: benchmarks that print a table and write a JSON report (see `rnnface.lab.benchmarks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnface.cli.options import DEFAULT_CACHE, TYPER, CacheOpt, DataOpt, image_root
from rnnface.io.paths import check_output

app = typer.Typer(help="Benchmarks: print a table and write a JSON report.", no_args_is_help=True, **TYPER)
OutOpt = Annotated[Path, typer.Option(help="JSON report to write.")]


def _sizes(text: str) -> list[int]:
    try:
        return [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"sizes are comma-separated numbers of faces, got {text!r}") from None


@app.command("pipeline")
def bench_pipeline(
    data: DataOpt = None,
    images: Annotated[int, typer.Option(min=1, help="Images to time detect+align on.")] = 100,
    out: OutOpt = Path("reports/bench.json"),
) -> None:
    """Time detect+align per image and each backbone's embedding per face (batch 1 and 32)."""
    from rnnface.lab.benchmarks.pipeline import pipeline_table, run_pipeline_bench
    from rnnface.lab.benchmarks.report import write_report
    from rnnface.settings import packaged_model

    check_output(out, "report")
    report = run_pipeline_bench(image_root(data), images, packaged_model())
    write_report(report, out)
    typer.echo(pipeline_table(report))
    typer.echo(f"written: {out}")


@app.command("gallery")
def bench_gallery(
    sizes: Annotated[str, typer.Option(help="Gallery sizes (faces), comma-separated.")] = "10000,100000,1000000",
    indexes: Annotated[
        str,
        typer.Option(help="Index kinds to measure, KIND or KIND:BREADTH (HNSW efSearch, IVF nprobe), comma-separated."),
    ] = "flat,pq,lsh,hnsw:256,ivf:256",
    cache: CacheOpt = DEFAULT_CACHE,
    queries: Annotated[
        int, typer.Option(min=1, help="Queries per size: half real held-out LFW photos, half generated.")
    ] = 1000,
    uniform: Annotated[str, typer.Option(help="Sizes of the uniform-random stress case ('' to skip).")] = "1000000",
    milvus_uri: Annotated[
        str | None,
        typer.Option(help="Also measure Milvus: a server (milvus://HOST:PORT) or Milvus Lite (milvus:PATH.db)."),
    ] = None,
    milvus_sizes: Annotated[str, typer.Option(help="Sizes for the Milvus server.")] = "10000,100000",
    out: OutOpt = Path("reports/bench_gallery.json"),
) -> None:
    """Gallery indexes on the shipped model's real embeddings: build, p50/p99, recall@1 vs exact, rank-1, RSS, disk."""
    from rnnface.lab.benchmarks.gallery import parse_kinds, run_gallery_bench
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.lab.evaluation.sources import embed_cached
    from rnnface.recognition.pipeline import FacePipeline

    try:
        kinds = parse_kinds(indexes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    check_output(out, "report")
    face_cache = FaceCache.open(cache)
    embedder = FacePipeline().load()
    ok = [i for i, r in enumerate(face_cache.rows) if r.status != "unreadable"]
    embeddings = embed_cached(embedder, face_cache, ok)
    people = [face_cache.rows[i].person for i in ok]
    model_id = embedder.checkpoint.model_id
    sizes_, uniform_, milvus_ = _sizes(sizes), _sizes(uniform), _sizes(milvus_sizes)
    run_gallery_bench(
        embeddings, people, model_id, sizes_, kinds, out, queries, uniform_, milvus_uri, milvus_, typer.echo
    )
    typer.echo(f"written: {out}")


@app.command("service")
def bench_service(
    data: DataOpt = None,
    clients: Annotated[int, typer.Option(min=1, help="Concurrent clients.")] = 8,
    seconds: Annotated[float, typer.Option(min=1, help="How long to load the server.")] = 60,
    out: OutOpt = Path("reports/bench_service.json"),
) -> None:
    """Load-test `rnnface serve` on loopback: mixed verify/identify/enroll, throughput, p50/p99, status codes."""
    from rnnface.lab.benchmarks.report import machine, write_report
    from rnnface.lab.benchmarks.service import load_test

    check_output(out, "report")
    result = load_test(image_root(data), clients=clients, seconds=seconds)
    write_report({"machine": machine(), **result}, out)
    typer.echo(
        f"{result['clients']} clients, {result['seconds']} s: {result['requests']} requests, "
        f"{result['requests_per_s']:.1f}/s, statuses {result['statuses']}"
    )
    typer.echo(f"{'route':<10}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for op, r in result["routes"].items():
        typer.echo(f"{op:<10}{r['requests']:>9}{r['p50_ms']:>9.0f}{r['p99_ms']:>9.0f}")
    typer.echo(f"server errors (5xx): {result['server_errors']}; written: {out}")
    if result["server_errors"]:
        raise typer.Exit(1)


@app.command("bombs")
def bench_bombs(data: DataOpt = None, out: OutOpt = Path("reports/bench_bombs.json")) -> None:
    """The server's peak and idle memory under 16 concurrent decompression-bomb uploads to each upload route."""
    from rnnface.lab.benchmarks.bombs import HEADER, run_bombs
    from rnnface.lab.benchmarks.report import machine, write_report

    check_output(out, "report")
    root = image_root(data)
    photo = root / "Colin_Powell" / "Colin_Powell_0001.jpg"
    if not photo.is_file():
        photo = next(p for p in sorted(root.rglob("*.jpg")))
    typer.echo(HEADER)
    report = run_bombs(photo, typer.echo)
    write_report({"machine": machine(), **report}, out)
    bomb = report["bomb"]
    typer.echo(
        f"bomb: a {bomb['bytes']:,}-byte WebP of {bomb['width']}x{bomb['height']}; idle at start "
        f"{report['start_idle_mb']} MB, bound {report['bound_mb']} MB; written: {out}"
    )
    if not all(r["peak_within_bound"] and r["idle_near_start"] for r in report["rows"]):
        raise typer.Exit(1)


@app.command("tracking")
def bench_tracking(data: DataOpt = None, out: OutOpt = Path("reports/bench_tracking.json")) -> None:
    """IDF1, identity switches and wrong-name seconds of `rnnface video` on multi-shot LFW videos, before and now."""
    from rnnface.lab.benchmarks.report import machine, write_report
    from rnnface.lab.benchmarks.tracking import HEADER, run_tracking_bench

    check_output(out, "report")
    typer.echo(HEADER)
    report = run_tracking_bench(image_root(data), typer.echo)
    write_report({"machine": machine(), **report}, out)
    for label, t in report["totals"].items():
        typer.echo(
            f"all, {label}: IDF1 {t['idf1']:.2f}, {t['identity_switches']} identity switches, "
            f"{t['tracks_over_people']} tracks over several people, {t['wrong_name_seconds']:.1f} wrong-name seconds, "
            f"right name {100 * t['right_name_share']:.0f}%"
        )
    typer.echo(f"written: {out}")


@app.command("batch")
def bench_batch(
    data: DataOpt = None,
    photos: Annotated[int, typer.Option(min=2, help="LFW photos to embed.")] = 25,
    loop: Annotated[int, typer.Option(min=1, help="Separate calls timed (the rest are scaled from them).")] = 5,
    out: OutOpt = Path("reports/bench_batch.json"),
) -> None:
    """Photos embedded by one `rnnface embed` call each (a shell loop) against one call on their folder."""
    from rnnface.lab.benchmarks.batch import run_batch_bench
    from rnnface.lab.benchmarks.report import machine, write_report

    check_output(out, "report")
    result = run_batch_bench(image_root(data), photos, loop)
    write_report({"machine": machine(), **result}, out)
    typer.echo(
        f"{result['photos']} photos: one call per photo {result['separate_calls_seconds']:.1f} s "
        f"({result['seconds_per_separate_call']:.2f} s a call, {loop} timed); one call on their folder "
        f"{result['one_call_seconds']:.1f} s; written: {out}"
    )


@app.command("video")
def bench_video(
    data: DataOpt = None,
    seconds: Annotated[float, typer.Option(min=1, help="Length of the synthetic clip.")] = 10,
    faces: Annotated[
        int, typer.Option(min=0, max=3, help="Faces on screen (LFW photos moving over a background).")
    ] = 3,
    every: Annotated[int, typer.Option(min=1, help="Detect on every Nth frame.")] = 3,
    min_face: Annotated[
        int, typer.Option(min=12, help="Smallest face to find, in pixels (as `rnnface video --min-face`).")
    ] = 40,
    clip: Annotated[
        Path | None,
        typer.Option(
            "--clip",
            exists=True,
            dir_okay=False,
            help="A real clip to time as well, in the same run (e.g. face_recognition's examples/"
            "short_hamilton_clip.mp4).",
        ),
    ] = None,
    out: OutOpt = Path("reports/bench_video.json"),
) -> None:
    """Frames per second of `rnnface video` on a synthetic 640x480 clip with up to 3 faces and, with --clip, on a
    real clip (target >= 30 on a real 640x360 clip)."""
    from rnnface.lab.benchmarks.report import write_report
    from rnnface.lab.benchmarks.video import run_video_bench

    check_output(out, "report")
    r = run_video_bench(image_root(data), seconds, faces, every, min_face, clip)
    write_report(r, out)
    for name, row in (("synthetic", r["synthetic"]), (clip.name if clip else "", r.get("clip"))):
        if row is not None:
            typer.echo(
                f"{name}, {row['width']}x{row['height']}, up to {row['most_faces']} face(s) at once, detection every "
                f"{every} frame(s): {row['frames']} frames in {row['seconds']:.1f} s = {row['fps']:.1f} frames/s; "
                f"{row['tracks']} track(s)"
            )
    typer.echo(f"written: {out}")


@app.command("facenet")
def bench_facenet(
    cache: CacheOpt = DEFAULT_CACHE,
    faces: Annotated[int, typer.Option(min=32, help="Faces of the cache to time and compare.")] = 64,
    data: DataOpt = None,
    out: OutOpt = Path("reports/bench_facenet.json"),
) -> None:
    """FaceNet per face in OpenCV, PyTorch, onnxruntime float32 and int8 (batch 1 and 32), against the cores' peak;
    and LFW View 2 accuracy in float32 and int8 (the cache must be LFW's)."""
    from rnnface.lab.benchmarks.facenet_runtimes import facenet_table, run_facenet_bench
    from rnnface.lab.benchmarks.report import write_report
    from rnnface.lab.data.lfw import pairs_file

    check_output(out, "report")
    report = run_facenet_bench(cache, faces, pairs=pairs_file(image_root(data)))
    write_report(report, out)
    typer.echo(facenet_table(report))
    typer.echo(f"written: {out}")


@app.command("cluster")
def bench_cluster(
    cache: CacheOpt = DEFAULT_CACHE,
    embedder: Annotated[str, typer.Option(help="Pretrained embeddings the population is fitted to.")] = "facenet",
    threshold: Annotated[
        float | None,
        typer.Option(help="Clustering threshold (default: the one `eval cluster` chose for rnnface on LFW)."),
    ] = None,
    rho: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="rnnface's pooling rho (default: the one `eval cluster` chose with it)."),
    ] = None,
    report: Annotated[Path, typer.Option(help="`eval cluster`'s report, for the default threshold.")] = Path(
        "reports/cluster.json"
    ),
    faces: Annotated[list[int] | None, typer.Option("--faces", help="Set sizes (default: 10k, 30k, 100k).")] = None,
    out: OutOpt = Path("reports/bench_cluster.json"),
) -> None:
    """Seconds and peak memory of clustering 10,000-100,000 faces drawn like LFW's (target: 100k in < 5 min)."""
    import json

    from rnnface.lab.benchmarks.clustering import SIZES, run_cluster_bench
    from rnnface.lab.benchmarks.report import machine, write_report
    from rnnface.lab.evaluation.clustering import cache_faces

    check_output(out, "report")
    if threshold is None or rho is None:
        if not report.is_file():
            raise typer.BadParameter(
                f"--report {report}: not found; run `rnnface eval cluster` or pass --threshold and --rho"
            )
        chosen = [r["chosen"] for r in json.loads(report.read_text())["results"]]
        match = [r for r in chosen if r["method"] == "rnnface" and r["embedding"] == embedder and r["dataset"] == "LFW"]
        if not match or not isinstance(match[0]["setting"], list):
            raise typer.BadParameter(f"{report}: no rnnface (rho, threshold) for {embedder} on LFW; pass both")
        found_rho, found_threshold = match[0]["setting"]
        threshold = found_threshold if threshold is None else threshold
        rho = found_rho if rho is None else rho
    lfw = cache_faces("LFW", cache, [embedder])
    result = run_cluster_bench(lfw.embeddings[embedder], lfw.people, threshold, rho, tuple(faces or SIZES))
    write_report({**result, "embedder": embedder, "machine": machine()}, out)
    typer.echo("| faces | people | method | seconds | peak MB | pairwise F | BCubed F |")
    typer.echo("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for r in result["rows"]:
        typer.echo(
            f"| {r['faces']:,} | {r['people']:,} | {r['method']} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | "
            f"{100 * r['pairwise_f']:.1f} | {100 * r['bcubed_f']:.1f} |"
        )
    typer.echo(f"threshold {threshold:g}, rho {rho:g} ({embedder}, {result['dim']}-d); written: {out}")
