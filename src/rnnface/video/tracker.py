"""Face tracks across frames: each detection joins the track it overlaps and resembles, or starts one.

Association scores IoU with the track's last box plus cosine similarity with the track's mean
embedding; pairs are taken greedily, best first (a handful of faces per frame needs nothing
more). A track survives `max_missed` detection steps without a face before it ends. A track is
one segment of one person: it ends at a shot cut (`cut`), and a face whose embedding no longer
agrees with a track (below `split_below`: two people who cross, a box that slides onto a
neighbour) never joins it, so it starts a new track instead of carrying the old one's name.

Embedding is the costly step, so a face that plainly continues a live track (IoU >= 0.5 with its
last box, no other track near, and it still looks like the track's last face: `appearance`) is re-embedded
only every `reembed`-th detection step; `needs_embedding` says which faces must be embedded now, and `update`
takes None for the others (they join by overlap alone). The look test catches a jump cut that leaves the
frame around the face alone (someone else in the same place), which a shot detector does not see.
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
    shown_name: str = "unknown"  # the name in `label`, which picks its colour
    look: np.ndarray | None = None  # `appearance` of its last face
    number: int = 0  # its number as reported (1, 2, ...; 0 until it has faces enough to be reported)

    @property
    def mean_embedding(self) -> np.ndarray:
        return normalize(np.mean(self.embeddings[-16:], axis=0))

    def add(
        self,
        frame: int,
        t: float,
        face: Face,
        embedding: np.ndarray | None,
        cue: np.ndarray | None,
        look: np.ndarray | None,
    ) -> None:
        """This detection step's face of the track (its embedding None when it was not embedded)."""
        self.last_box, self.last_time, self.missed = face.box, t, 0
        if look is not None:
            self.look = look
        if embedding is None:
            self.since_embedded += 1
        else:
            self.embeddings.append(embedding)
            assert cue is not None  # an embedded face comes with its quality cues
            self.cues.append(cue)
            self.since_embedded = 0
        self.frames.append(frame)
        self.boxes.append(np.asarray(face.box, float))


#: The least correlation of a face's `appearance` with its track's last face for it to count as the same face
#: without being embedded again (a moving, turning face stays above it between detection steps).
SAME_LOOK = 0.8


def appearance(frame: np.ndarray, box: np.ndarray, side: int = 16) -> np.ndarray:
    """A face's look, cheaply: its box as a side x side grey thumbnail, zero mean, unit norm."""
    import cv2

    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return np.zeros(side * side, np.float32)
    grey = cv2.cvtColor(np.ascontiguousarray(frame[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    thumb = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    thumb -= thumb.mean()
    return thumb / (np.linalg.norm(thumb) or 1.0)


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
        self._numbered = 0

    def cut(self) -> None:
        """A shot cut: every live track ends here (the next shot's faces start tracks of their own)."""
        self.done += self.live
        self.live = []

    def continues(self, face: Face, continuing_iou: float = 0.5) -> bool:
        """Whether `face` plainly continues a live track that has been embedded (a face already looked at)."""
        return any(track.embeddings and iou(face.box, track.last_box) >= continuing_iou for track in self.live)

    def needs_embedding(
        self,
        faces: list[Face],
        reembed: int = 1,
        continuing_iou: float = 0.5,
        looks: list[np.ndarray] | None = None,
    ) -> list[bool]:
        """Which faces must be embedded at this step: all but those plainly continuing a track embedded recently
        (a face near two tracks, or two faces near one, is not plain: who is who must be looked at; nor is one
        that no longer looks like the track's last face, given `looks`, each face's `appearance`)."""
        out = []
        for k, face in enumerate(faces):
            overlaps = sorted((iou(face.box, tr.last_box), j) for j, tr in enumerate(self.live))
            best = self.live[overlaps[-1][1]] if overlaps else None
            continuing = best is not None and best.embeddings and overlaps[-1][0] >= continuing_iou
            crowded = len(overlaps) > 1 and overlaps[-2][0] > 0.05
            shared = best is not None and sum(iou(f.box, best.last_box) > 0.05 for f in faces) > 1
            recent = best is not None and not best.missed and best.since_embedded + 1 < reembed
            alike = looks is None or (best is not None and best.look is not None and looks[k] @ best.look >= SAME_LOOK)
            out.append(not (continuing and not crowded and not shared and recent and alike))
        return out

    def update(
        self,
        frame: int,
        t: float,
        faces: list[Face],
        embeddings: list[np.ndarray | None],
        cues: list[np.ndarray | None],
        looks: list[np.ndarray] | None = None,
    ) -> list[Track]:
        """Assign this detection step's faces to tracks; return the track of each face.

        A face given no embedding (None) joins a track by overlap alone and adds nothing to its pooling.
        """
        candidates = []
        for i, face in enumerate(faces):
            for j, live in enumerate(self.live):
                overlap = iou(face.box, live.last_box)
                known = embeddings[i] is not None and live.embeddings
                similarity = float(embeddings[i] @ live.mean_embedding) if known else 0.0
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
            track.add(frame, t, face, embeddings[i], cues[i], None if looks is None else looks[i])
            assigned[i] = track
        for j, track in enumerate(self.live):
            if j not in used and track not in assigned.values():
                track.missed += 1
        self.done += [tr for tr in self.live if tr.missed > self.max_missed]
        self.live = [tr for tr in self.live if tr.missed <= self.max_missed]
        return [assigned[i] for i in range(len(faces))]

    def number(self, tracks: list[Track], min_faces: int) -> None:
        """Give each of `tracks` with `min_faces` embedded faces the next report number, once (so that the
        annotated video, drawn as it goes, shows the numbers of the timeline)."""
        for track in tracks:
            if not track.number and len(track.embeddings) >= min_faces:
                self._numbered += 1
                track.number = self._numbered

    def finish(self) -> list[Track]:
        """Every track, in order of appearance."""
        self.done += self.live
        self.live = []
        return sorted(self.done, key=lambda tr: tr.id)
