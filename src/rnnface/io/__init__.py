"""Image input: decode any common format into an RGB uint8 array."""

from rnnface.io.image import MAX_PIXELS, load_image

__all__ = ["MAX_PIXELS", "load_image"]
