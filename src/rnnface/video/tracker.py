"""Face tracks across frames: each detection joins the track it overlaps and resembles, or starts one.

Association scores IoU with the track's last box plus cosine similarity with the track's mean
embedding; pairs are taken greedily, best first (a handful of faces per frame needs nothing
more). A track survives `max_missed` detection steps without a face before it ends.

Embedding is the costly step, so a face that plainly continues a live track (IoU >= 0.5 with its
last box) is re-embedded only every `reembed`-th detection step; `needs_embedding` says which faces
must be embedded now, and `update` takes None for the others (they join by overlap alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnface.detection import Face
from rnnface.detection import box_iou as iou
from rnnface.similarity import normalize


@dataclass
class Track:
    id: int
    first_time: float
    last_time: float
    last_box: np.ndarray
    embeddings: list[np.ndarray] = field(default_factory=list)
    cues: list[np.ndarray] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    missed: int = 0
    since_embedded: int = 0  # detection steps since this track's face was last embedded
    label: str = ""  # running identity, for drawing

    @property
    def mean_embedding(self) -> np.ndarray:
        return normalize(np.mean(self.embeddings[-16:], axis=0))


class Tracker:
    """Keeps the live tracks and every finished one."""

    def __init__(self, min_iou: float = 0.2, min_similarity: float = 0.5, max_missed: int = 5) -> None:
        self.min_iou = min_iou
        self.min_similarity = min_similarity
        self.max_missed = max_missed
        self.live: list[Track] = []
        self.done: list[Track] = []
        self._next = 0

    def needs_embedding(self, faces: list[Face], reembed: int = 1, continuing_iou: float = 0.5) -> list[bool]:
        """Which faces must be embedded at this step: all but those plainly continuing a track embedded recently."""
        out = []
        for face in faces:
            best = max(self.live, key=lambda tr: iou(face.box, tr.last_box), default=None)
            continuing = best is not None and best.embeddings and iou(face.box, best.last_box) >= continuing_iou
            out.append(not (continuing and best.since_embedded + 1 < reembed))
        return out

    def update(
        self,
        frame: int,
        t: float,
        faces: list[Face],
        embeddings: list[np.ndarray | None],
        cues: list[np.ndarray | None],
    ) -> list[Track]:
        """Assign this detection step's faces to tracks; return the track of each face.

        A face given no embedding (None) joins a track by overlap alone and adds nothing to its pooling.
        """
        candidates = []
        for i, face in enumerate(faces):
            for j, track in enumerate(self.live):
                overlap = iou(face.box, track.last_box)
                known = embeddings[i] is not None and track.embeddings
                similarity = float(embeddings[i] @ track.mean_embedding) if known else 0.0
                if overlap >= self.min_iou or similarity >= self.min_similarity:
                    candidates.append((overlap + similarity, i, j))
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for _, i, j in sorted(candidates, reverse=True):
            if i not in assigned and j not in used:
                assigned[i] = self.live[j]
                used.add(j)
        for i, face in enumerate(faces):
            track = assigned.get(i)
            if track is None:
                track = Track(self._next, t, t, face.box)
                self._next += 1
                self.live.append(track)
                used.add(len(self.live) - 1)
            track.last_box, track.last_time, track.missed = face.box, t, 0
            if embeddings[i] is None:
                track.since_embedded += 1
            else:
                track.embeddings.append(embeddings[i])
                track.cues.append(cues[i])
                track.since_embedded = 0
            track.frames.append(frame)
            assigned[i] = track
        for j, track in enumerate(self.live):
            if j not in used and track not in assigned.values():
                track.missed += 1
        self.done += [tr for tr in self.live if tr.missed > self.max_missed]
        self.live = [tr for tr in self.live if tr.missed <= self.max_missed]
        return [assigned[i] for i in range(len(faces))]

    def finish(self) -> list[Track]:
        """Every track, in order of appearance."""
        self.done += self.live
        self.live = []
        return sorted(self.done, key=lambda tr: tr.id)
