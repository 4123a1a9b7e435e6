"""Commands on faces in photos: detect, embed, verify; and on models: models, export-onnx."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnface.cli.options import TYPER, JsonOpt, ModelOpt, RuntimeOpt, ThresholdOpt, pipeline, print_json
from rnnface.io.paths import atomic_output, check_output

app = typer.Typer(**TYPER)


@app.command()
def detect(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    draw: Annotated[
        Path | None, typer.Option(help="Write the image with boxes and landmarks here (.png or .jpg).")
    ] = None,
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
        print_json(
            {"image": str(image), "width": img.shape[1], "height": img.shape[0], "faces": [f.to_dict() for f in faces]}
        )
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
    face: Annotated[int | None, typer.Option(help="Embed only face N (0 = largest).")] = None,
    out: Annotated[Path | None, typer.Option(help="Also save the (N, D) embeddings as a .npy file.")] = None,
    runtime: RuntimeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Embed every face of an image (or face N) with the recurrent model."""
    import numpy as np

    from rnnface.io import load_image
    from rnnface.recognition.pipeline import pick_face

    if out is not None:
        check_output(out, "embeddings file")
    pipe = pipeline(model, runtime)
    img = load_image(image)
    faces = pipe.detect(img)
    chosen = pick_face(faces, face, str(image))  # also raises the no-face error
    if face is not None:
        faces = [faces[chosen]]
    faces, emb = pipe.embed(img, faces)
    if out is not None:
        with atomic_output(out, "embeddings file") as tmp, open(tmp, "wb") as fh:
            np.save(fh, emb)
    if as_json:
        print_json(
            {
                "image": str(image),
                "faces": [{**f.to_dict(), "embedding": e.round(6).tolist()} for f, e in zip(faces, emb)],
            }
        )
        return
    for i, e in enumerate(emb):
        head = " ".join(f"{v:+.3f}" for v in e[:6])
        typer.echo(f"face {face if face is not None else i}: dim={len(e)} [{head} ...]")
    if out is not None:
        typer.echo(f"saved: {out}")


@app.command()
def verify(
    image_a: Annotated[Path, typer.Argument(help="First image.")],
    image_b: Annotated[Path, typer.Argument(help="Second image.")],
    model: ModelOpt = None,
    face: Annotated[int | None, typer.Option(help="Use face N in both images (default: the largest).")] = None,
    face_a: Annotated[int | None, typer.Option(help="Face number in the first image.")] = None,
    face_b: Annotated[int | None, typer.Option(help="Face number in the second image.")] = None,
    threshold: ThresholdOpt = None,
    runtime: RuntimeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Are the faces in two images the same person? Exit 0 either way; the answer is printed."""
    pipe = pipeline(model, runtime)
    result = pipe.verify(
        image_a,
        image_b,
        face_a=face if face_a is None else face_a,
        face_b=face if face_b is None else face_b,
        threshold=threshold,
        names=(str(image_a), str(image_b)),
    )
    if as_json:
        print_json(result.to_dict())
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
                    "input": m.input_size if m.frontend is None else m.frontend.name,
                    "embed_dim": m.config.embed_dim,
                    "params": sum(p.numel() for p in m.parameters()),
                    "recurrent_share": round(recurrent_share(m), 3),
                    "summary": model_summary(name),
                }
            )
    if as_json:
        print_json(rows)
        return
    typer.echo(f"{'model':<14}{'cell':<6}{'input':>8}{'dim':>5}{'params':>11}{'recurrent':>11}  description")
    for r in rows:
        mark = "*" if r["default_cell"] else " "
        star = " (shipped model)" if r["model"] == DEFAULT_MODEL and r["default_cell"] else ""
        typer.echo(
            f"{r['model']:<14}{r['cell'] + mark:<6}{r['input']:>8}{r['embed_dim']:>5}{r['params']:>11,}"
            f"{r['recurrent_share']:>10.1%}  {r['summary']}{star}"
        )
    typer.echo("* = the backbone's default cell; any cell works: --set model_args.cell=rnn|lstm|gru in training.")


@app.command("export-onnx")
def export_onnx(
    checkpoint: Annotated[Path, typer.Argument(help="rnnface checkpoint (.pt) to export.")],
    out: Annotated[Path, typer.Argument(help="ONNX file to write.")],
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
) -> None:
    """Write a backbone as ONNX (dynamic batch; recurrent layers as ONNX GRU/LSTM/RNN), checked against PyTorch."""
    from rnnface.errors import ModelError
    from rnnface.models import load_checkpoint
    from rnnface.models.onnx import export_onnx as export
    from rnnface.models.onnx import parity

    check_output(out, "ONNX file")
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
    if ckpt.frontend is not None:
        typer.echo(
            f"note: this is the recurrent head we trained; its inputs are the outputs of the {ckpt.frontend.name} "
            "front-end "
            "(a frozen TensorFlow graph that rnnface runs with OpenCV), which is not in this file"
        )
