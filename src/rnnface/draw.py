"""Annotated pictures: boxes, landmarks and labels drawn on a copy of the image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rnnface.detection import Face
from rnnface.errors import ImageError
from rnnface.io.paths import atomic_output

_BOX = (0, 200, 255)
_POINT = (255, 64, 64)


#: The box colour of a face that is nobody known.
UNKNOWN_BOX = (170, 170, 170)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw_faces(
    image: np.ndarray,
    faces: Sequence[Face],
    labels: Sequence[str] | None = None,
    colours: Sequence[tuple[int, int, int]] | None = None,
) -> np.ndarray:
    """A copy of RGB `image` with each face's box, 5 landmarks and label (default: its number), in `colours`.

    A long label gets smaller text (down to 0.6 of the size), stays inside the image, and goes below its box, or
    further up or down, when it would cover another label."""
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thickness = max(1, round(max(h, w) / 300))
    placed: list[tuple[int, int, int, int]] = []
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, face in enumerate(faces):
        colour = colours[i] if colours is not None else _BOX
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        for x, y in face.landmarks:
            cv2.circle(out, (int(round(x)), int(round(y))), thickness + 1, _POINT, -1)
        label = labels[i] if labels is not None else f"{i}: {face.score:.2f}"
        scale = 0.4 * thickness
        (tw, th), _ = cv2.getTextSize(label, font, scale, thickness)
        widest = max(1.5 * (x2 - x1), 60)
        if tw > widest:
            scale *= max(widest / tw, 0.6)  # smaller, but still readable
            (tw, th), _ = cv2.getTextSize(label, font, scale, thickness)
        left = min(max(0, x1), max(0, w - tw - 4))
        step = th + 4
        tops = [y1 - step, y2] + [y1 - step * (k + 2) for k in range(4)] + [y2 + step * (k + 1) for k in range(4)]
        spots = [(left, t, left + tw + 4, t + step) for t in (min(max(0, t), max(0, h - step)) for t in tops)]
        rect = next((r for r in spots if not any(_overlaps(r, p) for p in placed)), spots[0])
        placed.append(rect)
        cv2.rectangle(out, rect[:2], rect[2:], colour, -1)
        cv2.putText(out, label, (rect[0] + 2, rect[1] + th + 1), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return out


def draw_identified(image: np.ndarray, results: Sequence) -> np.ndarray:
    """`draw_faces` of `identify`'s results: each face labelled with its name (or `unknown`) and best similarity,
    unknown faces in grey."""
    from rnnface.gallery import UNKNOWN

    labels = [f"{r.name} {r.matches[0].similarity:.2f}" if r.matches else r.name for r in results]
    colours = [UNKNOWN_BOX if r.name == UNKNOWN else _BOX for r in results]
    return draw_faces(image, [r.face for r in results], labels, colours)


def save_image(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB uint8 array; the format follows the file suffix (.png, .jpg, ...)."""
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ImageError(
            f"{path}: cannot write an image with this name (unknown suffix {path.suffix!r}; use .png or .jpg)"
        )
    with atomic_output(path, "picture") as tmp:
        Image.fromarray(image).save(tmp, format=image_format)
    return path


def face_thumbnail(image: np.ndarray, face: Face, size: int = 96, margin: float = 0.25) -> np.ndarray:
    """A `size` x `size` RGB thumbnail of `face`: its box widened by `margin` on each side, squared, padded grey
    where it leaves the photo."""
    x1, y1, x2, y2 = face.box
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    scale = size / max(side, 1.0)
    matrix = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]], np.float32)
    return cv2.warpAffine(
        np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_AREA, borderValue=(128, 128, 128)
    )


def contact_sheet(thumbnails: Sequence[np.ndarray], title: str, columns: int = 8) -> np.ndarray:
    """Thumbnails in rows of `columns` under a title line: one picture of a group of faces."""
    if not thumbnails:
        raise ValueError("a contact sheet needs at least one thumbnail")
    size = thumbnails[0].shape[0]
    columns = min(columns, len(thumbnails))
    rows = -(-len(thumbnails) // columns)
    header = 28
    sheet = np.full((header + rows * (size + 4) + 4, columns * (size + 4) + 4, 3), 255, np.uint8)
    for i, thumb in enumerate(thumbnails):
        r, c = divmod(i, columns)
        y, x = header + 4 + r * (size + 4), 4 + c * (size + 4)
        sheet[y : y + size, x : x + size] = thumb
    scale = min(0.6, 0.6 * sheet.shape[1] / max(1, cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)[0][0] + 8))
    cv2.putText(sheet, title, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet
