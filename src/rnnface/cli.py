"""The `rnnface` command line: a thin layer over the library. Errors print one line and exit non-zero."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from rnnface.errors import RnnfaceError
from rnnface.io.paths import atomic_output, check_output


#: Which pyproject extra brings each optional top-level module.
_EXTRAS = {
    "train": {"kornia", "sklearn", "matplotlib"},
    "milvus": {"pymilvus", "milvus_lite"},
    "service": {"fastapi", "uvicorn", "multipart", "pydantic_settings", "httpx"},
    "teacher": {"dlib", "face_recognition", "face_recognition_models"},
}


class _Group(TyperGroup):
    """Turns every RnnfaceError (bad image, no face, missing model, ...) into `error: ...` and exit 2."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except RnnfaceError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except ModuleNotFoundError as exc:
            root = (exc.name or "").split(".")[0]
            extra = next((e for e, modules in _EXTRAS.items() if root in modules), "train")
            typer.echo(f"error: optional dependency {exc.name!r} is missing: pip install 'rnnface[{extra}]'", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Group,
    help="Face detection, alignment and recognition with recurrent networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

from rnnface.cli_gallery import app as gallery_app  # noqa: E402  (its commands join the top level)

app.add_typer(gallery_app)

from rnnface.cli_video import app as video_app  # noqa: E402

app.add_typer(video_app)

ModelOpt = Annotated[
    Optional[Path], typer.Option("--model", "-m", help="Checkpoint to use (default: $RNNFACE_MODEL, then the shipped one).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
RuntimeOpt = Annotated[
    Optional[str], typer.Option("--runtime", help="What runs the embedding network: torch or onnx (default: $RNNFACE_RUNTIME, then torch).")
]


def _print_json(obj) -> None:
    typer.echo(json.dumps(obj, indent=2))


@app.command()
def detect(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    draw: Annotated[Optional[Path], typer.Option(help="Write the image with boxes and landmarks here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find every face: box, score and 5 landmarks (numbered largest first)."""
    from rnnface.api import detect as detect_faces
    from rnnface.draw import draw_faces, save_image
    from rnnface.io import load_image

    if draw is not None:
        check_output(draw, "picture")
    img = load_image(image)
    faces = detect_faces(img)
    if draw is not None:
        save_image(draw_faces(img, faces), draw)
    if as_json:
        _print_json({"image": str(image), "width": img.shape[1], "height": img.shape[0], "faces": [f.to_dict() for f in faces]})
        return
    typer.echo(f"{image}: {len(faces)} face(s)")
    for i, face in enumerate(faces):
        x1, y1, x2, y2 = face.box
        typer.echo(f"  {i}: box=({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}) score={face.score:.3f}")
    if draw is not None:
        typer.echo(f"drawn: {draw}")


@app.command()
def embed(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    model: ModelOpt = None,
    face: Annotated[Optional[int], typer.Option(help="Embed only face N (0 = largest).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Also save the (N, D) embeddings as a .npy file.")] = None,
    runtime: RuntimeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Embed every face of an image (or face N) with the recurrent model."""
    import numpy as np

    from rnnface.io import load_image
    from rnnface.recognition import FacePipeline
    from rnnface.recognition.pipeline import pick_face

    if out is not None:
        check_output(out, "embeddings file")
    pipeline = FacePipeline(model=model, runtime=runtime)
    pipeline.embedder  # fail on a missing model before any detection work
    img = load_image(image)
    faces = pipeline.detect(img)
    chosen = pick_face(faces, face, str(image))  # also raises the no-face error
    if face is not None:
        faces = [faces[chosen]]
    faces, emb = pipeline.embed(img, faces)
    if out is not None:
        with atomic_output(out, "embeddings file") as tmp, open(tmp, "wb") as fh:
            np.save(fh, emb)
    if as_json:
        _print_json({"image": str(image), "faces": [{**f.to_dict(), "embedding": e.round(6).tolist()} for f, e in zip(faces, emb)]})
        return
    for i, (f, e) in enumerate(zip(faces, emb)):
        head = " ".join(f"{v:+.3f}" for v in e[:6])
        typer.echo(f"face {face if face is not None else i}: dim={len(e)} [{head} ...]")
    if out is not None:
        typer.echo(f"saved: {out}")


@app.command()
def verify(
    image_a: Annotated[Path, typer.Argument(help="First image.")],
    image_b: Annotated[Path, typer.Argument(help="Second image.")],
    model: ModelOpt = None,
    face: Annotated[Optional[int], typer.Option(help="Use face N in both images (default: the largest).")] = None,
    face_a: Annotated[Optional[int], typer.Option(help="Face number in the first image.")] = None,
    face_b: Annotated[Optional[int], typer.Option(help="Face number in the second image.")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Cosine threshold (default: the checkpoint's calibrated one).")] = None,
    runtime: RuntimeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Are the faces in two images the same person? Exit 0 either way; the answer is printed."""
    from rnnface.recognition import FacePipeline

    pipeline = FacePipeline(model=model, runtime=runtime)
    result = pipeline.verify(
        image_a,
        image_b,
        face_a=face if face_a is None else face_a,
        face_b=face if face_b is None else face_b,
        threshold=threshold,
        names=(str(image_a), str(image_b)),
    )
    if as_json:
        _print_json(result.to_dict())
        return
    for name, used, count in ((image_a, result.face_a, result.faces_in_a), (image_b, result.face_b, result.faces_in_b)):
        if count > 1:
            typer.echo(f"{name}: {count} faces; used face {used}" + (" (largest)" if used == 0 else ""))
    verdict = "same" if result.same else "different"
    typer.echo(f"{verdict} (similarity {result.similarity:.4f}, threshold {result.threshold:.4f})")


@app.command()
def models(as_json: JsonOpt = False) -> None:
    """List the backbones with parameter counts and the share held by recurrent layers."""
    from rnnface.models import DEFAULT_MODEL, RNN_CELLS, create_model, list_models, recurrent_share
    from rnnface.models.registry import model_summary

    rows = []
    for name in list_models():
        for cell in RNN_CELLS:
            m = create_model(name, cell=cell)
            rows.append(
                {
                    "model": name,
                    "cell": cell,
                    "default_cell": cell == m.config.__class__().cell,
                    "input": getattr(m.config, "img_size", None) or m.config.frontend,
                    "embed_dim": m.config.embed_dim,
                    "params": sum(p.numel() for p in m.parameters()),
                    "recurrent_share": round(recurrent_share(m), 3),
                    "summary": model_summary(name),
                }
            )
    if as_json:
        _print_json(rows)
        return
    typer.echo(f"{'model':<14}{'cell':<6}{'input':>6}{'dim':>5}{'params':>11}{'recurrent':>11}  description")
    for r in rows:
        mark = "*" if r["default_cell"] else " "
        star = " (shipped model)" if r["model"] == DEFAULT_MODEL and r["default_cell"] else ""
        typer.echo(
            f"{r['model']:<14}{r['cell'] + mark:<6}{r['input']:>6}{r['embed_dim']:>5}{r['params']:>11,}"
            f"{r['recurrent_share']:>10.1%}  {r['summary']}{star}"
        )
    typer.echo("* = the backbone's default cell; any cell works: --cell rnn|lstm|gru in training.")


@app.command("export-onnx")
def export_onnx(
    checkpoint: Annotated[Path, typer.Argument(help="rnnface checkpoint (.pt) to export.")],
    out: Annotated[Path, typer.Argument(help="ONNX file to write.")],
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
) -> None:
    """Write a backbone as ONNX (dynamic batch; recurrent layers as ONNX GRU/LSTM/RNN), checked against PyTorch."""
    from rnnface.models import load_checkpoint
    from rnnface.models.onnx import export_onnx as export, parity

    check_output(out, "ONNX file")
    ckpt = load_checkpoint(checkpoint)
    data = export(ckpt, opset)
    worst = parity(ckpt, data)
    with atomic_output(out, "ONNX file") as tmp:
        tmp.write_bytes(data)
    typer.echo(f"wrote {out} ({len(data) / 2**20:.1f} MB, opset {opset}): {ckpt.model_id}")
    typer.echo(f"parity with PyTorch on random inputs, batch 1 and 7: lowest cosine {worst:.6f}")
    if ckpt.frontend is not None:
        typer.echo(
            f"note: this is the recurrent head we trained; its inputs are the outputs of the {ckpt.frontend} front-end "
            "(a frozen TensorFlow graph that rnnface runs with OpenCV), which is not in this file"
        )


@app.command()
def prepare(
    data_dir: Annotated[Path, typer.Argument(help="Identity-folder dataset (<Person>/<img>), e.g. LFW.")],
    out: Annotated[Path, typer.Option(help="Cache directory to write (reused when complete).")],
    crop: Annotated[str, typer.Option(help="How faces are cut out: arcface (5-point template) or facenet (box crop).")] = "arcface",
    size: Annotated[Optional[int], typer.Option(help="Side of the template crops in pixels (arcface: 112).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Processes (default: all cores).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a complete cache exists.")] = False,
) -> None:
    """Detect and crop every image once into a compact cache for training and evaluation."""
    from dataclasses import replace

    from rnnface.alignment import CROPS
    from rnnface.data.prepare import PrepareConfig, prepare as run_prepare

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
    workers: Annotated[Optional[int], typer.Option(help="Processes (default: all cores).")] = None,
    force: Annotated[bool, typer.Option(help="Recompute even if a complete feature cache exists.")] = False,
) -> None:
    """Run the FaceNet front-end once over a face cache, keeping the feature maps hybrid heads train on."""
    from rnnface.data.prepare import FaceCache
    from rnnface.pretrained.features import build_features

    feats = build_features(FaceCache.open(cache_dir), views=views, workers=workers, force=force)
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in feats.arrays.items())
    typer.echo(f"{feats.root}: {shapes}; {feats.meta['seconds']:.0f} s with {feats.meta['workers']} workers")


bench_app = typer.Typer(help="Benchmarks: print a table and write a JSON report.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("pipeline")
def bench_pipeline(
    data: Annotated[Optional[Path], typer.Option(help="LFW root or image tree (default: $RNNFACE_DATA).")] = None,
    images: Annotated[int, typer.Option(help="Images to time detect+align on.")] = 100,
    out: Annotated[Path, typer.Option(help="JSON report to write.")] = Path("reports/bench.json"),
) -> None:
    """Time detect+align per image and each backbone's embedding per face (batch 1 and 32)."""
    from rnnface.bench import bench_detect_align, bench_embed, bench_peer_embed, machine, write_report
    from rnnface.data.folders import list_identity_images, resolve_image_root
    from rnnface.io import load_image
    from rnnface.models import list_models
    from rnnface.settings import Settings, packaged_model

    root = resolve_image_root(data or Settings.from_env().data)
    records = list_identity_images(root)
    step = max(1, len(records) // images)
    sample = [load_image(root / r.path) for r in records[::step][:images]]
    det = bench_detect_align(sample)
    emb = bench_embed(list_models(), checkpoint=packaged_model())
    peer = bench_peer_embed(sample[:50])
    emb += [peer] if peer else []
    report = {"machine": machine(), "detect_align": det, "embed": emb}
    write_report(report, out)
    typer.echo(
        f"detect+align ({det['detector']}, {det['images']} images {det['image_shape'][1]}x{det['image_shape'][0]}, "
        f"faces in {det['faces_found']}): median {det['ms_per_image_median']:.1f} ms/image, p90 {det['ms_per_image_p90']:.1f}"
    )
    typer.echo(f"{'model':<32}{'cell':<6}{'runtime':<9}{'input':>18}{'batch':>7}{'ms/face':>10}")
    for r in emb:
        typer.echo(f"{r['model']:<32}{r['cell']:<6}{r.get('runtime', ''):<9}{r['input']:>18}{r['batch']:>7}{r['ms_per_face']:>10.2f}")
    typer.echo(f"written: {out}")


@bench_app.command("gallery")
def bench_gallery(
    sizes: Annotated[str, typer.Option(help="Gallery sizes (faces), comma-separated.")] = "10000,100000,1000000",
    indexes: Annotated[
        str, typer.Option(help="Index kinds to measure, KIND or KIND:BREADTH (HNSW efSearch, IVF nprobe), comma-separated.")
    ] = "flat,pq,lsh,hnsw:256,ivf:256",
    cache: Annotated[Path, typer.Option(help="LFW face cache (rnnface prepare --crop facenet) the shipped model embeds.")] = Path("cache/lfw160"),
    queries: Annotated[int, typer.Option(help="Queries per size: half real held-out LFW photos, half generated.")] = 1000,
    uniform: Annotated[str, typer.Option(help="Sizes of the uniform-random stress case ('' to skip).")] = "1000000",
    milvus_uri: Annotated[Optional[str], typer.Option(help="Also measure Milvus: a server (milvus://HOST:PORT) or Milvus Lite (milvus:PATH.db).")] = None,
    milvus_sizes: Annotated[str, typer.Option(help="Sizes for the Milvus server.")] = "10000,100000",
    out: Annotated[Path, typer.Option(help="JSON report to write.")] = Path("reports/bench_gallery.json"),
) -> None:
    """Gallery indexes on the shipped model's real embeddings: build, p50/p99, recall@1 vs exact, rank-1, RSS, disk."""
    import numpy as np

    from rnnface.bench import machine, write_report
    from rnnface.data.prepare import FaceCache
    from rnnface.gallery.bench import HEADER, bench_indexes, bench_milvus, format_row, realistic_workload, uniform_workload
    from rnnface.gallery.index import KINDS
    from rnnface.gallery.population import fit_population, shaped_like, similarity_profile
    from rnnface.pretrained.features import embed_cached
    from rnnface.recognition.embedder import Embedder
    from rnnface.settings import packaged_model

    def parse(text: str) -> list[int]:
        try:
            return [int(float(v)) for v in text.split(",") if v.strip()]
        except ValueError:
            raise typer.BadParameter(f"sizes are comma-separated numbers of faces, got {text!r}") from None

    def parse_kinds(text: str) -> list[tuple[str, int | None]]:
        out = []
        for item in filter(None, (v.strip() for v in text.split(","))):
            kind, _, breadth = item.partition(":")
            if kind not in KINDS or (breadth and not breadth.isdigit()):
                raise typer.BadParameter(f"index {item!r}: one of {', '.join(KINDS)}, as KIND or KIND:BREADTH (hnsw efSearch, ivf nprobe)")
            out.append((kind, int(breadth) if breadth else None))
        return out

    kinds = parse_kinds(indexes)
    check_output(out, "report")
    face_cache = FaceCache.open(cache)
    shipped = packaged_model()
    embedder = Embedder.from_path(shipped)
    ok = [i for i, r in enumerate(face_cache.rows) if r.status != "unreadable"]
    embeddings = embed_cached(embedder, face_cache, ok)
    people = [face_cache.rows[i].person for i in ok]
    real = similarity_profile(embeddings, np.asarray(people))
    population = fit_population(embeddings, np.asarray(people))
    synthetic = shaped_like(population, np.asarray(people))
    rows: list[dict] = []
    report: dict = {
        "machine": machine(),
        "model": embedder.checkpoint.model_id,
        "real_lfw": real,
        "population": {"sigma": population.sigma, "synthetic_lfw_shaped": synthetic},
        "rows": rows,
    }

    def row_done(row: dict) -> None:  # the report grows row by row, so an interrupted run keeps what it measured
        rows.append(row)
        typer.echo(format_row(row))
        write_report(report, out)

    def profile(what: str, values: dict) -> None:
        typer.echo(f"{what}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items() if k != "gallery"))

    profile(f"real LFW embeddings ({len(ok)} faces)", real)
    profile("synthetic, LFW-shaped", synthetic)
    typer.echo(HEADER)
    for size in parse(sizes):
        work = realistic_workload(size, embeddings, people, population, queries)
        if kinds:
            bench_indexes(work, kinds, on_row=row_done)
        if milvus_uri and size in parse(milvus_sizes):
            bench_milvus(work, milvus_uri, on_row=row_done)  # the same faces and queries (a second pass makes no new ones)
    for size in parse(uniform):
        bench_indexes(uniform_workload(size, embeddings.shape[1], queries), [("pq", None), ("lsh", None)], on_row=row_done)
    typer.echo(f"written: {out}")


@bench_app.command("service")
def bench_service(
    data: Annotated[Optional[Path], typer.Option(help="LFW root or image tree (default: $RNNFACE_DATA).")] = None,
    clients: Annotated[int, typer.Option(min=1, help="Concurrent clients.")] = 8,
    seconds: Annotated[float, typer.Option(min=1, help="How long to load the server.")] = 60,
    out: Annotated[Path, typer.Option(help="JSON report to write.")] = Path("reports/bench_service.json"),
) -> None:
    """Load-test `rnnface serve` on loopback: mixed verify/identify/enroll, throughput, p50/p99, status codes."""
    from rnnface.bench import machine, write_report
    from rnnface.data.folders import resolve_image_root
    from rnnface.service.loadtest import load_test
    from rnnface.settings import Settings

    result = load_test(resolve_image_root(data or Settings.from_env().data), clients=clients, seconds=seconds)
    write_report({"machine": machine(), **result}, out)
    typer.echo(f"{result['clients']} clients, {result['seconds']} s: {result['requests']} requests, {result['requests_per_s']:.1f}/s, statuses {result['statuses']}")
    typer.echo(f"{'route':<10}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for op, r in result["routes"].items():
        typer.echo(f"{op:<10}{r['requests']:>9}{r['p50_ms']:>9.0f}{r['p99_ms']:>9.0f}")
    typer.echo(f"server errors (5xx): {result['server_errors']}; written: {out}")
    if result["server_errors"]:
        raise typer.Exit(1)


@bench_app.command("video")
def bench_video(
    data: Annotated[Optional[Path], typer.Option(help="LFW root or image tree (default: $RNNFACE_DATA).")] = None,
    seconds: Annotated[float, typer.Option(min=1, help="Length of the synthetic clip.")] = 10,
    faces: Annotated[int, typer.Option(min=0, max=3, help="Faces on screen (LFW photos moving over a background).")] = 3,
    every: Annotated[int, typer.Option(min=1, help="Detect on every Nth frame.")] = 3,
    min_face: Annotated[int, typer.Option(min=12, help="Smallest face to find, in pixels (as `rnnface video --min-face`).")] = 40,
    out: Annotated[Path, typer.Option(help="JSON report to write.")] = Path("reports/bench_video.json"),
) -> None:
    """Frames per second of `rnnface video` on a synthetic 640x480 clip with up to 3 faces (target >= 25)."""
    import tempfile

    import numpy as np

    from rnnface.aggregation.pooling import resolve_pooling
    from rnnface.bench import machine, write_report
    from rnnface.data.folders import resolve_image_root
    from rnnface.detection import DEFAULT_DETECTOR, create_detector
    from rnnface.io import load_image
    from rnnface.recognition import FacePipeline
    from rnnface.settings import Settings
    from rnnface.video.process import process_video
    from rnnface.video.source import open_source
    from rnnface.video.synthetic import Actor, write_video

    root = resolve_image_root(data or Settings.from_env().data)
    people = sorted(p for p in root.iterdir() if p.is_dir())[:faces]
    spots = [((20, 40), (200, 60)), ((450, 300), (300, 250)), ((400, 20), (460, 100))]
    actors = [Actor(p.name, load_image(sorted(p.iterdir())[0]), 0.0, seconds, *spots[i]) for i, p in enumerate(people)]
    pipeline = FacePipeline(detector=create_detector(DEFAULT_DETECTOR, min_face_size=min_face))
    pool, pooling = resolve_pooling("auto", pipeline.embedder.checkpoint.model_id)
    with tempfile.TemporaryDirectory(prefix="rnnface-video-") as tmp:
        clip = write_video(Path(tmp) / "clip.mp4", actors, seconds)
        pipeline.detect(load_image(sorted(people[0].iterdir())[0]) if people else np.zeros((64, 64, 3), np.uint8))  # warm up
        pipeline.embedder.embed_crops(np.zeros((1, pipeline.embedder.crop.size, pipeline.embedder.crop.size, 3), np.uint8))
        source = open_source(str(clip))
        report = process_video(source, pipeline, None, pool, pooling, every, progress=False)
        source.close()
    result = {"machine": machine(), "width": 640, "height": 480, "faces": faces, "detect_every": every, "min_face": min_face, "frames": report.frames,
              "seconds": round(report.seconds, 2), "fps": report.processing_fps, "tracks": len(report.tracks), "pooling": pooling}
    write_report(result, out)
    typer.echo(f"640x480, {faces} face(s), detection every {every} frame(s): {report.frames} frames in {report.seconds:.1f} s = "
               f"{report.processing_fps:.1f} frames/s (target >= 25); {len(report.tracks)} track(s); written: {out}")


@app.command()
def demo(
    data: Annotated[Optional[Path], typer.Option(help="LFW root holding lfw/ and pairs.txt (default: $RNNFACE_DATA).")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the gallery and the annotated pictures.")] = Path("demo-out"),
    model: ModelOpt = None,
    people: Annotated[int, typer.Option(min=1, help="People to enroll.")] = 6,
    strangers: Annotated[int, typer.Option(min=0, help="People left out, to be answered `unknown`.")] = 4,
) -> None:
    """The main job on LFW: enroll people, identify them and strangers in other photos, verify pairs, draw the results."""
    from rnnface.data.folders import resolve_image_root
    from rnnface.demo import run_demo
    from rnnface.recognition import FacePipeline
    from rnnface.settings import Settings

    root = resolve_image_root(data or Settings.from_env().data)
    pipeline = FacePipeline(model=model)  # one detector and one model for every step
    pipeline.embedder
    run_demo(root, out, pipeline, typer.echo, people=people, strangers=strangers)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (each loads its own model).")] = 1,
) -> None:
    """Run the HTTP API (/api/v1, OpenAPI at /docs) and the web page (/). Settings: RNNFACE_* variables."""
    import uvicorn

    from rnnface.service.settings import ServiceSettings

    settings = ServiceSettings.from_env()  # fail here, before binding, on a malformed setting
    typer.echo(f"rnnface service on http://{host}:{port}/ (gallery {settings.gallery}; writes {'need X-API-Key' if settings.api_key else 'disabled: no RNNFACE_API_KEY'})")
    uvicorn.run("rnnface.service.app:create_app", factory=True, host=host, port=port, workers=workers)


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file (see configs/).")] = None,
    override: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key: --set epochs=10 --set model_args.cell=lstm")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last epoch checkpointed in the output directory.")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 ... (overrides the config).")] = None,
) -> None:
    """Train a recurrent backbone with a margin loss on a prepared face cache (torchrun for several processes)."""
    from rnnface.training.config import load_config
    from rnnface.training.loop import train as run_train

    overrides = list(override or []) + ([f"device={device}"] if device else [])
    cfg = load_config(config, overrides)
    path = run_train(cfg, resume=resume)
    typer.echo(f"checkpoint: {path}")


eval_app = typer.Typer(help="Evaluate models by standard protocols.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("lfw")
def eval_lfw(
    model: Annotated[list[Path], typer.Option("--model", "-m", help="Identity-disjoint checkpoints; together they must exclude all 10 folds.")],
    cache: Annotated[Path, typer.Option(help="Face cache of LFW (rnnface prepare), cut as the models want.")] = Path("cache/lfw112"),
    pairs: Annotated[Optional[Path], typer.Option(help="pairs.txt (default: beside the cached dataset).")] = None,
    out: Annotated[Path, typer.Option(help="Directory for lfw.json, lfw.md and lfw_roc.png.")] = Path("reports"),
    flip: Annotated[bool, typer.Option(help="Average each embedding with its mirror image's.")] = True,
    name: Annotated[str, typer.Option(help="Row name in the table and plot.")] = "rnnface",
    also: Annotated[Optional[list[str]], typer.Option(help="More identity-disjoint models in the same run: NAME=a.pt,b.pt")] = None,
    calibrate: Annotated[Optional[Path], typer.Option(help="Write the operating threshold (at --far) into this checkpoint.")] = None,
    peer: Annotated[Optional[list[str]], typer.Option(help="Also score with a pretrained peer: face_recognition, facenet, ensemble.")] = None,
    folds: Annotated[Optional[str], typer.Option(help="Only these View-2 folds, e.g. 0,1,2,3,4 (default: all 10).")] = None,
    far: Annotated[float, typer.Option(help="False-accept rate of the operating threshold (set over every cross-person pair of the evaluated people): used for the open-set figures and written by --calibrate.")] = 1e-4,
) -> None:
    """LFW View 2 (10-fold accuracy, AUC, EER, TAR@FAR, ROC) and 1:N rank-1/5, scored only by models that never saw the people."""
    from rnnface.data.lfw import pairs_file
    from rnnface.data.prepare import FaceCache
    from rnnface.evaluation.identification import identify_lfw
    from rnnface.evaluation.lfw import fold_pairs, model_sources, score_pairs
    from rnnface.evaluation.report import markdown_table, plot_roc, write_json
    from rnnface.evaluation.sources import peer_sources
    from rnnface.models.checkpoint import set_threshold

    face_cache = FaceCache.open(cache)
    fold_set = _parse_folds(folds)
    pair_list = fold_pairs(pairs or pairs_file(face_cache.meta["data"]), fold_set)
    groups = {name: model}
    for item in also or []:
        label, sep, paths = item.partition("=")
        if not sep or not paths:
            raise typer.BadParameter(f"--also takes NAME=a.pt,b.pt, got {item!r}")
        groups[label] = [Path(p) for p in paths.split(",")]
    sources = {label: model_sources(face_cache, ckpts, pair_list, flip) for label, ckpts in groups.items()}
    fold_groups = [s.folds for s in sources[name]]
    sources.update({p: peer_sources(face_cache, p, fold_groups) for p in peer or []})
    reports, curves, rows, lines = {}, {}, {}, []
    for label, group in sources.items():
        scores, failed = score_pairs(face_cache, group, pair_list)
        report = scores.report()
        ident = identify_lfw(face_cache, group, pair_list, far=far)
        point = ident.operating_point
        reports[label], curves[label] = report, (scores.scores, scores.same)
        rows[label] = {**report.to_dict(), "identification": ident.to_dict(), "pairs_without_face": failed, "model_of_fold": scores.model_of_fold}
        lines.append(
            f"| {label} | {100 * ident.rank1:.2f}% | {100 * ident.rank5:.2f}% | {point.threshold:.4f} | {100 * point.tar:.2f}% | "
            f"{100 * ident.strangers_rejected:.2f}% | {100 * ident.dir_at_threshold:.2f}% |"
        )
    ident = rows[name]["identification"]
    point = ident["operating_point"]
    table = markdown_table(reports) + (
        f"\n1:N identification ({ident['probes']} probes; galleries of {ident['gallery_sizes']} people incl. single-image "
        f"distractors), open set at each method's FAR={far:g} threshold, set over all {point['impostor_pairs']:,} cross-person "
        f"pairs of the evaluated people ({point['genuine_pairs']:,} same-person pairs):\n\n"
        f"| method | rank-1 | rank-5 | threshold (FAR={far:g}) | TAR there | strangers rejected | identified (rank 1, above threshold) |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(lines) + "\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        {
            "name": name,
            "models": {label: [str(m) for m in ckpts] for label, ckpts in groups.items()},
            "flip": flip,
            "folds": sorted(fold_set) if fold_set else list(range(10)),
            "rows": rows,
        },
        out / "lfw.json",
    )
    (out / "lfw.md").write_text(table)
    plot_roc(curves, out / "lfw_roc.png", "LFW View 2 (rnnface: identity-disjoint models)")
    typer.echo(table)
    typer.echo(f"folds scored by: {rows[name]['model_of_fold']}")
    threshold = point["threshold"]
    typer.echo(f"threshold at FAR={far:g}: {threshold:.4f} (TAR {100 * point['tar']:.2f}%); written {out}/lfw.json, lfw.md, lfw_roc.png")
    if calibrate is not None:
        meta = {"lfw_identity_disjoint": reports[name].to_dict(), "operating_point": point, "flip": flip}
        set_threshold(calibrate, threshold, meta)
        typer.echo(f"calibrated threshold (FAR={far:g}) stored in {calibrate}")


@eval_app.command("sets")
def eval_sets(
    model: Annotated[Path, typer.Option("--model", "-m", help="Backbone that left the evaluation folds' people out.")],
    aggregator: Annotated[Path, typer.Option(help="Aggregator trained without those people (rnnface train-aggregator).")],
    cache: Annotated[Path, typer.Option(help="Aligned-face cache of LFW.")] = Path("cache/lfw112"),
    folds: Annotated[str, typer.Option(help="View-2 folds whose people are evaluated.")] = "0,1,2,3,4",
    rounds: Annotated[int, typer.Option(min=1, help="Template draws per person.")] = 3,
    out: Annotated[Path, typer.Option(help="Directory for sets.json and sets.md.")] = Path("reports"),
) -> None:
    """Template (set-to-set) verification and rank-1: single image vs mean pooling vs the recurrent aggregator."""
    from rnnface.data.prepare import FaceCache
    from rnnface.evaluation.report import write_json
    from rnnface.evaluation.sets import evaluate_sets, markdown

    fold_set = _parse_folds(folds)
    report = evaluate_sets(FaceCache.open(cache), model, aggregator, tuple(sorted(fold_set)), rounds)
    out.mkdir(parents=True, exist_ok=True)
    write_json(report, out / "sets.json")
    table = markdown(report)
    (out / "sets.md").write_text(table)
    typer.echo(f"{report['people']} people, {report['genuine_pairs']} genuine and {report['impostor_pairs']} impostor template pairs")
    typer.echo(table)
    typer.echo(f"written: {out}/sets.json, sets.md")


def _parse_folds(text: str | None) -> set[int] | None:
    if text is None:
        return None
    try:
        folds = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise typer.BadParameter(f"--folds takes comma-separated fold numbers 0-9, got {text!r}") from None
    if not folds or not folds <= set(range(10)):
        raise typer.BadParameter(f"--folds takes fold numbers 0-9, got {text!r}")
    return folds


def main() -> None:
    """Console-script entry point."""
    app()
