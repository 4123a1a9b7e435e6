"""Video -> tracks -> identities: detect every Nth frame, track, embed, pool each track, search the gallery."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from rnnface.aggregation.pooling import Pool, mean_pool_cues
from rnnface.gallery.base import Gallery
from rnnface.gallery.records import UNKNOWN, Match
from rnnface.recognition.pipeline import FacePipeline
from rnnface.video.render import VideoWriter, draw_tracks
from rnnface.video.source import VideoSource
from rnnface.video.tracker import Track, Tracker


@dataclass
class TrackResult:
    id: int
    person: str
    confidence: float  # cosine similarity of the pooled track to that person (best match)
    first_time: float
    last_time: float
    frames_used: int
    matches: list[Match] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "track": self.id,
            "person": self.person,
            "confidence": round(self.confidence, 4),
            "first_time": round(self.first_time, 3),
            "last_time": round(self.last_time, 3),
            "frames_used": self.frames_used,
            "matches": [m.to_dict() for m in self.matches],
        }


@dataclass
class VideoReport:
    source: str
    video_fps: float
    frames: int
    detect_every: int
    seconds: float
    processing_fps: float
    pooling: str
    truncated: bool
    tracks: list[TrackResult]

    def to_dict(self) -> dict:
        return {
            **{k: v for k, v in self.__dict__.items() if k != "tracks"},
            "tracks": [t.to_dict() for t in self.tracks],
        }


def _identify(
    gallery: Gallery | None, vector: np.ndarray, threshold: float, top_k: int = 3
) -> tuple[str, float, list[Match]]:
    if gallery is None or gallery.model_id is None:
        return UNKNOWN, 0.0, []
    matches = gallery.search(vector[None], top_k=top_k)[0]
    best = matches[0] if matches else None
    return (
        (best.person if best and best.similarity >= threshold else UNKNOWN),
        (best.similarity if best else 0.0),
        matches,
    )


def process_video(
    source: VideoSource,
    pipeline: FacePipeline,
    gallery: Gallery | None = None,
    pool: Pool = mean_pool_cues,
    pooling: str = "mean",
    every: int = 3,
    threshold: float | None = None,
    writer: VideoWriter | None = None,
    max_frames: int | None = None,
    min_track_frames: int = 2,
    reembed: int = 2,
    progress: bool = True,
) -> VideoReport:
    """Run the whole video; tracks with fewer than `min_track_frames` embedded faces are dropped as noise.

    A face plainly continuing its track is embedded every `reembed`-th detection step (see Tracker).
    """
    threshold = pipeline.threshold(threshold)
    if gallery is not None and gallery.model_id is not None:
        gallery.check_model(pipeline.model_id)
    tracker = Tracker()
    shown: list[Track] = []
    start = time.perf_counter()
    total = min(source.frames or 0, max_frames or source.frames or 0) or None
    frames = 0
    for index, t, frame in tqdm(source, total=total, desc="video", unit="frame", disable=not progress):
        if max_frames is not None and index >= max_frames:
            break
        frames += 1
        if index % every == 0:
            faces = pipeline.detect(frame)
            need = [i for i, n in enumerate(tracker.needs_embedding(faces, reembed)) if n]
            embeddings: list[np.ndarray | None] = [None] * len(faces)
            cues: list[np.ndarray | None] = [None] * len(faces)
            for i, found in zip(need, pipeline.embed_faces(frame, [faces[i] for i in need])):
                embeddings[i], cues[i] = found.embedding, found.cues
            shown = tracker.update(index, t, faces, embeddings, cues)
            for track in shown:  # a running name for the annotated video
                if track.since_embedded:  # no new face: the name stays
                    continue
                name, sim, _ = _identify(gallery, track.mean_embedding, threshold, top_k=1)
                track.label = f"#{track.id} {name}" + (f" {sim:.2f}" if name != UNKNOWN else "")
        if writer is not None:
            writer.write(draw_tracks(frame, shown))
    seconds = time.perf_counter() - start
    results = []
    for track in tracker.finish():
        if len(track.embeddings) < min_track_frames:
            continue
        vector = pool(np.stack(track.embeddings), np.stack(track.cues))
        person, confidence, matches = _identify(gallery, vector, threshold)
        results.append(
            TrackResult(track.id, person, confidence, track.first_time, track.last_time, len(track.embeddings), matches)
        )
    return VideoReport(
        source.name,
        source.fps,
        frames,
        every,
        seconds,
        frames / seconds if seconds else 0.0,
        pooling,
        source.truncated,
        results,
    )
