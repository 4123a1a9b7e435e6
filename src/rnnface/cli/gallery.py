"""Gallery commands: enroll, enroll-dir, identify, people, remove, export, import, reindex.

Commands that only read (identify, people, export) and those that change existing people (remove,
reindex) never create a gallery: a mistyped --gallery is an error, not a new empty file.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from rnnface.cli.options import (
    TYPER,
    CsvOpt,
    DeviceOpt,
    FpirOpt,
    GalleryOpt,
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

if TYPE_CHECKING:
    from rnnface.gallery.records import SearchBy

app = typer.Typer(**TYPER)

LargestOpt = Annotated[
    bool, typer.Option(help="Use the largest face of a photo with several (default: skip such photos).")
]
KeepOpt = Annotated[
    bool,
    typer.Option(
        help="Also store each aligned face crop (a face image, not only its embedding), so `reindex` can re-embed "
        "the gallery after a model change. Off by default: crops are biometric images."
    ),
]
PoolingOpt = Annotated[
    str,
    typer.Option(
        help="How a person's photos make their template: auto (the shipped recurrent aggregator), mean, or an "
        "aggregator checkpoint."
    ),
]
LARGEST_HINT = "pass --largest to use its largest face"


def _open(gallery: str | None, create: bool = False):
    from rnnface.gallery import open_gallery

    return open_gallery(gallery or None, create=create)


def _print_summary(summary, as_json: bool, where: str) -> None:
    """Print what was enrolled, skipped and ignored; exit 2 after it when whole person folders were refused."""
    summary = summary.with_hint(LARGEST_HINT)
    if as_json:
        print_json({"gallery": where, **summary.to_dict()})
    else:
        for image, reason in summary.skipped:
            typer.echo(f"skipped {image}: {reason}")
        for path, reason in summary.ignored:
            typer.echo(f"ignored {path}: {reason}")
        for folder, reason in summary.refused:
            typer.echo(f"refused folder {folder!r}: {reason}")
        already = f"; {summary.already} already in the gallery" if summary.already else ""
        typer.echo(
            f"enrolled {summary.faces} face(s) of {summary.people} person(s) into {where}; skipped "
            f"{len(summary.skipped)} image(s){already}"
        )
    if summary.refused:
        typer.echo(f"error: {len(summary.refused)} person folder(s) not enrolled (listed above)", err=True)
        raise typer.Exit(2)


@app.command()
def enroll(
    name: Annotated[str, typer.Argument(help="The person's name.")],
    images: Annotated[list[Path], typer.Argument(help="Photos of that person (one face each).")],
    gallery: GalleryOpt = None,
    model: ModelOpt = None,
    largest: LargestOpt = False,
    keep_crops: KeepOpt = False,
    pooling: PoolingOpt = "auto",
    min_score: MinScoreOpt = None,
    min_face: MinFaceOpt = None,
    no_detect: NoDetectOpt = False,
    runtime: RuntimeOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enroll one person from several photos, all in one transaction (each photo stored as its own embedding)."""
    from rnnface.aggregation.pooling import resolve_pooling
    from rnnface.gallery.enroll import NothingEnrolledError, enroll_images

    pipe = pipeline(model, runtime, detector(min_score, min_face, no_detect), device)
    pool = resolve_pooling(pooling, pipe.model_id)
    with _open(gallery, create=True) as g:
        try:
            summary = enroll_images(g, pipe, name, images, largest=largest, keep_crops=keep_crops, pool=pool)
        except NothingEnrolledError as exc:
            reasons = "; ".join(f"{i}: {r}" for i, r in exc.summary.with_hint(LARGEST_HINT).skipped)
            raise NothingEnrolledError(f"nothing enrolled for {name!r}: {reasons}", exc.summary) from None
        _print_summary(summary, as_json, g.location)


