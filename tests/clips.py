"""Clips for the liveness tests: NUAA captures as camera frames, written as a video file or as the Y4M file
Chromium's fake camera plays."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from rnnface.lab.data import nuaa


def capture_frames(root: Path, key: str, frames: slice = slice(None), size: tuple[int, int] = (640, 480)):
    """RGB camera frames (`size`) of one NUAA capture ("client/0010_01_05_03"): each crop made a photo
    (`nuaa.as_photo`) and centred on a grey frame."""
    capture = next(c for c in nuaa.captures(root, "test") + nuaa.captures(root, "train") if c.key == key)
    w, h = size
    out = []
    for crop in nuaa.load_frames(root, capture)[frames]:
        photo = cv2.resize(nuaa.as_photo(crop), (h, h), interpolation=cv2.INTER_AREA)
        frame = np.full((h, w, 3), 110, np.uint8)
        frame[:, (w - h) // 2 : (w - h) // 2 + h] = photo
        out.append(frame)
    return out


def write_video(frames: list[np.ndarray], path: Path, fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_y4m(frames: list[np.ndarray], path: Path, fps: int = 5) -> Path:
    """A YUV4MPEG2 (4:2:0) file, the format Chromium's --use-file-for-fake-video-capture plays (in a loop)."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path
