"""Pictures of a video's results: annotated frames, an annotated video, and the who-is-on-screen timeline."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np

from rnnface.errors import RnnfaceError
from rnnface.io.paths import atomic_output


def _colour(key: str) -> tuple[int, int, int]:
    h = zlib.crc32(key.encode())
    return (64 + h % 160, 64 + (h >> 8) % 160, 64 + (h >> 16) % 160)


def draw_tracks(frame: np.ndarray, tracks) -> np.ndarray:
    """A copy of an RGB frame with each track's last box and label."""
    out = frame.copy()
    for track in tracks:
        x1, y1, x2, y2 = (int(round(v)) for v in track.last_box)
        colour = _colour(track.label.split(" ")[1] if " " in track.label else str(track.id))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        (tw, th), _ = cv2.getTextSize(track.label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - 6)
        cv2.rectangle(out, (x1, top), (x1 + tw + 6, top + th + 6), colour, -1)
        cv2.putText(out, track.label, (x1 + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


class VideoWriter:
    """MP4 (mp4v) writer of RGB frames, opened on the first frame; a context manager whose file appears at
    `path` whole when the block succeeds, and not at all when it fails."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        # OpenCV picks the container by the suffix, so the temporary file keeps it
        self._output = atomic_output(self.path, "annotated video", keep_suffix=True)

    def __enter__(self) -> VideoWriter:
        self._tmp = self._output.__enter__()
        return self

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise RnnfaceError(f"{self.path}: cannot write a video here (use a .mp4 name in a writable folder)")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.release()
        self._output.__exit__(*exc)


def draw_timeline(tracks, duration: float, path: str | Path, width: int = 1000) -> Path:
    """PNG: one row per track, a bar from its first to its last time, labelled with the person."""
    row, left, top = 34, 220, 40
    height = top + row * max(1, len(tracks)) + 40
    img = np.full((height, width, 3), 255, np.uint8)
    span = max(duration, 1e-3)
    scale = (width - left - 20) / span
    step = max(1, int(round(span / 10)))
    for s in range(0, int(span) + 1, step):
        x = left + int(s * scale)
        cv2.line(img, (x, top - 10), (x, height - 30), (225, 225, 225), 1)
        cv2.putText(img, f"{s}s", (x - 8, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (80, 80, 80), 1, cv2.LINE_AA)
    for i, t in enumerate(tracks):
        y = top + i * row
        label = f"#{t.id} {t.person}"
        cv2.putText(img, label, (8, y + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
        x1, x2 = left + int(t.first_time * scale), left + max(int(t.last_time * scale), int(t.first_time * scale) + 3)
        cv2.rectangle(img, (x1, y + 6), (x2, y + row - 8), _colour(t.person)[::-1], -1)
    cv2.putText(img, "who is on screen when", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    with atomic_output(path, "timeline picture") as tmp:
        tmp.write_bytes(cv2.imencode(".png", img)[1].tobytes())
    return Path(path)
