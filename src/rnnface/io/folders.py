"""Identity-folder datasets: `<root>/<Person>/<image>`, the layout of LFW and most face datasets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnface.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".pgm", ".ppm", ".webp", ".tif", ".tiff"})
#: Video files a folder is searched for where clips are taken (`liveness`, presentation sets).
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".y4m", ".3gp"})


@dataclass(frozen=True)
class ImageRecord:
    path: str  # relative to the dataset root, with '/' separators
    person: str


def resolve_image_root(data: str | Path) -> Path:
    """The identity-folder root: `data` itself, or `data/lfw` for an LFW download (which holds pairs.txt beside it)."""
    data = Path(data)
    if not data.is_dir():
        raise DataError(
            f"{data}: dataset directory not found. Get LFW (deep-funneled) from "
            "http://vis-www.cs.umass.edu/lfw/ (lfw-deepfunneled.tgz + pairs.txt) and pass its folder, "
            "or set RNNFACE_DATA."
        )
    nested = data / "lfw"
    return nested if nested.is_dir() else data


@dataclass(frozen=True)
class FolderScan:
    """An identity-folder tree as found: the images of `<root>/<Person>/`, and what lies outside that layout."""

    records: list[ImageRecord]
    stray: list[str]  # images directly under the root (whose are they?)
    nested: list[str]  # folders inside a person's folder (their photos are not that person's by rule)
    empty: list[str]  # person folders with no image


def scan_identity_folders(root: str | Path) -> FolderScan:
    """Every image under `root/<Person>/`, sorted by path, and each thing outside the layout, by relative path."""
    root = Path(root)
    records, stray, nested, empty = [], [], [], []
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            inside = sorted(entry.iterdir())
            images = [f for f in inside if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
            records += [ImageRecord(f"{entry.name}/{f.name}", entry.name) for f in images]
            nested += [f"{entry.name}/{d.name}" for d in inside if d.is_dir()]
            if not images:
                empty.append(entry.name)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            stray.append(entry.name)
    return FolderScan(records, stray, nested, empty)


def list_identity_images(root: str | Path) -> list[ImageRecord]:
    """Every image under `root/<Person>/`, sorted by path; raises DataError when there are none."""
    records = scan_identity_folders(root).records
    if not records:
        raise DataError(f"{root}: no images found in the <Person>/<image> layout")
    return records
