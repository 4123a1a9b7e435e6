"""Face tracks across frames: each detection joins the track it overlaps and resembles, or starts one.

Association scores IoU with the track's last box plus cosine similarity with the track's mean
embedding; pairs are taken greedily, best first (a handful of faces per frame needs nothing
more). A track survives `max_missed` detection steps without a face before it ends. A track is
one segment of one person: it ends at a shot cut (`cut`), and a face whose embedding no longer
agrees with a track (below `split_below`: two people who cross, a box that slides onto a
neighbour) never joins it, so it starts a new track instead of carrying the old one's name.

Embedding is the costly step, so a face that plainly continues a live track (IoU >= 0.5 with its
last box, and no other track near) is re-embedded only every `reembed`-th detection step;
`needs_embedding` says which faces must be embedded now, and `update` takes None for the others
(they join by overlap alone).
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
    boxes: list[np.ndarray] = field(default_factory=list)  # the box at each of `frames`
    missed: int = 0
    since_embedded: int = 0  # detection steps since this track's face was last embedded
    label: str = ""  # running identity, for drawing

    @property
    def mean_embedding(self) -> np.ndarray:
        return normalize(np.mean(self.embeddings[-16:], axis=0))


class Tracker:
    """Keeps the live tracks and every finished one."""

    def __init__(
        self, min_iou: float = 0.2, min_similarity: float = 0.5, max_missed: int = 10, split_below: float | None = 0.3
    ) -> None:
        self.min_iou = min_iou
        self.min_similarity = min_similarity
        self.max_missed = max_missed
        self.split_below = split_below  # None: embeddings never keep a face from a track (the old behaviour)
        self.live: list[Track] = []
        self.done: list[Track] = []
        self._next = 0

    def cut(self) -> None:
        """A shot cut: every live track ends here (the next shot's faces start tracks of their own)."""
        self.done += self.live
        self.live = []

    def continues(self, face: Face, continuing_iou: float = 0.5) -> bool:
        """Whether `face` plainly continues a live track that has been embedded (a face already looked at)."""
        return any(track.embeddings and iou(face.box, track.last_box) >= continuing_iou for track in self.live)

    def needs_embedding(self, faces: list[Face], reembed: int = 1, continuing_iou: float = 0.5) -> list[bool]:
        """Which faces must be embedded at this step: all but those plainly continuing a track embedded recently
        (a face near two tracks, or two faces near one, is not plain: who is who must be looked at)."""
        out = []
        for face in faces:
            overlaps = sorted((iou(face.box, tr.last_box), k) for k, tr in enumerate(self.live))
            best = self.live[overlaps[-1][1]] if overlaps else None
            continuing = best is not None and best.embeddings and overlaps[-1][0] >= continuing_iou
            crowded = len(overlaps) > 1 and overlaps[-2][0] > 0.05
            shared = best is not None and sum(iou(f.box, best.last_box) > 0.05 for f in faces) > 1
            recent = best is not None and not best.missed and best.since_embedded + 1 < reembed
            out.append(not (continuing and not crowded and not shared and recent))
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
                if known and self.split_below is not None and similarity < self.split_below:
                    continue  # not the same person, however well the boxes line up
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
            track.boxes.append(np.asarray(face.box, float))
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
