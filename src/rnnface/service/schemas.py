"""Request/response shapes of the HTTP API (they make its OpenAPI spec)."""

from __future__ import annotations

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
