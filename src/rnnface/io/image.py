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

ImageSource = str | PathLike | bytes


def _name(source: ImageSource) -> str:
    return "<bytes>" if isinstance(source, bytes) else str(source)


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Map any Pillow mode to an (H, W, 3) uint8 RGB array."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 257.0  # 16-bit full range onto 8-bit
        else:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, as a viewer shows them, not black.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def load_image(source: ImageSource, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Load an image file (path) or encoded bytes as an (H, W, 3) uint8 RGB array.

    EXIF orientation is applied, so a phone photo comes out upright. Multi-frame files (GIF,
    TIFF) give their first frame. Raises ImageError naming the file for a missing, empty,
    non-image, corrupt, truncated or over-large input.
    """
    name = _name(source)
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{name}: empty input, no image data")
        stream: io.BytesIO | Path = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{name}: file not found")
        if path.is_dir():
            raise ImageError(f"{name}: is a directory, not an image file")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: empty file, no image data")
        stream = path
    try:
        with warnings.catch_warnings():
            # The pixel limit below replaces Pillow's own warning threshold.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageTooLargeError(
                        f"{name}: image is {width}x{height} = {width * height:,} pixels, "
                        f"over the limit of {max_pixels:,}"
                    )
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb8(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image, or an unsupported format") from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: image too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from None
