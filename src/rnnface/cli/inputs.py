"""What the photo commands share: many photos in one call (files, folders, a pairs file) with one model load
and a progress bar, and their rows out as text, CSV or JSON.

One photo behaves as it always did (a bad one is the command's error). In a batch a bad photo is a row with
its error, the others go on, and the exit status is 2 when any failed.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

from rnnface.errors import RnnfaceError
from rnnface.io.folders import IMAGE_SUFFIXES

T = TypeVar("T")


def expand_images(paths: Sequence[Path], suffixes: frozenset[str] = IMAGE_SUFFIXES, what: str = "images") -> list[Path]:
    """Files as given, and each folder's images (or other `suffixes`; all levels down, sorted; links to folders
    are not followed)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                Path(top) / name
                for top, _, names in os.walk(path)
                for name in names
                if Path(name).suffix.lower() in suffixes and not name.startswith(".")
            )
            if not found:
                raise typer.BadParameter(f"{path}: no {what} in this folder ({', '.join(sorted(suffixes))})")
            out.extend(found)
        elif path.exists():
            out.append(path)  # what is in it is checked when it is read
        else:
            raise typer.BadParameter(f"{path}: no such file or folder")
    return out


def read_pairs(path: Path) -> list[tuple[Path, Path]]:
    """A pairs file: one pair a line, two image paths separated by a tab, a comma or spaces (paths relative to
    the file's folder); blank lines and lines starting with # are skipped."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{path}: not a readable text file ({type(exc).__name__})") from None
    pairs: list[tuple[Path, Path]] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = next((f for sep in ("\t", ",") if len(f := [x.strip() for x in text.split(sep)]) == 2), text.split())
        if len(fields) != 2:
            raise typer.BadParameter(f"{path}, line {number}: expected two image paths, got {len(fields)} field(s)")
        first, second = (p if p.is_absolute() else path.parent / p for p in map(Path, fields))
        pairs.append((first, second))
    if not pairs:
        raise typer.BadParameter(f"{path}: no pairs in this file")
    return pairs


def progress(items: Sequence[T], desc: str) -> Iterable[T]:
    """`items` with a progress bar on a terminal's stderr when there are several."""
    if len(items) < 2:
        return items
    from rnnface.progress import progress_bar

    return progress_bar(items, desc=desc, unit="photo", leave=False)


class Rows:
    """The rows of a command, printed as text or CSV as they come, or as JSON at the end (one object for a
    single photo, else a list); `failed` counts the rows that carry an error."""

    def __init__(self, mode: str, columns: list[str], single: bool) -> None:
        self.mode, self.columns, self.single = mode, columns, single
        self.records: list[dict[str, Any]] = []
        self.failed = 0
        self._csv: csv.DictWriter[str] | None = None
        if mode == "csv":
            self._csv = csv.DictWriter(sys.stdout, columns, extrasaction="ignore", lineterminator="\n")
            self._csv.writeheader()

    def add(self, record: dict[str, Any], text: str | None = None, flat: list[dict[str, Any]] | None = None) -> None:
        """One result: `record` for JSON, `flat` (default: [record]) as CSV rows, `text` for people."""
        self.failed += "error" in record
        if self.mode == "json":
            self.records.append(record)
        elif self.mode == "csv":
            assert self._csv is not None
            for row in flat if flat is not None else [record]:
                self._csv.writerow({k: _cell(v) for k, v in row.items()})
            sys.stdout.flush()
        elif "error" in record:
            name = str(record.get("image", record.get("source", "")))
            error = str(record["error"])
            typer.echo(f"error: {error if error.startswith(name + ':') else f'{name}: {error}'}", err=True)
        elif text:
            typer.echo(text)

    def finish(self, total: int, what: str = "photo") -> None:
        """Print the JSON, then exit 2 if any row failed (after saying how many)."""
        if self.mode == "json":
            typer.echo(json.dumps(self.records[0] if self.single and self.records else self.records, indent=2))
        if self.failed:
            typer.echo(f"error: {self.failed} of {total} {what}(s) could not be processed", err=True)
            raise typer.Exit(2)


def _cell(value: Any) -> Any:
    return f"{value:.4f}" if isinstance(value, float) else value


def output_mode(as_json: bool, as_csv: bool) -> str:
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv")
    return "json" if as_json else "csv" if as_csv else "text"


def attempt(single: bool, work: Callable[[], T]) -> T | RnnfaceError:
    """`work()`; in a batch an rnnface error is returned (to become its row), for one photo it is raised."""
    try:
        return work()
    except RnnfaceError as exc:
        if single:
            raise
        return exc


def drawn_path(draw: Path, image: Path, single: bool, taken: set[Path]) -> Path:
    """Where a batch's drawing of `image` goes: `draw` itself for one photo, else `draw/<name>.png` (numbered when
    two photos share a name)."""
    if single:
        return draw
    target = draw / f"{image.stem}.png"
    n = 2
    while target in taken:
        target, n = draw / f"{image.stem}-{n}.png", n + 1
    taken.add(target)
    return target


def output_folder(folder: Path, option: str) -> Path:
    """The folder an option writes into, created (with its parents) when missing; BadParameter naming the option
    when it cannot be (a file is there, or no permission)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"{option} {folder}: cannot make this folder ({exc.strerror or exc})") from None
    return folder


def check_draw(draw: Path | None, single: bool) -> None:
    """A picture path for one photo; a folder for several, created when missing."""
    from rnnface.io.paths import check_output

    if draw is None:
        return
    if single:
        check_output(draw, "picture")
    else:
        output_folder(draw, "--draw")