@app.command("enroll-dir")
def enroll_dir(
    root: Annotated[Path, typer.Argument(help="Identity folders: ROOT/<Person>/<image>.")],
    gallery: GalleryOpt = None,
    model: ModelOpt = None,
    largest: LargestOpt = False,
    keep_crops: KeepOpt = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N people (by name).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print a line as each person is committed.")] = False,
    pooling: PoolingOpt = "auto",
    min_score: MinScoreOpt = None,
    min_face: MinFaceOpt = None,
    no_detect: NoDetectOpt = False,
    runtime: RuntimeOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Bulk-enroll a folder tree, one transaction per person, with a progress bar and a summary of what was skipped."""
    from rnnface.aggregation.pooling import resolve_pooling
    from rnnface.gallery.enroll import enroll_directory
    from rnnface.io.folders import resolve_image_root

    pipe = pipeline(model, runtime, detector(min_score, min_face, no_detect), device)
    pool = resolve_pooling(pooling, pipe.model_id)
    with _open(gallery, create=True) as g:
        summary = enroll_directory(
            g,
            pipe,
            resolve_image_root(root),
            largest=largest,
            keep_crops=keep_crops,
            limit_people=limit,
            on_commit=(lambda person, n: typer.echo(f"committed {person} ({n} face(s))")) if verbose else None,
            pool=pool,
        )
        _print_summary(summary, as_json, g.location)
    if summary.faces == 0 and not summary.already:  # nothing enrolled is not success
        found = "no person folders" if not summary.people and not summary.skipped else "no face in any photo"
        typer.echo(f"error: nothing enrolled from {root}: {found} (the layout is ROOT/<Person>/<image>)", err=True)
        raise typer.Exit(2)


@app.command()
def identify(
    images: Annotated[list[Path], typer.Argument(help="Photos to search the gallery with (every face), or folders.")],
    gallery: GalleryOpt = None,
    model: ModelOpt = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="People to list per face.")] = 3,
    threshold: ThresholdOpt = None,
    fpir: FpirOpt = 0.01,
    by: Annotated[
        str,
        typer.Option(
            help="Compare with every stored face of each person ('face'), or with each person's template "
            "('template': the pooled embedding of all their photos)."
        ),
    ] = "face",
    draw: Annotated[
        Path | None,
        typer.Option(
            help="Write each photo with boxes and names here: a .png/.jpg for one photo, a folder for several."
        ),
    ] = None,
    min_score: MinScoreOpt = None,
    min_face: MinFaceOpt = None,
    no_detect: NoDetectOpt = False,
    runtime: RuntimeOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Who is in these photos? Each face gets its top-K people, or `unknown` below the threshold: by default the
    one at which a stranger is given a name with probability --fpir, at this gallery's size."""
    from rnnface.cli.inputs import Rows, attempt, check_draw, drawn_path, expand_images, output_mode, progress
    from rnnface.draw import draw_identified, save_image
    from rnnface.errors import NoFaceError
    from rnnface.gallery.identify import identify_image, search_threshold
    from rnnface.io import load_image

    if by not in ("face", "template"):
        raise typer.BadParameter(f"--by takes 'face' or 'template', got {by!r}")
    search_by: SearchBy = "face" if by == "face" else "template"
    mode, paths = output_mode(as_json, as_csv), expand_images(images)
    single = len(images) == 1 and len(paths) == 1 and not images[0].is_dir()
    check_draw(draw, single)
    pipe = pipeline(model, runtime, detector(min_score, min_face, no_detect), device)
    runners = [f"{kind}_{n}" for n in range(2, top + 1) for kind in ("match", "similarity")]
    columns = ["image", "face", "name", "similarity", *runners, "x1", "y1", "x2", "y2", "threshold", "point", "error"]
    rows = Rows(mode, columns, single)
    drawn: set[Path] = set()
    with _open(gallery) as g:
        decide = search_threshold(g, pipe, threshold, search_by, fpir)  # before any photo is read

        def run(path: Path):
            img = load_image(path)
            results = identify_image(g, pipe, img, top_k=top, threshold=threshold, by=search_by, fpir=fpir)
            if not results:  # an error row in a batch (CSV, JSON, text), and exit 2 at the end
                raise NoFaceError(f"{path}: no face detected")
            return img, results

        for path in progress(paths, "identify"):
            result = attempt(single, partial(run, path))
            if isinstance(result, Exception):
                rows.add({"image": str(path), "error": str(result)})
                continue
            img, results = result
            if draw is not None:
                save_image(draw_identified(img, results), drawn_path(draw, path, single, drawn))
            rows.add(
                {"image": str(path), "faces": [r.to_dict() for r in results]},
                _identified_text(path, results, single),
                [_identified_row(path, i, r) for i, r in enumerate(results)],
            )
    if mode == "text":
        typer.echo(f"threshold {decide.value:.3f}: {decide.describe()}")
        if draw is not None:
            typer.echo(f"drawn: {draw}")
    rows.finish(len(paths))


def _identified_text(path: Path, results, single: bool) -> str:
    lines = [] if single else [f"{path}: {len(results)} face(s)"]
    for i, r in enumerate(results):
        x1, y1, x2, y2 = r.face.box
        ranked = ", ".join(f"{m.person} {m.similarity:.3f}" for m in r.matches)
        lines.append(f"{'' if single else '  '}face {i} ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}): {r.name}  [{ranked}]")
    return "\n".join(lines)


def _identified_row(path: Path, i: int, r) -> dict:
    """One face as a CSV row: its answer and best similarity, then the runners-up (match_2, similarity_2, ...)."""
    best = r.matches[0].similarity if r.matches else None
    box = dict(zip(("x1", "y1", "x2", "y2"), map(float, r.face.box)))
    runners = {}
    for n, m in enumerate(r.matches[1:], start=2):
        runners[f"match_{n}"], runners[f"similarity_{n}"] = m.person, m.similarity
    row = {"image": str(path), "face": i, "name": r.name, "similarity": best, **runners, **box}
    return row | r.threshold.to_dict()


@app.command()
def people(
    gallery: GalleryOpt = None,
    as_json: JsonOpt = False,
    faces: Annotated[
        str | None, typer.Option("--faces", help="List this person's (or group's) stored faces with their ids.")
    ] = None,
) -> None:
    """List everyone enrolled, then the unnamed groups `cluster --keep` made, with face counts."""
    from rnnface.gallery.records import no_such_person, unnamed_number

    with _open(gallery) as g:
        rows, model_id, where = g.people(), g.model_id, g.location
        stored = [] if faces is None else list(g.faces(faces))
    if faces is not None:
        if not stored:
            raise no_such_person(where, faces)
        listed = [{"face_id": f.id, "source": f.source, "box": f.box} for f in stored]
        if as_json:
            print_json({"gallery": where, "person": faces, "faces": listed})
            return
        for f in listed:
            box = "" if f["box"] is None else " at " + ",".join(f"{v:.0f}" for v in f["box"])
            typer.echo(f"{f['face_id']}\t{f['source']}{box}")
        return
    if as_json:
        print_json({"gallery": where, "model": model_id, "people": [p.to_dict() for p in rows]})
        return
    named = [p for p in rows if not p.unnamed]
    groups = sorted((p for p in rows if p.unnamed), key=lambda p: cast(int, unnamed_number(p.name)))
    for p in named + groups:
        typer.echo(f"{p.name}\t{p.faces} face(s)" + (f", {p.crops_kept} crop(s) kept" if p.crops_kept else ""))
    unnamed = f" and {len(groups)} unnamed group(s) (rnnface name-cluster)" if groups else ""
    typer.echo(
        f"{len(named)} people{unnamed}, {sum(p.faces for p in rows)} faces in {where} (model {model_id or 'none yet'})"
    )


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The person to delete.")],
    gallery: GalleryOpt = None,
) -> None:
    """Delete a person: every embedding, kept crop and source reference (biometric data must be deletable)."""
    with _open(gallery) as g:
        n = g.remove(name)
    typer.echo(f"removed {name}: {n} face(s)")


