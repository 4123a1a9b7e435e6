"""`rnnface bench video`: frames per second of `rnnface video` on a synthetic 640x480 clip of LFW faces and,
when given, on a real clip in the same run."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from rnnface.aggregation.pooling import NamedPool, resolve_pooling
from rnnface.detection import DEFAULT_DETECTOR, DetectionSettings, create_detector
from rnnface.io import load_image
from rnnface.lab.benchmarks.report import machine
from rnnface.recognition.pipeline import FacePipeline
from rnnface.video.process import process_video
from rnnface.video.source import open_source
from rnnface.video.synthetic import Actor, write_video

#: Where each of up to three faces enters and leaves the 640x480 frame (top-left corners of their patches).
PATHS = [((20, 40), (200, 60)), ((450, 300), (300, 250)), ((400, 20), (460, 100))]
SIZE = (640, 480)


def _time_clip(path: Path, pipeline: FacePipeline, pool: NamedPool, every: int) -> dict:
    """Run `rnnface video`'s processing over the clip at `path`; its size, frames, time and faces seen."""
    source = open_source(str(path))
    try:
        width, height = (int(source.capture.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
        report = process_video(source, pipeline, None, pool, every, progress=False)
    finally:
        source.close()
    faces_per_frame = Counter(f for t in report.tracks for f in t.frames)
    return {
        "width": width,
        "height": height,
        "frames": report.frames,
        "seconds": round(report.seconds, 2),
        "fps": report.processing_fps,
        "tracks": len(report.tracks),
        "most_faces": max(faces_per_frame.values(), default=0),
    }


def run_video_bench(
    root: Path, seconds: float = 10, faces: int = 3, every: int = 3, min_face: int = 40, clip: Path | None = None
) -> dict:
    """Process a synthetic clip of `faces` LFW people (from the image tree at `root`) moving for `seconds`, and
    the real `clip` if given, with the same pipeline."""
    people = sorted(p for p in root.iterdir() if p.is_dir())[:faces]
    photos = [load_image(sorted(p.iterdir())[0]) for p in people]
    actors = [Actor(p.name, photo, 0.0, seconds, *PATHS[i]) for i, (p, photo) in enumerate(zip(people, photos))]
    pipeline = FacePipeline(detector=create_detector(DEFAULT_DETECTOR, settings=DetectionSettings(min_face=min_face)))
    pool = resolve_pooling("auto", pipeline.model_id)
    # load the networks outside the timing
    pipeline.detect(photos[0] if photos else np.zeros((64, 64, 3), np.uint8))
    pipeline.embed_crops(np.zeros((1, pipeline.crop.size, pipeline.crop.size, 3), np.uint8))
    with tempfile.TemporaryDirectory(prefix="rnnface-video-") as tmp:
        synthetic = write_video(Path(tmp) / "clip.mp4", actors, seconds, size=SIZE)
        result = {"synthetic": {"faces": faces, **_time_clip(synthetic, pipeline, pool, every)}}
    if clip is not None:
        result["clip"] = {"path": clip.name, **_time_clip(clip, pipeline, pool, every)}
    return {"machine": machine(), "detect_every": every, "min_face": min_face, "pooling": pool.name, **result}
