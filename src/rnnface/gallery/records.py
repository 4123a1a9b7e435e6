"""What a gallery stores and answers: faces, matches, people; the rule for names and for repeated faces."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from rnnface.errors import GalleryError, UnknownPersonError
from rnnface.similarity import normalize

SearchBy = Literal["face", "template"]

#: What identification answers for a face it cannot name.
UNKNOWN = "unknown"
#: Names that identification itself answers with; a person enrolled under one would be indistinguishable from it.
RESERVED_NAMES = frozenset({UNKNOWN})
#: Two faces of one person this similar come from the same image content (a re-run, a re-import): stored once.
SAME_IMAGE_COSINE = 0.9999
#: Faces fetched per query and wanted person before grouping by person, so one person's many faces leave room.
FACES_PER_PERSON = 8


@dataclass(frozen=True)
class FaceRecord:
    """One face to enroll: its embedding and where it came from (the crop is kept only on request)."""

    embedding: np.ndarray
    source: str = ""
    box: tuple[float, float, float, float] | None = None
    crop_png: bytes | None = None  # the aligned crop, kept so `reindex` can re-embed after a model change
    cues: np.ndarray | None = None  # quality cues (detection score, size, sharpness) for the recurrent aggregator


@dataclass(frozen=True)
class StoredFace:
    id: int
    person: str
    embedding: np.ndarray
    source: str
    box: tuple[float, float, float, float] | None
    crop_png: bytes | None
    cues: np.ndarray | None = None


@dataclass(frozen=True)
class Match:
    """A gallery person ranked for a query: similarity of the best of their faces (or their template)."""

    person: str
    similarity: float
    face_id: int | None = None
    source: str = ""

    def to_dict(self) -> dict:
        return {
            "person": self.person,
            "similarity": round(self.similarity, 4),
            "face_id": self.face_id,
            "source": self.source,
        }


@dataclass(frozen=True)
class PersonInfo:
    name: str
    faces: int
    crops_kept: int  # faces whose aligned crop is stored (re-embeddable by `reindex`)

    def to_dict(self) -> dict:
        return asdict(self)


def no_such_person(location: str, name: str) -> UnknownPersonError:
    return UnknownPersonError(f"{location}: no person named {name!r} (see `rnnface people`)")


def check_name(name: object) -> str:
    """A person's name as stored: 1-256 characters, no leading/trailing spaces, no control or invisible
    formatting characters (newlines, tabs, bidi overrides, zero-width marks), not a reserved word."""
    if not isinstance(name, str) or not name.strip() or name != name.strip() or len(name) > 256:
        raise GalleryError(f"invalid person name {name!r}: 1-256 characters, no leading/trailing spaces")
    bad = sorted(
        {f"U+{ord(c):04X}" for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")}
    )
    if bad:
        raise GalleryError(
            f"invalid person name {name!r}: control or invisible characters ({', '.join(bad)}) are not allowed"
        )
    if name.casefold() in RESERVED_NAMES:
        raise GalleryError(
            f"invalid person name {name!r}: reserved (identification answers '{name.casefold()}' for a face it "
            "cannot name)"
        )
    return name


def new_faces(faces: Sequence[FaceRecord], stored: np.ndarray | None = None) -> list[FaceRecord]:
    """`faces` less those already stored for the person (rows of `stored`) or repeated within `faces`.

    Enrolling the same photo twice, re-running an interrupted bulk enrollment or importing an export
    again adds nothing: the model is deterministic, so the same image gives the same embedding.
    """
    kept: list[FaceRecord] = []
    seen = normalize(stored) if stored is not None and len(stored) else np.zeros((0, 0), np.float32)
    for f in faces:
        e = normalize(np.asarray(f.embedding, np.float32))
        if len(seen) and len(seen[0]) == len(e) and float((seen @ e).max()) >= SAME_IMAGE_COSINE:
            continue
        kept.append(f)
        seen = e[None] if not len(seen) else np.vstack([seen, e])
    return kept


def rank_people(
    sims: np.ndarray, ids: np.ndarray, person_of: dict[int, str], top_k: int, source_of: dict[int, str] | None = None
) -> list[Match]:
    """Best-first distinct people from one query's face hits (a person scores by their best face)."""
    best: dict[str, Match] = {}
    for s, i in zip(sims, ids):
        i = int(i)
        if i < 0 or i not in person_of:
            continue
        name = person_of[i]
        if name not in best or s > best[name].similarity:
            best[name] = Match(name, float(s), i, (source_of or {}).get(i, ""))
    return sorted(best.values(), key=lambda m: -m.similarity)[:top_k]
