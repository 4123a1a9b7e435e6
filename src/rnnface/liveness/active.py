"""The active check: a head turned on request, judged from landmark motion.

A flat photo, however it is moved, bent little, or tilted in front of the camera, is a plane: its eyes, mouth
corners and nose move together by one homography. A head that turns moves its nose, which stands out of the
plane of the eyes and mouth, off that homography. The homography through the four planar landmarks (eyes,
mouth corners) between the first frame and each later one predicts where a flat face's nose would be; the
nose's distance from that prediction, in eye distances, is its parallax. Any head turn passes when the
parallax reaches `min_parallax` on enough frames.

The parallax's sign says which way the head turned: positive when the nose moves to the image's right, which in
frames as a camera sees them (not mirrored) is the person's own left. A directed challenge asks for a sequence of
turns drawn at random (`random_turns`); it passes only when the turns seen, in order, are the ones asked, so a
replayed clip of the person turning passes only when its turns happen to match (1 in 2**n for n turns).
"""

from __future__ import annotations

import secrets
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
#: The directions of a turn, the person's own; the first is the one that moves the nose to the image's right.
LEFT, RIGHT = "left", "right"
TURNS = (LEFT, RIGHT)
#: What a check is asked for: nothing (False), any head turn (True), or these turns in this order.
Challenge = bool | Sequence[str]


@dataclass(frozen=True)
class ChallengeResult:
    passed: bool
    parallax: list[float]  # per frame with a face, signed along the eye axis (0 for the reference frame)
    peak: float  # largest |parallax|
    frames: int  # frames with a face
    reason: str
    asked: tuple[str, ...] | None = None  # the turns asked for, in order (None: any turn)
    seen: tuple[str, ...] = ()  # the turns seen, in order

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "peak_parallax": round(self.peak, 4),
            "frames": self.frames,
            "reason": self.reason,
            "asked": None if self.asked is None else list(self.asked),
            "seen": list(self.seen),
            "parallax": [round(p, 4) for p in self.parallax],
        }


def random_turns(count: int) -> tuple[str, ...]:
    """`count` turn directions drawn at random (from the system's secure source: a client cannot predict them)."""
    return tuple(secrets.choice(TURNS) for _ in range(count))


def describe_turns(turns: Sequence[str]) -> str:
    """'left, then right' (the person's own left and right)."""
    return ", then ".join(turns)


def check_turns(turns: Sequence[str]) -> tuple[str, ...]:
    """`turns` as a tuple, each LEFT or RIGHT (ValueError naming the one that is not)."""
    for t in turns:
        if t not in TURNS:
            raise ValueError(f"a turn is {' or '.join(TURNS)}, got {t!r}")
    return tuple(turns)


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


def turns_seen(
    parallax: Sequence[float], min_parallax: float = MIN_PARALLAX, min_turned: int = MIN_TURNED
) -> list[str]:
    """The turns in a parallax series, in order. A turn starts where |parallax| reaches `min_parallax` and ends
    where the head comes back: below half the turn's peak (and always below half of `min_parallax`) or past zero.
    It counts with `min_turned` frames at `min_parallax` or more (one frame's landmark error is not a turn). The
    next turn to the same side starts once |parallax| has risen again to `min_parallax` and to twice its lowest
    since, so a turn that eases back part way stays one turn."""
    seen: list[str] = []
    sign = last = 0  # the side of the turn under way, and of the one before it
    peak = valley = 0.0  # the largest |parallax| of the turn under way; the smallest since the last one ended
    strong = 0
    for p in [*parallax, 0.0]:  # the trailing 0 ends a turn still under way
        if sign:
            if p * sign >= max(min_parallax, peak) / 2:
                peak, strong = max(peak, p * sign), strong + (p * sign >= min_parallax)
                continue
            if strong >= min_turned:
                seen.append(LEFT if sign > 0 else RIGHT)
            last, valley, sign = sign, max(p * sign, 0.0), 0
        side = 1 if p > 0 else -1
        valley = min(valley, max(p * last, 0.0))
        if abs(p) >= min_parallax and (side != last or abs(p) >= 2 * valley):
            sign, peak, strong = side, abs(p), 1
    return seen


def check_turn(
    landmarks: Sequence[np.ndarray],
    asked: Sequence[str] | None = None,
    min_parallax: float = MIN_PARALLAX,
    min_frames: int = MIN_FRAMES,
    min_turned: int = MIN_TURNED,
) -> ChallengeResult:
    """Judge a head-turn challenge from the landmarks of one face over the frames (the first is the reference):
    any turn, or (`asked`) exactly these turns in this order."""
    asked = None if asked is None else check_turns(asked)
    if len(landmarks) < min_frames:
        reason = f"too few frames with a face ({len(landmarks)} < {min_frames}) to judge a head turn"
        return ChallengeResult(False, [], 0.0, len(landmarks), reason, asked)
    parallax = [0.0] + [nose_parallax(landmarks[0], lm) for lm in landmarks[1:]]
    peak = float(np.max(np.abs(parallax)))
    seen = tuple(turns_seen(parallax, min_parallax, min_turned))
    turned = int(np.sum(np.abs(parallax) >= min_parallax)) >= min_turned

    def result(passed: bool, reason: str) -> ChallengeResult:
        return ChallengeResult(passed, parallax, peak, len(landmarks), reason, asked, seen)

    if not turned:
        return result(
            False, f"no head turn: the face moved as one plane (peak nose parallax {peak:.3f} < {min_parallax})"
        )
    if asked is None:
        return result(True, "the head turned: its nose left the face's plane")
    if seen == asked:
        return result(True, f"the head turned {describe_turns(asked)}, as asked")
    saw = describe_turns(seen) if seen else "no clear turn"
    return result(False, f"not the turns asked: asked {describe_turns(asked)}; seen {saw}")
    if asked is None:
        return ChallengeResult(
            True, parallax, peak, len(landmarks), "the head turned: its nose left the face's plane", asked, seen
        )
    if seen == asked:
        return ChallengeResult(
            True, parallax, peak, len(landmarks), f"the head turned {describe_turns(asked)}, as asked", asked, seen
        )
    saw = describe_turns(seen) if seen else "no clear turn"
    reason = f"not the turns asked: asked {describe_turns(asked)}; seen {saw}"
    return ChallengeResult(False, parallax, peak, len(landmarks), reason, asked, seen)
