"""Identity-folder datasets: `<root>/<Person>/<image>`, the layout of LFW and most face datasets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnface.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".pgm", ".ppm", ".webp", ".tif", ".tiff"})


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


def list_identity_images(root: str | Path) -> list[ImageRecord]:
    """Every image under `root/<Person>/`, sorted by path; raises DataError when there are none."""
    root = Path(root)
    records = [
        ImageRecord(f"{person.name}/{img.name}", person.name)
        for person in sorted(p for p in root.iterdir() if p.is_dir())
        for img in sorted(person.iterdir())
        if img.suffix.lower() in IMAGE_SUFFIXES and img.is_file()
    ]
    if not records:
        raise DataError(f"{root}: no images found in the <Person>/<image> layout")
    return records
