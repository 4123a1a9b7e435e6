"""Image loading: every common format and pixel mode, and a clear error for each kind of bad file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rnnface.errors import ImageError, ImageTooLargeError
from rnnface.io import load_image


def _gradient(w: int = 40, h: int = 30) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.uint8)[:, None, None]
    return np.concatenate(
        [np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)), np.full((h, w, 1), 77, np.uint8)], 2
    )


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".gif", ".webp", ".tif", ".ppm"])
def test_colour_formats_load_as_rgb(tmp_path, suffix):
    path = tmp_path / f"img{suffix}"
    Image.fromarray(_gradient()).save(path)
    img = load_image(path)
    assert img.shape == (30, 40, 3) and img.dtype == np.uint8
    tolerance = 40 if suffix in (".jpg", ".webp", ".gif") else 0  # lossy or palette formats
    assert np.abs(img.astype(int) - _gradient().astype(int)).mean() <= max(tolerance / 4, 0.01)


def test_pgm_greyscale_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "grey.pgm"
    Image.fromarray(_gradient()[..., 0]).save(path)
    img = load_image(path)
    assert img.shape == (30, 40, 3)
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
    assert img[0, -1, 0] == 255


def test_sixteen_bit_png_scales_to_eight_bit(tmp_path):
    path = tmp_path / "deep.png"
    data = np.full((10, 10), 65535, dtype=np.uint16)
    data[:, :5] = 256 * 100
    Image.fromarray(data).save(path)
    img = load_image(path)
    assert img.dtype == np.uint8
    assert img[0, 9, 0] == 255 and abs(int(img[0, 0, 0]) - 100) <= 1


def test_rgba_transparency_composites_on_white(tmp_path):
    path = tmp_path / "alpha.png"
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[:, :4] = (255, 0, 0, 255)  # opaque red left half, transparent right half
    Image.fromarray(rgba, "RGBA").save(path)
    img = load_image(path)
    assert tuple(img[0, 0]) == (255, 0, 0)
    assert tuple(img[0, 7]) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(_gradient(40, 30)).save(path, exif=exif.tobytes())
    assert load_image(path).shape == (40, 30, 3)


def test_bytes_input():
    buf = io.BytesIO()
    Image.fromarray(_gradient()).save(buf, format="PNG")
    assert load_image(buf.getvalue()).shape == (30, 40, 3)


def test_pixel_limit(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100)).save(path)
    with pytest.raises(ImageError, match=r"big\.png.*20,000 pixels, over the limit of 10,000"):
        load_image(path, max_pixels=10_000)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is not an image\n" * 20), "not an image"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
    ids=["missing", "empty", "not-an-image", "directory"],
)
def test_bad_files_name_the_problem(tmp_path, make, message):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(tmp_path, fmt):
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((200, 200, 3)) * 255).astype(np.uint8)).save(buf, format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated") as info:
        load_image(path)
    assert "cut." in str(info.value)


def test_corrupt_bytes_inside_valid_header(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_gradient(64, 64)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[60:120] = b"\x00" * 60  # smash the compressed stream, keep the signature
    path = tmp_path / "smashed.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="smashed.png"):
        load_image(path)


def test_empty_bytes():
    with pytest.raises(ImageError, match="empty input"):
        load_image(b"")


def test_size_limits_are_checked_from_the_header(tmp_path):
    """A 99,000,000 x 1 strip is refused by its side; a 16-bit image's decode cost is counted in bytes, and its
    conversion stays within a few bytes per pixel."""
    strip = tmp_path / "strip.png"
    Image.new("L", (99_000, 1)).save(strip)
    with pytest.raises(ImageTooLargeError, match="a side over the limit of 30,000 pixels"):
        load_image(strip)
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((40, 30), 65535, np.uint16)).save(deep)
    with pytest.raises(
        ImageTooLargeError, match=r"a 30x40 I;16 image takes [0-9,]+ bytes to decode, over the limit of 1,000"
    ):
        load_image(deep, max_decoded_bytes=1000)
    assert load_image(deep).shape == (40, 30, 3)


def test_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    """A file this user may not read is called unreadable (permission denied), not corrupt."""
    from PIL import Image as PILImage

    photo = tmp_path / "locked.jpg"
    PILImage.new("RGB", (20, 20)).save(photo)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(photo))

    monkeypatch.setattr(PILImage, "open", denied)
    with pytest.raises(ImageError, match="locked.jpg: permission denied"):
        load_image(photo)
    monkeypatch.undo()
    from pathlib import Path

    monkeypatch.setattr(Path, "stat", denied)  # a file in a folder we may not enter: even stat() is refused
    with pytest.raises(ImageError, match="locked.jpg: permission denied"):
        load_image(photo)


def test_a_fifo_or_device_is_not_read_as_a_photo(tmp_path):
    """A FIFO would block the read (and was called "an empty file"); a device never ends: both are refused by what
    they are, before anything is opened."""
    import os

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        with pytest.raises(ImageError, match="not a regular file") as info:
            load_image(path)
        assert "\n" not in str(info.value)


def test_pillows_own_size_refusal_is_phrased_as_ours(tmp_path):
    """A header announcing more pixels than Pillow itself will open is refused in our words, not Pillow's
    "decompression bomb DOS attack"."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 20_000, 20_000, 8, 2, 0, 0, 0))  # 400 MP, 24-bit
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    with pytest.raises(ImageTooLargeError) as info:
        load_image(path, max_pixels=10**12, max_side=10**6, max_decoded_bytes=10**13)
    assert "DOS" not in str(info.value) and "decompression bomb" not in str(info.value).lower()
    assert str(path) in str(info.value)


_PEAK = """
import sys
from rnnface.io import load_image
data = sys.stdin.buffer.read()
def hwm():
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) * 1024
before = hwm()
load_image(data, max_decoded_bytes=10**12)
print(hwm() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
@pytest.mark.parametrize("kind", ["JPEG", "PNG", "PNG-RGBA", "PNG-16", "WEBP", "GIF", "TIFF"])
@pytest.mark.slow
def test_the_decode_cost_counted_from_the_header_covers_the_measured_peak(kind):
    """issue 31 §5: what the limit counts is what decoding takes (a process's peak memory for a 10-megapixel
    photo of each kind), so RNNFACE_MAX_DECODED_BYTES bounds memory."""
    import subprocess
    import sys

    from rnnface.io.image import decode_cost

    width, height = 4000, 2500
    noise = np.random.default_rng(0).integers(0, 255, (height // 10, width // 10, 3), dtype=np.uint8)
    img = Image.fromarray(noise).resize((width, height))
    fmt, convert = {"PNG-RGBA": ("PNG", "RGBA"), "PNG-16": ("PNG", "I;16"), "GIF": ("GIF", "P")}.get(kind, (kind, None))
    if convert == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257)
    elif convert:
        img = img.convert(convert)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    header = Image.open(io.BytesIO(buf.getvalue()))
    peak = int(
        subprocess.run([sys.executable, "-c", _PEAK], input=buf.getvalue(), capture_output=True, check=True).stdout
    )
    assert peak <= decode_cost(width, height, header.mode, header.format), (kind, peak / (width * height))
