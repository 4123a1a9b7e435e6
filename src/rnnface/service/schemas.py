"""Request/response shapes of the HTTP API (they make its OpenAPI spec)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Error(BaseModel):
    detail: str = Field(description="What went wrong, for a person to read.")
    type: str = Field(description="Error kind, e.g. ImageError, validation, request.")


class Health(BaseModel):
    status: str
    version: str


class Ready(BaseModel):
    status: str
    model: str
    gallery_model: str | None
    people: int


class FaceOut(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in pixels.")
    score: float
    landmarks: dict[str, list[float]]


class Detection(BaseModel):
    width: int
    height: int
    faces: list[FaceOut]


class EmbeddedFace(FaceOut):
    embedding: list[float]


class Embedding(BaseModel):
    model: str
    faces: list[EmbeddedFace]


class OperatingPoint(BaseModel):
    threshold: float = Field(description="The cosine similarity that decided.")
    point: str = Field(description="strict, balanced or loose; search (set for an FPIR); given; checkpoint.")
    far: float | None = Field(description="Per-comparison false-accept rate there, on the calibration data.")


class VerifyResult(OperatingPoint):
    similarity: float
    same: bool
    face_a: int
    face_b: int
    faces_in_a: int
    faces_in_b: int
    face_a_why: str = Field(
        "", description="Why that face of image A: the only one, the largest, or the most face-like."
    )
    face_b_why: str = Field("", description="Why that face of image B.")


class MatchOut(BaseModel):
    person: str
    similarity: float
    face_id: int | None
    source: str


class IdentifiedFace(FaceOut, OperatingPoint):
    name: str = Field(description="Best match, or 'unknown' below the threshold.")
    fpir: float | None = Field(None, description="search: the false-positive identification rate aimed for.")
    comparisons: int | None = Field(None, description="search: the gallery entries each face is compared with.")
    matches: list[MatchOut]


class IdentifyResult(BaseModel):
    width: int
    height: int
    faces: list[IdentifiedFace]


class PersonSummary(BaseModel):
    name: str
    faces: int
    crops_kept: int
    unnamed: bool = Field(False, description="A group nobody has named yet (unknown #k), not a person.")


class PeopleList(BaseModel):
    model: str | None
    people: list[PersonSummary]


class Person(BaseModel):
    name: str
    faces: int
    sources: list[str]


class Skipped(BaseModel):
    image: str
    reason: str


class Enrolled(BaseModel):
    name: str
    faces: int  # faces stored by this request
    skipped: list[Skipped]
    already: int = 0  # photos already enrolled for this person (the same image again): not stored twice


class Removed(BaseModel):
    name: str
    faces: int


class FrameLiveness(BaseModel):
    frame: int = Field(description="The frame's position in the upload, from 0.")
    face: FaceOut | None = Field(description="Its face (none found: null).")
    live_score: float | None = Field(description="Live probability of the window of frames ending here.")


class ChallengeIssued(BaseModel):
    token: str = Field(description="Send it as challenge_token with the clip; good for one try.")
    turns: list[Literal["left", "right"]] = Field(
        description="The turns to ask the person for, in order: their own left and right (in frames as a camera sees "
        "them, not mirrored), each followed by a look back at the camera. Empty: any one turn."
    )
    expires_in_s: float


class Challenge(BaseModel):
    passed: bool
    peak_parallax: float = Field(description="Largest nose parallax off the face's plane, in eye distances.")
    frames: int
    reason: str
    asked: list[str] | None = Field(description="The turns asked for, in order (null: any turn).")
    seen: list[str] = Field(description="The turns seen, in order.")
    parallax: list[float]


class Liveness(BaseModel):
    live: bool
    reason: str
    live_score: float = Field(description="The clip's live probability (mean over its full windows).")
    threshold: float = Field(description="The live score needed, chosen on training data for this window length.")
    window: int = Field(description="Frames per scored window (1: each frame alone).")
    change: float | None = Field(
        description="Median change of the face between successive frames, in grey levels (null: one frame); below "
        "1 the frames are a still image, never live."
    )
    frames_with_face: int
    challenge: Challenge | None = Field(description="The head-turn check, when asked for.")
    frames: list[FrameLiveness]


class Authentication(OperatingPoint):
    name: str
    decision: str = Field(description="accepted, rejected: not live, or rejected: not this person.")
    accepted: bool
    similarity: float = Field(description="Cosine similarity of the clip's best frames to the person's template.")
    frames_embedded: int
    liveness: Liveness


class ClusterFace(FaceOut):
    image: str = Field(description="The upload's file name (or its position) the face is in.")


class ClusterMember(ClusterFace):
    fit: float = Field(description="Mean cosine similarity to the group's other faces.")
    doubtful: bool = Field(description="Its fit is under the threshold: kept, but worth a look.")


class PlacedFace(ClusterFace):
    group: str | None = Field(description="The person or unnamed group it joined; null: left alone.")
    stored: bool = Field(description="Stored in the gallery (it joined or founded an unnamed group).")
    new_group: bool = Field(description="It founded a new unnamed group.")
    face_id: int | None = Field(description="Its id in the gallery when stored (to split it off later).")


class ClusterGroup(BaseModel):
    number: int = Field(description="0, 1, ... by size.")
    size: int
    cohesion: float = Field(description="Mean cosine similarity between the group's faces.")
    nearest: float = Field(description="Mean cosine similarity to the closest other group.")
    representative: ClusterFace = Field(description="The face nearest the group's mean: the one to show.")
    members: list[ClusterMember]


class Pooled(OperatingPoint):
    rho: float = Field(description="How much a mean over many pairs of faces counts more than one pair (1: not).")
    background: float = Field(description="The model's median cosine between two people, which pooling starts at.")


class Clustered(Pooled):
    min_size: int
    faces: int
    groups: list[ClusterGroup]
    alone: list[ClusterFace] = Field(description="Faces in groups under min_size: not grouped.")
    skipped: list[Skipped]


class ClusterRun(BaseModel):
    run: str = Field(description="The run's token: send photos to /cluster/runs/{run}/photos, then group or keep.")
    max_faces: int = Field(description="Most faces the run holds.")
    idle_s: float = Field(description="Seconds the run may sit idle before it is dropped.")


class ClusterRunPhotos(BaseModel):
    photos: int = Field(description="Photos the run has received so far.")
    faces: int = Field(description="Faces the run holds so far.")
    added: int = Field(description="Faces this request added.")
    skipped: list[Skipped] = Field(description="Photos of this request that gave no face, with why.")


class KeptGroups(Pooled):
    faces: list[PlacedFace]
    skipped: list[Skipped] = Field(description="Photos that gave no face to place, with why.")


class SplitOff(BaseModel):
    face_id: int
    was: str = Field(description="The person or group it was taken from.")
    group: str = Field(description="The new unnamed group it is now alone in.")


class Renamed(BaseModel):
    group: str
    name: str
    faces: int
