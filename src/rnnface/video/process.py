"""Video -> shots -> tracks -> identities: detect every Nth frame, track within a shot, embed, pool each track,
search the gallery.

A track is one person's segment of one shot: every track ends at a shot cut, and a face whose embedding no
longer agrees with its track starts a new one (see `rnnface.video.tracker`). A track is named from its own faces
only (the aggregator starts afresh for each), and only when it has enough of them (`min_named_frames`): a
segment too short to decide is `unknown`, never the name of the segment before it. The tracks nobody in the
gallery matches are grouped with one another (`rnnface.clustering`, at the clustering operating point), so the
same stranger coming back in a later shot is the same `unknown #k` (numbered after the gallery's own unnamed
groups; nothing is stored).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rnnface.aggregation.pooling import MEAN, NamedPool, Pool
from rnnface.clustering.linkage import cluster_embeddings
from rnnface.clustering.photos import clustering_threshold
from rnnface.clustering.store import next_unnamed
from rnnface.errors import ThresholdError
from rnnface.gallery.base import Gallery
from rnnface.gallery.records import UNKNOWN, UNNAMED, Match
from rnnface.operating import SEARCH_FPIR, Threshold, ThresholdSpec
from rnnface.progress import progress_bar
from rnnface.recognition.pipeline import FacePipeline
from rnnface.video.render import VideoWriter, draw_tracks
from rnnface.video.shots import ShotDetector
from rnnface.video.source import VideoSource
from rnnface.video.tracker import SAME_LOOK, Track, Tracker, appearance


@dataclass
class TrackResult:
    """One track as reported: who (or `unknown`), when, in which shot, and its boxes at each detection step."""

    id: int
    person: str
    confidence: float  # cosine similarity of the pooled track to that person (best match)
    first_time: float
    last_time: float
    frames_used: int
    shot: int = 0
    matches: list[Match] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "track": self.id,
            "person": self.person,
            "confidence": round(self.confidence, 4),
            "first_time": round(self.first_time, 3),
            "last_time": round(self.last_time, 3),
            "frames_used": self.frames_used,
            "shot": self.shot,
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
    cuts: list[int] = field(default_factory=list)  # frames that begin a new shot
    threshold: Threshold | None = None  # the threshold that named the tracks, and why

    def to_dict(self) -> dict:
        return {
            **{k: v for k, v in self.__dict__.items() if k not in ("tracks", "threshold")},
            "operating_point": None if self.threshold is None else self.threshold.to_dict(),
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


@dataclass(frozen=True)
class TrackingRules:
    """How faces become tracks: shot cuts end tracks, embeddings split them, and how many faces name one.
    `cuts=False, split_below=None` is the tracker as it was before either existed (kept for the benchmark)."""

    cuts: bool = True
    split_below: float | None = 0.3  # cosine under which a face is not the person its track follows
    min_track_frames: int = 2  # embedded faces a track needs to be reported at all (fewer: noise)
    min_named_frames: int = 3  # embedded faces a track needs to be named (fewer: `unknown`)


def process_video(
    source: VideoSource,
    pipeline: FacePipeline,
    gallery: Gallery | None = None,
    pool: NamedPool = MEAN,
    every: int = 3,
    threshold: ThresholdSpec = None,
    writer: VideoWriter | None = None,
    max_frames: int | None = None,
    reembed: int = 2,
    progress: bool = True,
    rules: TrackingRules = TrackingRules(),
    fpir: float = SEARCH_FPIR,
) -> VideoReport:
    """Run the whole video: detect on every `every`-th frame (and on the first frame of every shot), track, name.

    A face plainly continuing its track is embedded every `reembed`-th detection step (see Tracker). Naming a
    track is a search of the gallery: by default its threshold is set for the gallery's size (see
    `rnnface.operating`).
    """
    searched = gallery if gallery is not None and gallery.model_id is not None else None  # the gallery to search
    if searched is not None:
        searched.check_model(pipeline.model_id)
    decide = pipeline.threshold(threshold, comparisons=searched.entries() if searched is not None else None, fpir=fpir)
    threshold = decide.value
    tracker = Tracker(split_below=rules.split_below)
    shots = ShotDetector(source.fps) if rules.cuts else None
    shown: list[Track] = []
    shot_of: dict[int, int] = {}
    cuts: list[int] = []
    start = time.perf_counter()
    total = min(source.frames or 0, max_frames or source.frames or 0) or None
    frames = 0
    for index, t, frame in progress_bar(source, enabled=progress, total=total, desc="video", unit="frame"):
        if max_frames is not None and index >= max_frames:
            break
        frames += 1
        cut = shots is not None and shots.cut(index, frame)
        if cut:
            tracker.cut()
            cuts.append(index)
            shown = []
        if cut or index % every == 0:
            shown = _step(tracker, pipeline, gallery, frame, index, t, threshold, reembed, rules)
            for track in shown:
                shot_of.setdefault(track.id, len(cuts))
        elif writer is not None:  # between detections a label stays only on a face that still looks the same
            shown = [tr for tr in shown if tr.look is None or appearance(frame, tr.last_box) @ tr.look >= SAME_LOOK]
        if writer is not None:
            writer.write(draw_tracks(frame, shown))
    seconds = time.perf_counter() - start
    truncated = source.truncated and not (max_frames is not None and frames >= max_frames)  # not stopped on purpose
    results, vectors = _results(tracker.finish(), gallery, pool, threshold, rules, shot_of)
    first = next_unnamed(searched) if searched is not None else 1
    _number_strangers(results, vectors, _stranger_threshold(pipeline, threshold), first, rules.min_named_frames)
    fps = frames / seconds if seconds else 0.0
    return VideoReport(
        source.name, source.fps, frames, every, seconds, fps, pool.name, truncated, results, cuts, decide
    )


def _step(
    tracker: Tracker,
    pipeline: FacePipeline,
    gallery: Gallery | None,
    frame: np.ndarray,
    index: int,
    t: float,
    threshold: float,
    reembed: int,
    rules: TrackingRules,
) -> list[Track]:
    """One detection step: detect, embed the faces that need it, track, and label the tracks for the video."""
    faces = pipeline.detect(frame, trusted=tracker.continues)  # only new faces need the false-positive check
    looks = [appearance(frame, f.box) for f in faces]
    need = [i for i, n in enumerate(tracker.needs_embedding(faces, reembed, looks=looks)) if n]
    embeddings: list[np.ndarray | None] = [None] * len(faces)
    cues: list[np.ndarray | None] = [None] * len(faces)
    for i, found in zip(need, pipeline.embed_faces(frame, [faces[i] for i in need])):
        embeddings[i], cues[i] = found.embedding, found.cues
    shown = tracker.update(index, t, faces, embeddings, cues, looks)
    tracker.number(shown, rules.min_track_frames)
    for track in shown:  # a running name for the annotated video, from this track's own faces
        if track.since_embedded:  # no new face: the name stays
            continue
        number = f"#{track.number} " if track.number else ""  # a track too short yet to count has no number
        if len(track.embeddings) < rules.min_named_frames:
            track.label, track.shown_name = f"{number}{UNKNOWN}", UNKNOWN
            continue
        name, sim, _ = _identify(gallery, track.mean_embedding, threshold, top_k=1)
        track.label = f"{number}{name}" + (f" {sim:.2f}" if name != UNKNOWN else "")
        track.shown_name = name
    return shown


def _results(
    tracks: list[Track],
    gallery: Gallery | None,
    pool: Pool,
    threshold: float,
    rules: TrackingRules,
    shot_of: dict[int, int],
) -> tuple[list[TrackResult], list[np.ndarray]]:
    """The reported tracks, by their numbers (1, 2, ... as each gathered faces enough; noise dropped), each named
    from its own faces, and each one's pooled embedding."""
    results: list[TrackResult] = []
    vectors: list[np.ndarray] = []
    kept = [tr for tr in tracks if len(tr.embeddings) >= rules.min_track_frames]
    for track in sorted(kept, key=lambda tr: (tr.number == 0, tr.number, tr.id)):
        vector = pool(np.stack(track.embeddings), np.stack(track.cues))
        vectors.append(vector)
        person, confidence, matches = _identify(gallery, vector, threshold)
        if len(track.embeddings) < rules.min_named_frames:
            person = UNKNOWN  # too few faces to decide who this is
        results.append(
            TrackResult(
                track.number or len(results) + 1,
                person,
                confidence,
                track.first_time,
                track.last_time,
                len(track.embeddings),
                shot_of.get(track.id, 0),
                matches,
                list(track.frames),
                list(track.boxes),
            )
        )
    return results, vectors


