"""Is this face live? The passive model over a clip's frames, and the active head-turn check beside it.

Each frame goes through the recognition pipeline's detector; the frame's one face (a bystander much smaller or
weaker is ignored, as at enrollment) is cut as the liveness model wants (`liveness_crop`) and scored by the
window of frames that ends at it. The clip's score is the mean of its full windows' live probabilities, decided
at the threshold chosen for that window length on training data. A clip whose face does not change from frame to
frame (one photo written or uploaded several times) is not live, whatever its score: unchanged frames are no
evidence of a person.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from rnnface.detection import Face, main_faces
from rnnface.errors import NoFaceError, RnnfaceError, SeveralFacesError
from rnnface.liveness.active import Challenge, ChallengeResult, check_turn
from rnnface.liveness.crop import liveness_crop
from rnnface.recognition.pipeline import FacePipeline

if TYPE_CHECKING:
    from rnnface.liveness.model import LivenessModel

PACKAGED_LIVENESS = "liveness.pt"
#: Below this median change between successive frames (mean absolute grey-level difference of one region of the
#: frame, the same for every frame: around the median face box, in coordinates relative to the frame's size, cut
#: to `STILL_SIZE` px and blurred by sigma `STILL_BLUR` px against sensor noise and JPEG's blocks), a clip is a
#: still image. A fixed region, not each frame's own face crop: the detector's landmarks jitter on a replayed
#: photo's noise, and a crop that follows them moved by up to 7.5 grey levels on near-identical frames.
#: Measured (`rnnface eval liveness --other`, 16 frames each): one LFW photo repeated with sensor noise (sigma 2)
#: and JPEG at quality 70-95, at most 0.35; live NUAA test captures, at least 5.3.
STILL_CHANGE = 1.0
STILL_SIZE = 64
STILL_BLUR = 1.0
#: Each observed frame is kept in grey at this longer side for `frame_change`.
THUMB_SIDE = 320


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """The frame in grey, shrunk so its longer side is at most `THUMB_SIDE` px (what `frame_change` compares)."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    scale = THUMB_SIDE / max(grey.shape[:2])
    if scale >= 1.0:
        return grey.copy()
    size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def frame_change(thumbs: Sequence[np.ndarray], boxes: np.ndarray) -> float:
    """The median over successive frames of the mean absolute difference of the blurred region around the median
    face box: `thumbs` each frame's `thumbnail`, `boxes` (N, 4) each frame's face box relative to its size (x1, y1,
    x2, y2 in 0..1), so one photo at two sizes is the same picture."""
    import cv2

    x1, y1, x2, y2 = np.median(boxes, axis=0)
    cx, cy, half_w, half_h = (x1 + x2) / 2, (y1 + y2) / 2, 0.6 * (x2 - x1), 0.6 * (y2 - y1)
    regions = []
    for t in thumbs:
        h, w = t.shape[:2]
        left, right = int(max(0, (cx - half_w) * w)), int(min(w, np.ceil((cx + half_w) * w)))
        top, bottom = int(max(0, (cy - half_h) * h)), int(min(h, np.ceil((cy + half_h) * h)))
        cut = t[top:bottom, left:right] if right > left and bottom > top else t
        small = cv2.resize(cut, (STILL_SIZE, STILL_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
        regions.append(cv2.GaussianBlur(small, (0, 0), STILL_BLUR))
    return float(np.median(np.abs(np.diff(np.stack(regions), axis=0)).mean(axis=(1, 2))))


class LivenessError(RnnfaceError):
    """A liveness check cannot be judged from what was given (too few frames with a face)."""


def packaged_liveness() -> str:
    """The presentation-attack detector shipped in the package."""
    from importlib import resources

    return str(resources.files("rnnface.weights").joinpath(PACKAGED_LIVENESS))


@dataclass(frozen=True)
class FrameResult:
    index: int  # position in the frames given
    face: Face | None
    score: float | None  # live probability of the window ending here (None: no face)

    def to_dict(self) -> dict:
        out: dict = {"frame": self.index, "face": None if self.face is None else self.face.to_dict()}
        out["live_score"] = None if self.score is None else round(self.score, 4)
        return out


@dataclass(frozen=True)
class LivenessResult:
    live: bool  # passive decision and, when asked, the challenge
    score: float  # the clip's live probability
    threshold: float
    window: int  # frames per scored window
    frames: list[FrameResult]
    challenge: ChallengeResult | None
    change: float | None = None  # `frame_change` of a clip's frames (None: one frame, nothing to compare)

    @property
    def faces(self) -> list[FrameResult]:
        return [f for f in self.frames if f.face is not None]

    @property
    def still(self) -> bool:
        """The frames do not change: a still image, not a person."""
        return self.change is not None and self.change < STILL_CHANGE

    @property
    def reason(self) -> str:
        if self.still:
            return (
                f"the frames do not change (a still image: median change {self.change:.2f} grey levels < "
                f"{STILL_CHANGE:g})"
            )
        if self.score < self.threshold:
            return f"looks like a presentation attack (live score {self.score:.3f} < {self.threshold:.3f})"
        if self.challenge is not None and not self.challenge.passed:
            return self.challenge.reason
        return "no sign of a presentation attack"

    def to_dict(self) -> dict:
        return {
            "live": self.live,
            "reason": self.reason,
            "live_score": round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "window": self.window,
            "change": None if self.change is None else round(self.change, 3),
            "frames_with_face": len(self.faces),
            "challenge": None if self.challenge is None else self.challenge.to_dict(),
            "frames": [f.to_dict() for f in self.frames],
        }


@dataclass(frozen=True)
class Observation:
    """What a check keeps of one frame: its face, the model's frame vector (its front-ends' features of the face and
    its liveness crop), a small grey copy of the frame and the face's place in it (to tell a still image), and, for
    authentication, the embedding."""

    index: int
    face: Face
    features: np.ndarray  # (D,) float32
    thumb: np.ndarray  # the frame in grey, small (`thumbnail`)
    box: np.ndarray  # (4,) the face box relative to the frame's size
    embedding: np.ndarray | None = None


def frame_face(pipeline: FacePipeline, frame: np.ndarray, index: int) -> Face | None:
    """The one face of a frame (None: no face); SeveralFacesError when two people are in view."""
    faces = pipeline.detect(frame)
    main = main_faces(faces)
    if len(main) > 1:
        raise SeveralFacesError(f"frame {index}: several faces ({len(main)}); one person at a time", len(main))
    return faces[0] if faces else None


class LivenessChecker:
    """The pipeline's detector + the liveness model (loaded on first use). Frames are observed one at a time
    (`observe`), so a caller need not hold a whole clip decoded, then judged together (`judge`)."""

    def __init__(self, pipeline: FacePipeline | None = None, model: str | os.PathLike | None = None) -> None:
        self.pipeline = pipeline or FacePipeline()
        self._path = str(model) if model is not None else None
        self._lock = threading.Lock()
        self._model: LivenessModel | None = None

    def load(self) -> LivenessModel:
        """The liveness model, loaded once."""
        with self._lock:
            if self._model is None:
                from rnnface.liveness.model import load_liveness  # torch loads only when a check runs

                self._model = load_liveness(self._path or packaged_liveness())
            return self._model

    def observe(self, frame: np.ndarray, index: int, embed: bool = False) -> Observation | None:
        """What frame `index` shows (None: no face), with its face's embedding when `embed`."""
        face = frame_face(self.pipeline, frame, index)
        if face is None:
            return None
        from rnnface.liveness.frontends import frame_features

        config = self.load().config
        crop = liveness_crop(frame, face.landmarks, config.eyes, config.size)
        features = frame_features(config.frontends, frame, face, crop)
        embedding = self.pipeline.embed(frame, [face])[1][0] if embed else None
        height, width = frame.shape[:2]
        box = np.asarray(face.box, dtype=np.float64) / np.array([width, height, width, height])
        return Observation(index, face, features, thumbnail(frame), box, embedding)

    def observe_all(self, frames: Sequence[np.ndarray], embed: bool = False) -> list[Observation]:
        """`observe` for each of `frames`, the frames without a face left out."""
        return [o for i, frame in enumerate(frames) if (o := self.observe(frame, i, embed)) is not None]

    def judge(
        self, observed: Sequence[Observation], frames: int, challenge: Challenge = False, min_frames: int = 1
    ) -> LivenessResult:
        """The decision over the faces observed in `frames` frames (time order), with the head-turn `challenge`:
        none (False), any turn (True), or the turns asked, in order."""
        import torch

        from rnnface.liveness.scoring import calibrated_window, stats_window_scores

        model = self.load()
        if not observed:
            raise NoFaceError(f"no face in {'the photo' if frames == 1 else f'any of {frames} frames'}")
        if frames == 1 and min_frames > 1:
            raise LivenessError(
                f"one photo cannot be judged: this needs a clip of at least {min_frames} frames with a face (a video "
                "file, a camera, or several frames)"
            )
        if len(observed) < min_frames:
            raise LivenessError(f"too few frames with a face ({len(observed)} of {frames}; {min_frames} needed)")
        window = calibrated_window(model.thresholds, len(observed))
        scores = stats_window_scores(model.net, torch.from_numpy(np.stack([o.features for o in observed])), window)
        score = float(scores[window - 1 :].mean())
        threshold = model.thresholds[window]
        turn = (
            check_turn([o.face.landmarks for o in observed], None if challenge is True else challenge)
            if challenge
            else None
        )
        by_frame = {o.index: (o.face, float(s)) for o, s in zip(observed, scores)}
        results = [FrameResult(i, *by_frame.get(i, (None, None))) for i in range(frames)]
        change = (
            frame_change([o.thumb for o in observed], np.stack([o.box for o in observed]))
            if len(observed) > 1
            else None
        )
        result = LivenessResult(False, score, threshold, window, results, turn, change)
        live = not result.still and score >= threshold and (turn is None or turn.passed)
        return replace(result, live=live)

    def check(
        self, frames: Sequence[np.ndarray], challenge: Challenge = False, min_frames: int = 1, embed: bool = False
    ) -> tuple[LivenessResult, list[Observation]]:
        """Judge `frames` (RGB, time order; one photo is one frame): the result and what was observed."""
        observed = self.observe_all(frames, embed)
        return self.judge(observed, len(frames), challenge, min_frames), observed
