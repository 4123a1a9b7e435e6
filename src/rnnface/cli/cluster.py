"""`rnnface cluster`: group the faces of a photo set by person, with a contact sheet per group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnface.cli.options import (
    TYPER,
    CsvOpt,
    DeviceOpt,
    GalleryOpt,
    JsonOpt,
    MinFaceOpt,
    MinScoreOpt,
    ModelOpt,
    RuntimeOpt,
    detector,
    pipeline,
    print_json,
    threshold_option,
)

app = typer.Typer(**TYPER)

#: Faces shown on a group's contact sheet (the representative first, then the most typical).
SHEET_FACES = 48


@app.command()
def cluster(
    images: Annotated[list[Path], typer.Argument(help="Photos, or folders of photos (all levels down).")],
    threshold: Annotated[
        str | None,
        typer.Option(
            help="Operating point (strict, balanced, loose) or a cosine: two groups merge while the mean similarity "
            "of their faces reaches it.  [default: strict]",
            callback=lambda value: threshold_option(value),
        ),
    ] = None,
    min_size: Annotated[int, typer.Option(min=1, help="Smaller groups are left alone (listed, not grouped).")] = 2,
    sheets: Annotated[
        Path | None,
        typer.Option(
            help="Folder (made when missing) for one contact sheet per group: group-<n>.png, or with --keep named "
            "as the gallery names the group (unknown-<k>.png for unknown #k)."
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option(
            help="Keep the groups in the gallery as unnamed groups (unknown #k): new faces join the people and "
            "groups already there or found new ones; only faces of unnamed groups are stored."
        ),
    ] = False,
    gallery: GalleryOpt = None,
    model: ModelOpt = None,
    min_score: MinScoreOpt = None,
    min_face: MinFaceOpt = None,
    runtime: RuntimeOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Who is in these photos? Every face is grouped with the faces of the same person. Nothing is stored unless
    --keep; a group becomes a person only by `rnnface name-cluster`."""
    from rnnface.cli.inputs import expand_images, output_folder, output_mode, progress
    from rnnface.clustering.photos import cluster_photos, clustering_threshold

    mode, paths = output_mode(as_json, as_csv), expand_images(images)
    if sheets is not None:
        output_folder(sheets, "--sheets")
    pipe = pipeline(model, runtime, detector(min_score, min_face, False), device)
    clustering_threshold(pipe, threshold)  # a point the model lacks fails before any photo is read
    result = cluster_photos(pipe, ((str(p), p) for p in progress(paths, "cluster")), threshold, min_size)
    if keep:
        placed = _keep(result, gallery, pipe.model_id, mode)
        if sheets is not None:  # one per stored group, named as the gallery names it (`unknown #k`)
            stored: dict[str, list[int]] = {}
            for i, p in enumerate(placed):
                if p.stored:
                    stored.setdefault(p.group, []).append(i)
            _write_sheets(result, sheets, [(group, members) for group, members in stored.items()])
        return
    if sheets is not None:
        _write_sheets(result, sheets, [(f"group {n}", g.members) for n, g in enumerate(result.groups)])
    if mode == "json":
        print_json(result.to_dict())
    elif mode == "csv":
        _print_csv(result)
    else:
        _print_text(result, sheets)


def _keep(result, gallery: str | None, model_id: str, mode: str) -> list:
    """Store the groups in the gallery, say where every face went, and return that (one `Placed` per face)."""
    from collections import Counter

    from rnnface.clustering.store import keep_groups
    from rnnface.gallery import open_gallery

    with open_gallery(gallery or None, create=True) as g:
        placed = keep_groups(g, model_id, result.faces, result.threshold, result.min_size, pooling=result.pooling)
        where = g.location
    if mode == "json":
        print_json(
            {
                "gallery": where,
                **result.threshold.to_dict(),
                **result.pooling.to_dict(),
                "faces": [p.to_dict() for p in placed],
                "skipped": [{"image": s, "reason": r} for s, r in result.skipped],
            }
        )
        return placed
    if mode == "csv":
        import csv
        import sys

        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(["image", "x1", "y1", "x2", "y2", "group", "stored"])
        for p in placed:
            out.writerow([p.face.source, *_corners(p.face.face.box), p.group or "", int(p.stored)])
        return placed
    _print_skipped(result)
    counts = Counter((p.group, p.stored, p.new_group) for p in placed)
    for (group, stored, new), n in sorted(counts.items(), key=lambda kv: (kv[0][0] is None, str(kv[0][0]))):
        if group is None:
            typer.echo(f"left alone (not stored): {n} face(s)")
        elif stored:
            typer.echo(f"{group}: {n} face(s) {'founded this new group' if new else 'joined it'}")
        else:
            typer.echo(f"{group}: {n} face(s) look like this person (not stored: enroll them to add them)")
    typer.echo(f"stored {sum(p.stored for p in placed)} of {len(placed)} face(s) in {where}")
    return placed


