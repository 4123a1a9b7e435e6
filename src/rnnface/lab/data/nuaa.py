"""The NUAA Photograph Imposter Database (Tan et al., ECCV 2010), normalized faces, and its official split.

`<root>/ClientNormalized/<id>/*.png` are live faces and `<root>/ImposterNormalized/<id>/*.png` printed photos
held to the camera: 64x64 grey crops normalized on the two eyes. `<client|imposter>_<train|test>_normalized.txt`
list the official split (train and test from different sessions). A file is named
`ID_glasses_pos_session_frame.png`, so the frames of one (ID, glasses, pos, session) are one capture, a
time-ordered sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rnnface.errors import DataError

SPLITS = ("train", "test")
_KINDS = {"client": ("ClientNormalized", True), "imposter": ("ImposterNormalized", False)}


@dataclass(frozen=True)
class Capture:
    """One time-ordered sequence of frames: a subject, live or an attack, in one condition and session."""

    key: str  # "client/0001_00_00_01"
    subject: str
    live: bool
    session: str
    files: tuple[str, ...]  # paths under the root, in frame order


def check_root(root: str | Path) -> Path:
    """The NUAA root, or DataError saying what is missing and where to get the set."""
    root = Path(root)
    listed = [root / f"{kind}_{split}_normalized.txt" for kind in _KINDS for split in SPLITS]
    if not all(p.is_file() for p in listed) or not all((root / d).is_dir() for d, _ in _KINDS.values()):
        raise DataError(
            f"{root}: not the NUAA Photograph Imposter Database (expected ClientNormalized/, ImposterNormalized/ "
            "and the four *_normalized.txt lists); get it from the NUAA database's authors (research use) and pass "
            "its folder with --nuaa or RNNFACE_NUAA"
        )
    return root


def captures(root: str | Path, split: str) -> list[Capture]:
    """The official `split` (train or test) as captures, each its frames sorted by frame number."""
    if split not in SPLITS:
        raise DataError(f"NUAA split must be one of {SPLITS}, got {split!r}")
    root = check_root(root)
    out: list[Capture] = []
    for kind, (folder, live) in _KINDS.items():
        groups: dict[str, list[tuple[int, str]]] = {}
        for line in (root / f"{kind}_{split}_normalized.txt").read_text().split():
            stem = Path(line).stem.split("_")
            if len(stem) != 5 or not stem[4].isdigit():
                raise DataError(f"{root}: {kind}_{split}_normalized.txt: unexpected entry {line!r}")
            groups.setdefault("_".join(stem[:4]), []).append((int(stem[4]), f"{folder}/{line}"))
        for name, frames in sorted(groups.items()):
            files = tuple(f for _, f in sorted(frames))
            out.append(Capture(f"{kind}/{name}", name.split("_")[0], live, name.split("_")[3], files))
    return out


def load_frame(root: str | Path, rel: str) -> np.ndarray:
    """(64, 64) uint8 grey frame `rel` (a path in a capture's `files`)."""
    img = cv2.imread(str(Path(root) / rel), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DataError(f"{Path(root) / rel}: missing or unreadable NUAA frame")
    return img


def load_frames(root: str | Path, capture: Capture) -> np.ndarray:
    """(T, 64, 64) uint8 grey frames of one capture."""
    return np.stack([load_frame(root, rel) for rel in capture.files])


def measure_eyes(root: str | Path, detect: Callable[[np.ndarray], np.ndarray | None], every: int = 10) -> np.ndarray:
    """(2, 2) median eye positions (x, y in crop pixels) that `detect` (photo -> 5 landmarks, None: no face) finds
    in NUAA's training crops, each made a photo by `as_photo`, every `every`-th frame of each capture: where a
    detected face's eyes must go for its crop to be cut as NUAA cut its faces."""
    scale = 3
    found = []
    for capture in captures(root, "train"):
        for crop in load_frames(root, capture)[::every]:
            photo = as_photo(crop, scale)
            landmarks = detect(photo)
            if landmarks is not None:
                pad = (photo.shape[0] - scale * crop.shape[0]) // 2  # the border as_photo added on each side
                found.append((np.asarray(landmarks, dtype=np.float64).reshape(5, 2)[:2] - pad) / scale)
    if not found:
        raise DataError(f"{root}: the detector found no face in NUAA's training crops")
    return np.median(np.stack(found), axis=0)


def as_photo(crop: np.ndarray, scale: int = 3, border: float = 0.5) -> np.ndarray:
    """An RGB photo made from a 64x64 grey crop, for the detector: upscaled `scale` times and padded by `border`
    of its side on each side (edge pixels repeated), as a camera frame with the face in its middle."""
    up = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    pad = int(border * up.shape[0])
    up = cv2.copyMakeBorder(up, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return np.repeat(up[..., None], 3, axis=2)
