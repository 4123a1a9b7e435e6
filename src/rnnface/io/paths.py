"""Output files: checked before any work starts, written whole or not at all."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rnnface.errors import RnnfaceError


class OutputError(RnnfaceError):
    """An output file cannot be written where it was asked for."""


def check_output(path: str | os.PathLike, what: str = "output", parents: bool = False) -> Path:
    """`path` as a Path, or OutputError (naming it) if a file cannot be written there: a directory, a parent
    folder that is missing (unless `parents`: then it will be made) or is a file, or a folder this user may
    not write to. Checked before the work that fills it."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give a file name for the {what}")
    parent = path.parent if str(path.parent) else Path(".")
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise OutputError(f"{path}: {existing} is a file, not a folder; cannot write the {what} there")
    if existing != parent and not parents:
        raise OutputError(f"{path}: the folder {parent} does not exist; create it first, or write the {what} elsewhere")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: no permission to write the {what} in {existing}")
    return path


@contextmanager
def atomic_output(
    path: str | os.PathLike, what: str = "output", parents: bool = True, keep_suffix: bool = False
) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` when the block succeeds, removed when it fails.
    Its name is unique to the call, so two writers of one file (threads, processes) never share it; with
    `keep_suffix` it ends in the same suffix (for writers that choose a format by it). Missing parent folders
    are made unless `parents` is False (outputs a user named are checked first: `check_output`)."""
    path = check_output(path, what, parents)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    tmp = path.with_name(f"{path.stem}.{token}.tmp{path.suffix}" if keep_suffix else f"{path.name}.{token}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the {what} ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
