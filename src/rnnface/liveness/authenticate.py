"""Authentication: is this the enrolled person, and are they live? One answer and the figures behind it.

The clip must pass the liveness check (and the head-turn challenge when asked: any turn, or the turns the person was
asked for, in order, which a replay of them turning rarely matches); its best frames are then
embedded and their mean compared with the person's gallery template at the operator's threshold (`floor`: the
`strict` operating point, FAR 1e-4, unless RNNFACE_AUTHENTICATE_THRESHOLD says otherwise) or a stricter one the
caller asks for, never a looser one. The gallery is only read: an attempt enrolls and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from rnnface.gallery.base import Gallery
from rnnface.gallery.identify import check_gallery
from rnnface.gallery.records import no_such_person
from rnnface.liveness.active import Challenge
from rnnface.liveness.check import LivenessChecker, LivenessResult, Observation
from rnnface.operating import AUTHENTICATE_DEFAULT, Threshold, ThresholdSpec, no_looser
from rnnface.similarity import cosine_similarity

ACCEPTED = "accepted"
NOT_LIVE = "rejected: not live"
NOT_THIS_PERSON = "rejected: not this person"
#: Frames a clip needs with a face (the shortest window the detector integrates beyond a single photo, doubled).
MIN_FRAMES = 4
#: The clearest frames (highest detector score) whose embeddings make the probe.
PROBE_FRAMES = 5


@dataclass(frozen=True)
class Authentication:
    name: str
    decision: str
    liveness: LivenessResult
    similarity: float
    threshold: Threshold
    frames_embedded: int

    @property
    def accepted(self) -> bool:
        return self.decision == ACCEPTED

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "decision": self.decision,
            "accepted": self.accepted,
            "similarity": round(self.similarity, 4),
            **self.threshold.to_dict(),
            "frames_embedded": self.frames_embedded,
            "liveness": self.liveness.to_dict(),
        }


def authenticate_frames(
    gallery: Gallery,
    checker: LivenessChecker,
    name: str,
    frames: Sequence[np.ndarray],
    threshold: ThresholdSpec = None,
    challenge: Challenge = True,  # the turns asked; any turn (True) is weaker, none (False) weaker still
    min_frames: int = MIN_FRAMES,
    floor: ThresholdSpec = AUTHENTICATE_DEFAULT,
) -> Authentication:
    """Authenticate `name` from RGB `frames` (time order) against `gallery`, which is only read, at the operator's
    `floor` or the stricter `threshold` asked for."""
    decide = prepare(gallery, checker, name, threshold, floor)
    observed = checker.observe_all(frames, embed=True)
    return decide_observed(gallery, checker, name, observed, len(frames), decide, challenge, min_frames)


def prepare(
    gallery: Gallery,
    checker: LivenessChecker,
    name: str,
    threshold: ThresholdSpec,
    floor: ThresholdSpec = AUTHENTICATE_DEFAULT,
) -> Threshold:
    """The threshold that will decide: the operator's `floor`, or `threshold` when it is stricter (ThresholdError
    when it is looser), after checking (before any frame is looked at) that `name` is enrolled with this model."""
    pipeline = checker.pipeline
    decide = no_looser(None if threshold is None else pipeline.threshold(threshold), pipeline.threshold(floor))
    check_gallery(gallery, pipeline)
    if name not in gallery.templates():
        raise no_such_person(gallery.location, name)
    return decide


def decide_observed(
    gallery: Gallery,
    checker: LivenessChecker,
    name: str,
    observed: Sequence[Observation],
    frames: int,
    decide: Threshold,
    challenge: Challenge = True,  # the turns asked; any turn (True) is weaker, none (False) weaker still
    min_frames: int = MIN_FRAMES,
) -> Authentication:
    """The answer from frames already observed with their embeddings (`LivenessChecker.observe(embed=True)`)."""
    liveness = checker.judge(observed, frames, challenge, min_frames)
    template = gallery.templates().get(name)
    if template is None:
        raise no_such_person(gallery.location, name)
    best = sorted(observed, key=lambda o: -o.face.score)[:PROBE_FRAMES]
    probe = np.mean(cast("list[np.ndarray]", [o.embedding for o in best]), axis=0)  # observed with embed=True
    similarity = float(cosine_similarity(probe / np.linalg.norm(probe), template))
    if not liveness.live:
        decision = NOT_LIVE
    elif similarity < decide.value:
        decision = NOT_THIS_PERSON
    else:
        decision = ACCEPTED
    return Authentication(name, decision, liveness, similarity, decide, len(best))
