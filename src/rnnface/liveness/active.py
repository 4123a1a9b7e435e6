"""The active check: a head turned on request, judged from landmark motion.

A flat photo, however it is moved, bent little, or tilted in front of the camera, is a plane: its eyes, mouth
corners and nose move together by one homography. A head that turns moves its nose, which stands out of the
plane of the eyes and mouth, off that homography. The homography through the four planar landmarks (eyes,
mouth corners) between the first frame and each later one predicts where a flat face's nose would be; the
nose's distance from that prediction, in eye distances, is its parallax. The challenge passes when the
parallax reaches `min_parallax` on enough frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: Parallax (in eye distances) a turn must reach; set from measured live turns and flat replays (README).
MIN_PARALLAX = 0.15
#: Frames with a face a challenge needs, and how many of them must show the turn.
MIN_FRAMES = 4
MIN_TURNED = 2
_PLANAR = [0, 1, 3, 4]  # eyes and mouth corners


@dataclass(frozen=True)
class ChallengeResult:
    passed: bool
    parallax: list[float]  # per frame with a face, signed along the eye axis (0 for the reference frame)
    peak: float  # largest |parallax|
    frames: int  # frames with a face
    reason: str

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "peak_parallax": round(self.peak, 4),
            "frames": self.frames,
            "reason": self.reason,
            "parallax": [round(p, 4) for p in self.parallax],
        }


def nose_parallax(reference: np.ndarray, current: np.ndarray) -> float:
    """Signed distance of `current`'s nose from where a plane through `reference`'s eyes and mouth corners would put
    it, along the eye axis, in eye distances ((5, 2) landmarks each)."""
    reference = np.asarray(reference, dtype=np.float64).reshape(5, 2)
    current = np.asarray(current, dtype=np.float64).reshape(5, 2)
    h = cv2.getPerspectiveTransform(reference[_PLANAR].astype(np.float32), current[_PLANAR].astype(np.float32))
    predicted = cv2.perspectiveTransform(reference[None, 2:3].astype(np.float64), h)[0, 0]
    axis = current[1] - current[0]
    distance = float(np.linalg.norm(axis))
    if distance < 1e-6:
        return 0.0
    return float((current[2] - predicted) @ axis / distance**2)


def check_turn(
    landmarks: Sequence[np.ndarray],
    min_parallax: float = MIN_PARALLAX,
    min_frames: int = MIN_FRAMES,
    min_turned: int = MIN_TURNED,
) -> ChallengeResult:
    """Judge a "turn your head" challenge from the landmarks of one face over the frames (first = reference)."""
    if len(landmarks) < min_frames:
        return ChallengeResult(
            False,
            [],
            0.0,
            len(landmarks),
            f"too few frames with a face ({len(landmarks)} < {min_frames}) to judge a head turn",
        )
    parallax = [0.0] + [nose_parallax(landmarks[0], lm) for lm in landmarks[1:]]
    peak = float(np.max(np.abs(parallax)))
    turned = int(np.sum(np.abs(parallax) >= min_parallax))
    if turned >= min_turned:
        return ChallengeResult(True, parallax, peak, len(landmarks), "the head turned: its nose left the face's plane")
    return ChallengeResult(
        False,
        parallax,
        peak,
        len(landmarks),
        f"no head turn: the face moved as one plane (peak nose parallax {peak:.3f} < {min_parallax})",
    )
