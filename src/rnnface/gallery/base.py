"""The Gallery interface: people, their stored face embeddings, and 1:N search over them.

A gallery holds embeddings of exactly one model (`model_id`); it refuses to mix spaces. Backends
(SQLite + FAISS embedded, Milvus for scale) register under a URI scheme and open by `open_gallery`.
"""

from __future__ import annotations

import io
import json
import os
import unicodedata
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from rnnface.errors import GalleryError, ModelMismatchError
from rnnface.io.paths import atomic_output, check_output
from rnnface.registry import Registry

SearchBy = Literal["face", "template"]
EXPORT_FORMAT = "rnnface-gallery-export/1"

#: URI scheme -> backend class (the SQLite backend also takes plain paths).
backends: Registry[type[Gallery]] = Registry("gallery backend")


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
        return {"person": self.person, "similarity": round(self.similarity, 4), "face_id": self.face_id, "source": self.source}


@dataclass(frozen=True)
class PersonInfo:
    name: str
    faces: int
    sources_kept: int  # faces whose aligned crop is stored (re-embeddable)

    def to_dict(self) -> dict:
        return asdict(self)


def normalize(x: np.ndarray) -> np.ndarray:
    """Unit rows, float32; rows already of unit length (to float32 precision) come back bit for bit."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(np.abs(norms - 1.0) <= 1e-6, x, x / np.maximum(norms, 1e-12)).astype(np.float32)


#: Two faces of one person this similar come from the same image content (a re-run, a re-import): stored once.
SAME_IMAGE_COSINE = 0.9999


def new_faces(faces: Sequence[FaceRecord], stored: np.ndarray | None = None) -> list[FaceRecord]:
    """`faces` less those already stored for the person (rows of `stored`) or repeated within `faces`:
    enrolling the same photo twice, re-running an interrupted bulk enrollment or importing an export
    again adds nothing (the model is deterministic, so the same image gives the same embedding)."""
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


#: What identification answers for a face it cannot name.
UNKNOWN = "unknown"
#: Names that identification itself answers with; a person enrolled under one would be indistinguishable from it.
RESERVED_NAMES = frozenset({UNKNOWN})


def check_name(name: object) -> str:
    """A person's name as stored: 1-256 characters, no leading/trailing spaces, no control or invisible
    formatting characters (newlines, tabs, bidi overrides, zero-width marks), not a reserved word."""
    if not isinstance(name, str) or not name.strip() or name != name.strip() or len(name) > 256:
        raise GalleryError(f"invalid person name {name!r}: 1-256 characters, no leading/trailing spaces")
    bad = sorted({f"U+{ord(c):04X}" for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")})
    if bad:
        raise GalleryError(f"invalid person name {name!r}: control or invisible characters ({', '.join(bad)}) are not allowed")
    if name.casefold() in RESERVED_NAMES:
        raise GalleryError(f"invalid person name {name!r}: reserved (identification answers '{name.casefold()}' for a face it cannot name)")
    return name


class Gallery(ABC):
    """Persistent 1:N face store. Use as a context manager so derived data is flushed on exit."""

    location: str

    @property
    @abstractmethod
    def model_id(self) -> str | None:
        """The model whose embeddings this gallery holds (None while empty)."""

    @property
    @abstractmethod
    def dim(self) -> int | None:
        """Embedding dimension (None while empty)."""

    @abstractmethod
    def enroll_many(self, batch: Sequence[tuple[str, Sequence[FaceRecord]]], model_id: str) -> list[list[int]]:
        """Add faces to people (created when new), all of `batch` atomically; return the new face ids."""

    @abstractmethod
    def search(self, queries: np.ndarray, top_k: int = 5, by: SearchBy = "face") -> list[list[Match]]:
        """For each (D,) query row: the `top_k` most similar distinct people, best first."""

    @abstractmethod
    def people(self) -> list[PersonInfo]:
        """Everyone enrolled, by name."""

    @abstractmethod
    def remove(self, name: str) -> int:
        """Delete a person with every embedding, crop and source reference; return how many faces went."""

    @abstractmethod
    def faces(self, person: str | None = None) -> Iterator[StoredFace]:
        """Stored faces (of one person, or all), in enrollment order."""

    def check_open(self) -> None:
        """Raise GalleryUnavailableError if the storage opened is no longer where it was (deleted, replaced)."""

    @abstractmethod
    def set_template(self, name: str, template: np.ndarray) -> None:
        """Replace a person's template (by default the mean of their faces) with another pooling's."""

    @abstractmethod
    def templates(self) -> dict[str, np.ndarray]:
        """Every person's template, by name."""

    @abstractmethod
    def replace_embeddings(self, model_id: str, embeddings: dict[int, np.ndarray]) -> None:
        """Swap every face's embedding for a new model's, atomically (used by reindex)."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of stored faces."""

    def close(self) -> None:
        """Flush derived data and release the store."""

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def enroll(self, name: str, faces: Sequence[FaceRecord], model_id: str) -> list[int]:
        """Add `faces` of one person in one transaction."""
        return self.enroll_many([(name, faces)], model_id)[0]

    def check_model(self, model_id: str) -> None:
        """Refuse to mix embedding spaces: raise unless the gallery is empty or holds `model_id`."""
        if self.model_id is not None and self.model_id != model_id:
            raise ModelMismatchError(
                f"{self.location} holds embeddings of model {self.model_id}, but the current model is {model_id}; "
                "use the model it was built with (--model), or `rnnface reindex` to re-embed it"
            )

    @staticmethod
    def check_batch(batch: Sequence[tuple[str, Sequence[FaceRecord]]], dim: int | None) -> int:
        """Validate names and embeddings of an enrollment; return the embedding dimension."""
        for name, faces in batch:
            check_name(name)
            if not faces:
                raise GalleryError(f"{name}: nothing to enroll (no faces)")
            for f in faces:
                e = np.asarray(f.embedding)
                if e.ndim != 1 or not np.all(np.isfinite(e)) or np.linalg.norm(e) < 1e-6:
                    raise GalleryError(f"{name}: invalid embedding (shape {e.shape}, must be a finite non-zero vector)")
                dim = dim or e.shape[0]
                if e.shape[0] != dim:
                    raise GalleryError(f"{name}: embedding of dimension {e.shape[0]}, the gallery holds {dim}")
        return int(dim)

    def export(self, path: str | os.PathLike) -> int:
        """Write the whole gallery to one portable zip (manifest.json, embeddings.npy, crops/); return faces written."""
        check_output(path, "export")  # before reading the gallery
        stored = list(self.faces())
        templates = self.templates()
        people = sorted(templates)
        manifest = {
            "format": EXPORT_FORMAT,
            "model": self.model_id,
            "dim": self.dim,
            "templates": people,  # row i of templates.npy is people[i]'s template
            "faces": [
                {
                    "person": f.person,
                    "source": f.source,
                    "box": f.box,
                    "crop": f.crop_png is not None,
                    "cues": None if f.cues is None else [float(v) for v in f.cues],
                }
                for f in stored
            ],
        }
        with atomic_output(path, "export") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest))
            buf = io.BytesIO()
            emb = np.stack([f.embedding for f in stored]) if stored else np.zeros((0, self.dim or 0), np.float32)
            np.save(buf, emb.astype(np.float32), allow_pickle=False)
            zf.writestr("embeddings.npy", buf.getvalue())
            buf = io.BytesIO()
            rows = np.stack([templates[p] for p in people]) if people else np.zeros((0, self.dim or 0), np.float32)
            np.save(buf, rows.astype(np.float32), allow_pickle=False)
            zf.writestr("templates.npy", buf.getvalue())
            for i, f in enumerate(stored):
                if f.crop_png is not None:
                    zf.writestr(f"crops/{i}.png", f.crop_png)
        return len(stored)

    def import_file(self, path: str | os.PathLike) -> int:
        """Add every face of an export file (same model only), in one transaction; return faces added (faces
        already in this gallery, e.g. from importing the same file before, are not added again).

        The archive is validated whole before anything is stored (manifest schema, array shapes and
        values, decodable crops), and no member is read past the size its manifest accounts for."""
        try:
            with zipfile.ZipFile(path) as zf:
                manifest = _validated_manifest(json.loads(_member(zf, "manifest.json", MAX_MANIFEST_BYTES)))
                n, dim = len(manifest["faces"]), manifest["dim"]
                emb = _array(zf, "embeddings.npy", (n, dim))
                names = set(zf.namelist())
                templates = _array(zf, "templates.npy", (len(manifest["templates"]), dim)) if "templates.npy" in names else None
                crops = [_crop(zf, f"crops/{i}.png") if f"crops/{i}.png" in names else None for i in range(n)]
        except ExportError as exc:
            raise GalleryError(f"{path}: not a valid rnnface gallery export ({exc})") from None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            raise GalleryError(f"{path}: not a readable rnnface gallery export ({exc})") from None
        if not manifest["faces"]:
            return 0
        self.check_model(manifest["model"])
        existing = {p.name for p in self.people()}
        by_person: dict[str, list[FaceRecord]] = {}
        for meta, e, crop in zip(manifest["faces"], emb, crops):
            box = tuple(meta["box"]) if meta.get("box") else None
            cues = np.asarray(meta["cues"], np.float32) if meta.get("cues") is not None else None
            by_person.setdefault(meta["person"], []).append(FaceRecord(e, meta.get("source", ""), box, crop, cues))
        added = sum(len(ids) for ids in self.enroll_many(list(by_person.items()), manifest["model"]))
        # Templates (e.g. the recurrent aggregator's) come along for people new here; one already in this
        # gallery keeps the gallery's own template of all their faces.
        if templates is not None:
            for name, template in zip(manifest.get("templates", []), templates):
                if name in by_person and name not in existing:
                    self.set_template(name, template)
        return added