def _stranger_threshold(pipeline: FacePipeline, naming: float) -> float:
    """The clustering operating point, or for a model without named points the threshold that named the tracks."""
    try:
        return clustering_threshold(pipeline).value
    except ThresholdError:
        return naming


def apart(labels: np.ndarray, frames: list[set[int]], vectors: np.ndarray) -> np.ndarray:
    """`labels` with no group holding two tracks seen in the same frame: two faces on screen at once are two people,
    whatever their embeddings say. Such a group is split: each track, in order, joins the part it is most similar to
    (mean cosine) among those it never shares a frame with, or starts a part of its own."""
    out, fresh = labels.copy(), int(labels.max(initial=-1)) + 1
    for label in np.unique(labels):
        parts: list[list[int]] = []
        for m in np.flatnonzero(labels == label).tolist():
            free = [p for p in parts if not any(frames[m] & frames[o] for o in p)]
            if free:
                max(free, key=lambda p: float(np.mean(vectors[p] @ vectors[m]))).append(m)
            else:
                parts.append([m])
        for part in parts[1:]:
            out[part], fresh = fresh, fresh + 1
    return out


def _number_strangers(
    results: list[TrackResult], vectors: list[np.ndarray], threshold: float, first: int, min_frames: int
) -> None:
    """Name the unknown tracks with enough faces `unknown #k`, one k per stranger: their pooled embeddings grouped
    by average linkage at `threshold`, numbered from `first` in order of first appearance."""
    strangers = [i for i, r in enumerate(results) if r.person == UNKNOWN and r.frames_used >= min_frames]
    if not strangers:
        return
    chosen = np.stack([vectors[i] for i in strangers])
    labels = apart(cluster_embeddings(chosen, threshold), [set(results[i].frames) for i in strangers], chosen)
    number: dict[int, int] = {}
    for i, label in sorted(zip(strangers, labels.tolist()), key=lambda p: results[p[0]].first_time):
        number.setdefault(label, first + len(number))
        results[i].person = UNNAMED.format(number[label])
