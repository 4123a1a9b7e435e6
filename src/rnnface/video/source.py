"""Video input through OpenCV's FFmpeg backend: files (mp4/avi/mov/webm/...), camera indices, rtsp/http URLs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rnnface.errors import RnnfaceError
from rnnface.io.image import MAX_PIXELS, MAX_SIDE


class VideoError(RnnfaceError):
    """A video cannot be opened or decoded, or a stream cannot be reached."""


#: How long to wait for a network stream before calling it unreachable.
OPEN_TIMEOUT_MS = 5000


@dataclass
class VideoSource:
    """An opened video; iterate for (index, seconds, RGB frame)."""

    name: str
    capture: cv2.VideoCapture
    fps: float
    frames: int | None  # None where unknown (cameras, live streams)
    live: bool
    decoded: int = 0
    stalled: bool = False  # a camera or stream stopped delivering frames (a read waited out the timeout)
    max_pixels: int = MAX_PIXELS
    max_side: int = MAX_SIDE

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        while True:
            start = time.monotonic()
            ok, frame = self.capture.read()
            if not ok or frame is None:
                self.stalled = self.live and time.monotonic() - start >= 0.8 * OPEN_TIMEOUT_MS / 1000
                return
            if not self.decoded:  # a source that did not say its frame size: the first frame says it
                check_frame_size(self.name, frame.shape[1], frame.shape[0], self.max_pixels, self.max_side)
            t = self.decoded / self.fps
            self.decoded += 1
            yield self.decoded - 1, t, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    @property
    def truncated(self) -> bool:
        """A file (local or over the network) that ended well before the frame count its header announced."""
        return self.frames is not None and self.decoded < 0.95 * self.frames - 1

    def close(self) -> None:
        self.capture.release()


def silence_native_logs() -> None:
    """Keep FFmpeg's and OpenCV's own messages ("moov atom not found", "[ WARN] cap.cpp") off the terminal, where
    they would print before our one-line error. FFmpeg reads its level when its backend loads, at the first capture."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def check_frame_size(name: str, width: int, height: int, max_pixels: int, max_side: int) -> None:
    """VideoError when frames are larger than a photo may be (the image limits apply to every frame)."""
    if width * height > max_pixels or max(width, height) > max_side:
        raise VideoError(
            f"{name}: frames of {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} pixels "
            f"(or {max_side:,} a side)"
        )


def still_image_format(path: Path) -> str | None:
    """The format of a single-frame image file (JPEG, PNG, ...) read from its header, or None for anything else."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.format if getattr(img, "n_frames", 1) == 1 else None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def open_source(spec: str, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> VideoSource:
    """Open a file path, a camera index ("0") or a stream URL; raise VideoError saying why not (frames over the
    image limits included, checked from the header before a frame is decoded when the container says its size)."""
    silence_native_logs()
    live = spec.isdigit() or "://" in spec
    if spec.isdigit():
        capture = cv2.VideoCapture(int(spec))
    elif "://" in spec:
        capture = cv2.VideoCapture(
            spec,
            cv2.CAP_FFMPEG,
            [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, OPEN_TIMEOUT_MS],
        )
    else:
        path = Path(spec)
        if not path.is_file():
            raise VideoError(f"{spec}: file not found" if not path.exists() else f"{spec}: not a file")
        if path.stat().st_size == 0:
            raise VideoError(f"{spec}: empty file")
        still = still_image_format(path)
        if still:  # FFmpeg would play it as a one-frame video (a truncated JPEG too)
            raise VideoError(
                f"{spec}: a still {still} image, not a video; use `rnnface identify` or `detect` for photos"
            )
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        what = (
            "camera"
            if spec.isdigit()
            else "stream (unreachable, or not a video)"
            if live
            else "file (not a video, or corrupt)"
        )
        raise VideoError(f"{spec}: cannot open this {what}")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and 1 <= fps <= 240 else 25.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if width and height:
        try:
            check_frame_size(spec, width, height, max_pixels, max_side)
        except VideoError:
            capture.release()
            raise
    frames = count if count > 0 and not spec.isdigit() else None
    return VideoSource(spec, capture, fps, frames, live, max_pixels=max_pixels, max_side=max_side)
