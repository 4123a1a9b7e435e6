"""What a gallery stores and answers: faces, matches, people; the rule for names and for repeated faces."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from rnnface.errors import GalleryError, UnknownFaceError, UnknownPersonError
from rnnface.similarity import normalize

SearchBy = Literal["face", "template"]

#: What identification answers for a face it cannot name.
UNKNOWN = "unknown"
#: Names that identification itself answers with; a person enrolled under one would be indistinguishable from it.
RESERVED_NAMES = frozenset({UNKNOWN})
#: How a group of faces that nobody has named yet is called (`rnnface cluster --keep`): "unknown #3".
UNNAMED = "unknown #{}"
_UNNAMED = re.compile(r"unknown #([1-9][0-9]{0,8})")
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

    @property
    def unnamed(self) -> bool:
        """A group of faces nobody has named yet (`unknown #k`), not a person."""
        return is_unnamed(self.name)

    def to_dict(self) -> dict:
        return {**asdict(self), "unnamed": self.unnamed}


def no_such_person(location: str, name: str) -> UnknownPersonError:
    return UnknownPersonError(f"{location}: no person named {name!r} (see `rnnface people`)")


def check_face_ids(location: str, wanted: set[int], found: set[int]) -> None:
    """UnknownFaceError naming the first of the `wanted` face ids that is not among the `found` ones."""
    if missing := sorted(wanted - found):
        raise UnknownFaceError(f"{location}: no stored face with id {missing[0]} (see `rnnface people --faces`)")


#: Longest person name, in characters (every backend stores this many: a Milvus field holds 4 bytes a character).
MAX_NAME_CHARS = 256


def shown(text: str, limit: int = 60) -> str:
    """`text` as an error message quotes it: repr, cut to `limit` characters (a 5,000-character name is not echoed)."""
    quoted = repr(text)
    return quoted if len(quoted) <= limit else f"{quoted[: limit - 5]}...'"


def unnamed_number(name: str) -> int | None:
    """k of an unnamed group's name `unknown #k` (exactly as the gallery writes it), else None."""
    match = _UNNAMED.fullmatch(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class NewGroup:
    """A new unnamed group in an enrollment batch, numbered by the gallery inside its write transaction (`unknown
    #k`, k above the highest there), so that two writers never give one number to two strangers. `key` tells a
    batch's new groups apart."""

    key: int


GroupName = str | NewGroup


def number_new_groups(batch: Sequence[tuple[GroupName, Sequence]], names: Sequence[str]) -> list[tuple[str, Sequence]]:
    """`batch` with each NewGroup named `unknown #k`, numbered in order of appearance above the highest unnamed
    group among `names` (the gallery's people, read inside the same transaction)."""
    top = max((unnamed_number(n) or 0 for n in names), default=0)
    numbered: dict[NewGroup, str] = {}
    out = []
    for name, faces in batch:
        if isinstance(name, NewGroup):
            name = numbered.setdefault(name, UNNAMED.format(top + 1 + len(numbered)))
        out.append((name, faces))
    return out


def is_unnamed(name: str) -> bool:
    """Whether `name` is an unnamed group's (`unknown #k`), not a person's."""
    return unnamed_number(name) is not None


@lru_cache(maxsize=4096)
def _skeleton_char(char: str) -> str:
    """One stand-in for every character that reads like `char` (Unicode's confusables): the least ASCII letter or
    digit among them (so `o`, `0`, Greek `ο` and Cyrillic `о` are all `0`), else `char` itself."""
    from confusables import confusable_characters

    alike = [c for c in confusable_characters(char) or () if len(c) == 1 and c.isascii() and c.isalnum()]
    return min(alike + ([char] if char.isascii() and char.isalnum() else [])) if alike else char


def skeleton(text: str) -> str:
    """`text` as it reads: NFKC-folded (fullwidth letters), case-folded, each character replaced by its stand-in.
    Linear in the text's length (the confusables package's own `normalize` lists every reading, exponentially)."""
    return "".join(_skeleton_char(c) for c in unicodedata.normalize("NFKC", text).casefold())


def looks_reserved(name: str) -> bool:
    """Whether `name` reads as a word identification answers with: after NFKC folding (fullwidth letters) and
    case folding, or letter for letter by Unicode's confusables (a Cyrillic `о` in `unknоwn`)."""
    read = skeleton(name)
    return any(read == skeleton(word) for word in RESERVED_NAMES)


def reads_unnamed(name: str) -> bool:
    """Whether `name` reads as an unnamed group's, look-alikes included (`unknοwn #5` with a Greek `ο`)."""
    return re.fullmatch(re.escape(skeleton("unknown")) + r"\s*#\s*\d+", skeleton(name)) is not None


def check_name(name: object) -> str:
    """A person's name as stored: 1-256 characters, no leading/trailing spaces, no control or invisible
    formatting characters (newlines, tabs, bidi overrides, zero-width marks), not a reserved word or a look-alike."""
    if not isinstance(name, str) or not name.strip() or name != name.strip() or len(name) > MAX_NAME_CHARS:
        what = shown(name) if isinstance(name, str) else type(name).__name__
        length = f" ({len(name):,} characters)" if isinstance(name, str) and len(name) > MAX_NAME_CHARS else ""
        raise GalleryError(
            f"invalid person name {what}{length}: 1-{MAX_NAME_CHARS} characters, no leading/trailing spaces"
        )
    bad = sorted(
        {f"U+{ord(c):04X}" for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")}
    )
    if bad:
        raise GalleryError(
            f"invalid person name {shown(name)}: control or invisible characters ({', '.join(bad[:8])}) are not allowed"
        )
    if looks_reserved(name) and not is_unnamed(name):
        raise GalleryError(
            f"invalid person name {shown(name)}: reserved, or reads as a reserved word (identification answers "
            f"'{UNKNOWN}' for a face it cannot name)"
        )
    return name


def check_person_name(name: object) -> str:
    """A name a user gives a person: as `check_name`, and not one that reads as an unnamed group's (`unknown #k`,
    which only clustering creates)."""
    name = check_name(name)
    if reads_unnamed(name):
        raise GalleryError(
            f"invalid person name {shown(name)}: reserved for groups nobody has named (rnnface cluster --keep); "
            "name such a group with `rnnface name-cluster`"
        )
    return name


def new_faces(faces: Sequence[FaceRecord], stored: np.ndarray | None = None) -> list[FaceRecord]:
    """`faces` less those already stored for the person (rows of `stored`) or repeated within `faces`.

    Enrolling the same photo twice, re-running an interrupted bulk enrollment or importing an export
    again adds nothing: the model is deterministic, so the same image gives the same embedding. Linear
    in the number of faces: each face is compared only with those sharing one of its random-hyperplane
    hashes (a copy, at cosine >= 0.9999, shares them with near certainty).
    """
    if not faces:
        return []
    new = normalize(np.stack([np.asarray(f.embedding, np.float32) for f in faces]))
    old = normalize(stored) if stored is not None and len(stored) and stored.shape[1] == new.shape[1] else new[:0]
    vectors = np.concatenate([old, new])
    buckets: dict[tuple[int, int], list[int]] = {}
    keys = _hash_keys(vectors)
    kept_rows = list(range(len(old)))  # rows of `vectors` kept so far: the stored ones, then each new one kept
    for row in kept_rows:
        for key in keys[row]:
            buckets.setdefault(key, []).append(row)
    kept: list[FaceRecord] = []
    for i, face in enumerate(faces):
        row = len(old) + i
        candidates = {r for key in keys[row] for r in buckets.get(key, ())}
        if candidates and float((vectors[sorted(candidates)] @ vectors[row]).max()) >= SAME_IMAGE_COSINE:
            continue
        kept.append(face)
        for key in keys[row]:
            buckets.setdefault(key, []).append(row)
    return kept


def _hash_keys(vectors: np.ndarray, tables: int = 4, bits: int = 16) -> list[tuple[tuple[int, int], ...]]:
    """Each row's bucket in each of `tables` random-hyperplane hashes of `bits` bits (fixed seed: the same
    vector always lands in the same buckets)."""
    planes = np.random.default_rng(0).standard_normal((tables, bits, vectors.shape[1])).astype(np.float32)
    signs = (np.einsum("tbd,nd->ntb", planes, vectors) > 0).astype(np.int64)
    codes = signs @ (1 << np.arange(bits))
    return [tuple((t, int(c)) for t, c in enumerate(row)) for row in codes]


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