#: Largest manifest.json read from an export, and largest crop image.
MAX_MANIFEST_BYTES = 64 * 2**20
MAX_CROP_BYTES = 2 * 2**20


class ExportError(ValueError):
    """Something in an export archive is not what an rnnface export holds."""


def _member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A member's bytes, refused if it would uncompress past `limit` (a small zip can hold a huge array)."""
    size = zf.getinfo(name).file_size
    if size > limit:
        raise ExportError(f"{name} uncompresses to {size:,} bytes, more than the {limit:,} its manifest accounts for")
    data = zf.read(name)
    if len(data) > limit:
        raise ExportError(f"{name} is larger than its header says")
    return data


def _array(zf: zipfile.ZipFile, name: str, shape: tuple[int, int]) -> np.ndarray:
    data = _member(zf, name, shape[0] * shape[1] * 4 + 4096)
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if array.dtype != np.float32 or array.shape != shape or not np.all(np.isfinite(array)):
        raise ExportError(f"{name} holds {array.dtype} {array.shape}, expected finite float32 {shape}")
    return array


def _crop(zf: zipfile.ZipFile, name: str) -> bytes:
    data = _member(zf, name, MAX_CROP_BYTES)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the crop cannot be re-embedded later
        raise ExportError(f"{name} is not a decodable image ({type(exc).__name__})") from None
    return data