@app.command("export")
def export_gallery(
    out: Annotated[Path, typer.Argument(help="Zip file to write (manifest.json, embeddings.npy, crops/).")],
    gallery: GalleryOpt = None,
) -> None:
    """Write the whole gallery to one portable file (readable by any backend's `import`)."""
    with _open(gallery) as g:
        n = g.export(out)
    typer.echo(f"exported {n} face(s) to {out}")


@app.command("import")
def import_gallery(
    file: Annotated[Path, typer.Argument(help="A file written by `rnnface export`.")],
    gallery: GalleryOpt = None,
) -> None:
    """Add every face of an export file (it must come from the same model), in one transaction."""
    with _open(gallery, create=True) as g:
        n = g.import_file(file)
    typer.echo(f"imported {n} face(s) from {file}")


@app.command()
def reindex(gallery: GalleryOpt = None, model: ModelOpt = None) -> None:
    """Re-embed every stored face with the current model (after a model change): from its kept crop (--keep-crops)
    when that is cut as the model wants, else from the photo it was enrolled from, found again at its stored box.
    Nothing changes unless every face can be re-embedded."""
    from rnnface.gallery.enroll import reindex as run_reindex

    pipe = pipeline(model)
    with _open(gallery) as g:
        n = run_reindex(g, pipe)
        typer.echo(f"re-embedded {n} face(s) of {g.location} with {g.model_id}")