@app.command("name-cluster")
def name_cluster(
    group: Annotated[str, typer.Argument(help="The unnamed group: its number k, or 'unknown #k'.")],
    name: Annotated[
        str, typer.Argument(help="The person it is (an enrolled person's faces are joined), or another group's k.")
    ],
    gallery: GalleryOpt = None,
) -> None:
    """Make an unnamed group a person (every one of its faces now answers to NAME), or merge it into group NAME."""
    from rnnface.clustering.store import group_target, name_group
    from rnnface.gallery import open_gallery

    with open_gallery(gallery or None, create=False) as g:
        n = name_group(g, group, name)
    typer.echo(f"moved {n} face(s) into {group_target(name)}")


@app.command("split-face")
def split_face(
    face_id: Annotated[
        int, typer.Argument(min=0, max=2**63 - 1, help="The stored face's id (`rnnface people --faces`).")
    ],
    gallery: GalleryOpt = None,
) -> None:
    """Take a stored face out of its group or person into a new unnamed group of its own: it was someone else."""
    from rnnface.clustering.store import split_face
    from rnnface.gallery import open_gallery

    with open_gallery(gallery or None, create=False) as g:
        was, group = split_face(g, face_id)
    typer.echo(f"face {face_id} moved from {was} to a new group of its own: {group}")


def _print_skipped(result) -> None:
    for source, reason in result.skipped:
        typer.echo(f"skipped {source}: {reason}")


def _print_text(result, sheets: Path | None) -> None:
    for number, group in enumerate(result.groups):
        rep = result.faces[group.representative]
        typer.echo(
            f"group {number}: {group.size} faces (cohesion {group.cohesion:.3f}, nearest group {group.nearest:.3f}); "
            f"e.g. {rep.source}"
        )
        for i in group.members:
            typer.echo(f"  {result.faces[i].source}  box {','.join(_corners(result.faces[i].face.box))}")
    _print_skipped(result)
    typer.echo(
        f"{len(result.faces)} face(s): {len(result.groups)} group(s) of {result.min_size}+, "
        f"{len(result.alone)} left alone; threshold {result.threshold.value:.3f}: {result.threshold.describe()}"
        + (f", evidence pooled (rho {result.pooling.rho:g})" if result.pooling.rho < 1 else "")
    )
    if sheets is not None and result.groups:
        typer.echo(f"contact sheets: {sheets}/group-0.png ... group-{len(result.groups) - 1}.png")


def _print_csv(result) -> None:
    import csv
    import sys

    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["image", "x1", "y1", "x2", "y2", "group", "size", "cohesion"])
    label = {i: (n, g) for n, g in enumerate(result.groups) for i in g.members}
    for i, face in enumerate(result.faces):
        number, group = label.get(i, ("", None))
        row = [face.source, *_corners(face.face.box)]
        out.writerow(row + [number, group.size if group else 1, f"{group.cohesion:.4f}" if group else ""])


def _corners(box) -> list[str]:
    return [f"{v:.0f}" for v in box]


def sheet_name(label: str) -> str:
    """A group label as a file name: `group 3` -> group-3, `unknown #3` -> unknown-3."""
    return label.replace(" #", "-").replace(" ", "-")


def _write_sheets(result, folder: Path, groups: list[tuple[str, list[int]]]) -> None:
    """One picture per (label, member faces) group, named after its label (`group 3` -> group-3.png, `unknown #3`
    -> unknown-3.png): the faces most like the group's mean first."""
    import numpy as np

    from rnnface.draw import contact_sheet, face_thumbnail, save_image
    from rnnface.io import load_image

    images: dict[str, np.ndarray] = {}
    for label, members in groups:
        mean = np.sum([result.faces[i].embedding for i in members], axis=0)
        shown = sorted(members, key=lambda i: -float(result.faces[i].embedding @ mean))[:SHEET_FACES]
        thumbs = []
        for i in shown:
            face = result.faces[i]
            if face.source not in images:
                images = {face.source: load_image(face.source)}  # one photo held at a time
            thumbs.append(face_thumbnail(images[face.source], face.face))
        title = f"{label}: {len(members)} faces" + (f" ({len(shown)} shown)" if len(members) > len(shown) else "")
        save_image(contact_sheet(thumbs, title), folder / f"{sheet_name(label)}.png")