def _finite_numbers(value: object, length: int | None, what: str) -> list[float]:
    ok = isinstance(value, list) and (length is None or len(value) == length) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value
    )
    if not ok:
        raise ExportError(f"{what} must be a list of {length or 'some'} finite numbers, got {value!r:.60}")
    return [float(v) for v in value]


def _validated_manifest(manifest: object) -> dict:
    """The manifest if it has an export's shape and values (every face checked), else ExportError."""
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ExportError(f"manifest format {found!r}, expected {EXPORT_FORMAT!r}")
    faces, model, dim = manifest.get("faces"), manifest.get("model"), manifest.get("dim")
    if not isinstance(faces, list):
        raise ExportError("manifest 'faces' must be a list")
    if faces and (not isinstance(model, str) or not model or not isinstance(dim, int) or isinstance(dim, bool) or not 0 < dim <= 65536):
        raise ExportError(f"manifest 'model' must name a model and 'dim' be a positive size, got {model!r}, {dim!r}")
    templates = manifest.setdefault("templates", [])
    if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise ExportError("manifest 'templates' must be a list of names")
    for i, face in enumerate(faces):
        if not isinstance(face, dict):
            raise ExportError(f"face {i} must be an object, got {type(face).__name__}")
        try:
            check_name(face.get("person"))
        except GalleryError as exc:
            raise ExportError(f"face {i}: {exc}") from None
        if not isinstance(face.get("source", ""), str):
            raise ExportError(f"face {i}: 'source' must be text, got {face.get('source')!r:.60}")
        if face.get("box") is not None:
            face["box"] = _finite_numbers(face["box"], 4, f"face {i}: 'box'")
        if face.get("cues") is not None:
            face["cues"] = _finite_numbers(face["cues"], None, f"face {i}: 'cues'")
    return manifest


def open_gallery(location: str | os.PathLike | None = None, **options) -> Gallery:
    """Open (creating if needed) the gallery at a path (SQLite + FAISS) or a backend URI such as milvus://host:port/coll.

    None means the configured one: $RNNFACE_GALLERY, else the user's data directory.
    """
    if location is None:
        from rnnface.settings import Settings

        location = Settings.from_env().gallery
    text = str(location)
    scheme = urlsplit(text).scheme if "://" in text or text.startswith("milvus:") else ""
    try:
        backend = backends.get(scheme or "sqlite")
    except KeyError as exc:
        raise GalleryError(f"{text}: {exc.args[0]}") from None
    return backend(text, **options)


@dataclass
class EnrollSummary:
    """What a bulk enrollment did: people/faces stored, and every skipped image with its reason."""

    people: int = 0
    faces: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # person folders not enrolled at all, with why
    already: int = 0  # faces of images already in the gallery for that person (a re-run): not stored again

    def to_dict(self) -> dict:
        return {
            "people": self.people,
            "faces": self.faces,
            "already": self.already,
            "skipped": [{"image": i, "reason": r} for i, r in self.skipped],
            "refused": [{"folder": f, "reason": r} for f, r in self.refused],
        }
