"""Decode image files or bytes into RGB uint8 arrays, with clear errors for bad input.

Pillow does the decoding (JPEG, PNG, BMP, GIF, PGM/PPM, WebP, TIFF, ...). This module adds what a
face pipeline needs on top: EXIF orientation, every pixel mode mapped to 8-bit RGB (greyscale,
palette, alpha, 16-bit and float), a pixel limit, and one error type naming the offending file.
"""

from __future__ import annotations

import io
import warnings
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rnnface.errors import ImageError, ImageTooLargeError

#: Largest image accepted, in pixels (a 100-megapixel photo); larger files are refused, not decoded.
MAX_PIXELS = 100_000_000
#: Longest side accepted: a 99,000,000 x 1 strip is under the pixel limit but no photo.
MAX_SIDE = 30_000
#: Most memory one decode may take (the decoded source plus its RGB copy), estimated from the header.
MAX_DECODED_BYTES = 1_500_000_000
#: Bytes per pixel of each Pillow mode as decoded (unlisted modes count 4).
_MODE_BYTES = {
    "1": 1,
    "L": 1,
    "P": 1,
    "LA": 2,
    "PA": 2,
    "La": 2,
    "I;16": 2,
    "I;16B": 2,
    "I;16L": 2,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "RGBa": 4,
    "CMYK": 4,
    "RGBX": 4,
    "I": 4,
    "F": 4,
}

ImageSource = str | PathLike | bytes


def _name(source: ImageSource) -> str:
    return "<bytes>" if isinstance(source, bytes) else str(source)


def decode_cost(width: int, height: int, mode: str) -> int:
    """Bytes a decode takes at its peak, estimated from the header alone: Pillow's decoded image and one array
    copy of it, the 8-bit RGB result and its working copy (plus an RGBA composite for transparent images)."""
    extra = 8 if mode in ("RGBA", "LA", "PA", "P", "RGBa", "La") else 0
    return width * height * (2 * _MODE_BYTES.get(mode, 4) + 6 + extra)


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Map any Pillow mode to an (H, W, 3) uint8 RGB array, never holding more than a few bytes per pixel."""
    if img.mode.startswith("I;16"):
        wide = np.asarray(img, dtype=np.uint16)
        grey = np.empty(wide.shape, np.uint8)
        for top in range(0, len(wide), 256):  # x / 257 rounded (the 16-bit range onto 8-bit), a band at a time
            grey[top : top + 256] = (wide[top : top + 256].astype(np.uint32) + 128) // 257
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * np.float32(255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, as a viewer shows them, not black.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _stream(source: ImageSource, name: str) -> io.BytesIO | Path:
    """What Pillow opens for `source`, or ImageError when there is nothing to decode there."""
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{name}: empty input, no image data")
        return io.BytesIO(source)
    path = Path(source)
    try:
        if not path.exists():
            raise ImageError(f"{name}: file not found")
        if path.is_dir():
            raise ImageError(f"{name}: is a directory, not an image file")
        if not path.is_file():  # a FIFO or a device would block or never end: not a photo
            raise ImageError(f"{name}: not a regular file (a pipe, socket or device), not an image file")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: empty file, no image data")
    except PermissionError:
        raise ImageError(f"{name}: permission denied (the file cannot be read)") from None
    return path


def _check_size(img: Image.Image, name: str, max_pixels: int, max_side: int, max_decoded_bytes: int) -> None:
    """ImageTooLargeError when the header announces more than the limits allow (nothing decoded yet)."""
    width, height = img.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
        )
    if max(width, height) > max_side:
        raise ImageTooLargeError(f"{name}: image is {width}x{height}, a side over the limit of {max_side:,} pixels")
    cost = decode_cost(width, height, img.mode)
    if cost > max_decoded_bytes:
        raise ImageTooLargeError(
            f"{name}: a {width}x{height} {img.mode} image takes {cost:,} bytes to decode, over the limit of "
            f"{max_decoded_bytes:,}"
        )


def load_image(
    source: ImageSource,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
    max_decoded_bytes: int = MAX_DECODED_BYTES,
) -> np.ndarray:
    """Load an image file (path) or encoded bytes as an (H, W, 3) uint8 RGB array.

    EXIF orientation is applied, so a phone photo comes out upright. Multi-frame files (GIF,
    TIFF) give their first frame. Raises ImageError naming the file for a missing, empty,
    unreadable, non-image, corrupt, truncated or over-large input; the size limits (pixels, side,
    decoded bytes) are checked from the header, before anything is decoded.
    """
    name = _name(source)
    stream = _stream(source, name)
    try:
        with warnings.catch_warnings():
            # The limits below replace Pillow's own warning threshold.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                _check_size(img, name, max_pixels, max_side, max_decoded_bytes)
                img.load()
                return _to_rgb8(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image, or an unsupported format") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied (the file cannot be read)") from None
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"{name}: image too large to decode (over Pillow's own pixel limit)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from None
