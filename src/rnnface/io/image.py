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
from typing import cast

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rnnface.errors import ImageError, ImageTooLargeError

#: Largest image accepted, in pixels (a 100-megapixel photo); larger files are refused, not decoded.
MAX_PIXELS = 100_000_000
#: Longest side accepted: a 99,000,000 x 1 strip is under the pixel limit but no photo.
MAX_SIDE = 30_000
#: Most memory one decode may take (the decoded source plus its RGB copy), estimated from the header.
MAX_DECODED_BYTES = 1_500_000_000
#: Bytes per pixel Pillow stores each mode in (`1`, `L`, `P` one byte, 16-bit greys two; every other mode, RGB
#: included, four).
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
#: What a format's decoder holds beside Pillow's image while it decodes, in bytes per pixel (measured; WebP's
#: decoder keeps its own RGBA buffers, copied into the image).
_DECODER_BYTES = {"WEBP": 10}
#: Rows converted to RGB at a time, so the conversion holds one band beside the result, not a second image.
_BAND = 256

ImageSource = str | PathLike | bytes


def _name(source: ImageSource) -> str:
    return "<bytes>" if isinstance(source, bytes) else str(source)


def decode_cost(width: int, height: int, mode: str, format: str | None = None) -> int:
    """Bytes a decode takes at its peak, from the header alone: Pillow's image, the decoder's own buffer, the RGB
    result, the band being converted (one more image for an EXIF rotation: `load_image` counts it). Checked against
    the measured peaks of every format (tests/test_image_io.py)."""
    per_pixel = _STORED_BYTES.get(mode, 4) + _DECODER_BYTES.get(format or "", 0) + 3
    return width * height * per_pixel + _BAND * width * 32


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Map any Pillow mode to an (H, W, 3) uint8 RGB array, a band of rows at a time (the result and one band beside
    Pillow's image, never a converted copy of the whole image)."""
    width, height = img.size
    # 32-bit values are stretched over 0-255 (I and F are one band: their extrema are one (min, max) pair)
    extrema = cast("tuple[float, float]", img.getextrema()) if img.mode in ("I", "F") else None
    out = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, _BAND):
        band = img.crop((0, top, width, min(height, top + _BAND)))
        out[top : top + band.height] = _band_rgb8(band, extrema)
    return out


def _band_rgb8(img: Image.Image, extrema: tuple[float, float] | None = None) -> np.ndarray:
    """One band of rows of any Pillow mode as (h, W, 3) uint8 RGB (`extrema`: the whole image's range of an I or
    F image)."""
    if extrema is not None:
        lo, hi = (float(v) for v in extrema)
        arr = np.asarray(img, dtype=np.float32)
        arr = (arr - lo) * np.float32(255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode.startswith("I;16"):
        wide = np.asarray(img, dtype=np.uint16)
        grey = ((wide.astype(np.uint32) + 128) // 257).astype(np.uint8)  # the 16-bit range onto 8-bit, rounded
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, as a viewer shows them, not black.
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


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
    cost = decode_cost(width, height, img.mode, img.format)
    if img.getexif().get(0x0112, 1) not in (1, None):  # exif_transpose makes a rotated copy
        cost += width * height * _STORED_BYTES.get(img.mode, 4)
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
                ImageOps.exif_transpose(img, in_place=True)  # a copy only when there is a rotation to apply
                return _to_rgb8(img)
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
