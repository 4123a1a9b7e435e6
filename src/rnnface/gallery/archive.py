"""The portable export format of a gallery: one zip of manifest.json, embeddings.npy, templates.npy and crops/.

Any backend writes it and any backend reads it back. Reading validates the whole archive before a
caller stores anything (manifest schema, array shapes and values, decodable crops), and no member
is read past the size its manifest accounts for, so a small zip cannot unpack into a huge array.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass

import numpy as np
from PIL import Image

from rnnface.errors import GalleryError
from rnnface.gallery.records import FaceRecord, StoredFace, check_name, shown
from rnnface.io.paths import atomic_output

FORMAT = "rnnface-gallery-export/1"
#: Largest manifest.json read from an export, and largest crop image.
MAX_MANIFEST_BYTES = 256 * 2**20
MAX_CROP_BYTES = 2 * 2**20
#: Most faces in one archive, widest embedding, and most embedding numbers (faces x dimension: 1 GiB of float32,
#: e.g. 524,288 faces at 512-d), checked from the manifest before any array is read.
MAX_FACES = 2_000_000
MAX_DIM = 4096
MAX_VALUES = 2**28


class ArchiveError(ValueError):
    """Something in an export archive is not what an rnnface export holds."""


@dataclass(frozen=True)
class Archive:
    """What an export holds: the model, every face by person (in file order), and the templates it carried."""

    model: str | None
    dim: int | None
    faces: dict[str, list[FaceRecord]]
    templates: dict[str, np.ndarray]


def write_archive(
    path: str | os.PathLike,
    model: str | None,
    dim: int | None,
    stored: list[StoredFace],
    templates: dict[str, np.ndarray],
) -> None:
    """Write faces and templates as one export zip, whole or not at all."""
    people = sorted(templates)
    manifest = {
        "format": FORMAT,
        "model": model,
        "dim": dim,
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
    # the zip is built in a spooled file and copied out: a device or FIFO (`export /dev/stdout`, a node like
    # /dev/null's) cannot take the zip writer's seeks
    with tempfile.SpooledTemporaryFile(max_size=64 * 2**20) as spool:
        with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as zf:
            _write_members(zf, manifest, dim, stored, templates, people)
        spool.seek(0)
        with atomic_output(path, "export") as tmp, open(tmp, "wb") as out:
            shutil.copyfileobj(spool, out, 2**20)


def _write_members(
    zf: zipfile.ZipFile,
    manifest: dict,
    dim: int | None,
    stored: list[StoredFace],
    templates: dict[str, np.ndarray],
    people: list[str],
) -> None:
    """The export's members: manifest, embeddings, templates and kept crops."""
    zf.writestr("manifest.json", json.dumps(manifest))
    empty = np.zeros((0, dim or 0), np.float32)
    zf.writestr("embeddings.npy", _npy(np.stack([f.embedding for f in stored]) if stored else empty))
    zf.writestr("templates.npy", _npy(np.stack([templates[p] for p in people]) if people else empty))
    for i, f in enumerate(stored):
        if f.crop_png is not None:
            zf.writestr(f"crops/{i}.png", f.crop_png)


def read_archive(path: str | os.PathLike) -> Archive:
    """The validated content of an export file; GalleryError naming the file and the problem otherwise."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = _validated_manifest(_json(_member(zf, "manifest.json", MAX_MANIFEST_BYTES)))
            n, dim = len(manifest["faces"]), manifest["dim"]
            emb = _array(zf, "embeddings.npy", (n, dim))
            names = set(zf.namelist())
            templates = (
                _array(zf, "templates.npy", (len(manifest["templates"]), dim)) if "templates.npy" in names else None
            )
            crops = [_crop(zf, f"crops/{i}.png") if f"crops/{i}.png" in names else None for i in range(n)]
    except ArchiveError as exc:
        raise GalleryError(f"{path}: not a valid rnnface gallery export ({exc})") from None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise GalleryError(f"{path}: not a readable rnnface gallery export ({str(exc)[:200]})") from None
    faces: dict[str, list[FaceRecord]] = {}
    for meta, e, crop in zip(manifest["faces"], emb, crops):
        box = tuple(meta["box"]) if meta.get("box") else None
        cues = np.asarray(meta["cues"], np.float32) if meta.get("cues") is not None else None
        faces.setdefault(meta["person"], []).append(FaceRecord(e, meta.get("source", ""), box, crop, cues))
    carried = dict(zip(manifest["templates"], templates)) if templates is not None else {}
    return Archive(manifest["model"], dim, faces, carried)


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except RecursionError:
        raise ArchiveError("manifest.json is nested too deeply to be an export's manifest") from None


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array.astype(np.float32), allow_pickle=False)
    return buf.getvalue()


def _member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A member's bytes, refused if it would uncompress past `limit` (a small zip can hold a huge array)."""
    size = zf.getinfo(name).file_size
    if size > limit:
        raise ArchiveError(f"{name} uncompresses to {size:,} bytes, more than the {limit:,} its manifest accounts for")
    data = zf.read(name)
    if len(data) > limit:
        raise ArchiveError(f"{name} is larger than its header says")
    return data


def _array(zf: zipfile.ZipFile, name: str, shape: tuple[int, int]) -> np.ndarray:
    data = _member(zf, name, shape[0] * shape[1] * 4 + 4096)
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if array.dtype != np.float32 or array.shape != shape or not np.all(np.isfinite(array)):
        raise ArchiveError(f"{name} holds {array.dtype} {array.shape}, expected finite float32 {shape}")
    return array


def _crop(zf: zipfile.ZipFile, name: str) -> bytes:
    data = _member(zf, name, MAX_CROP_BYTES)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except Exception as exc:  # any decoder failure means the crop cannot be re-embedded later
        raise ArchiveError(f"{name} is not a decodable image ({type(exc).__name__})") from None
    return data


def _finite_numbers(value: object, length: int | None, what: str) -> list[float]:
    items: list = value if isinstance(value, list) else []
    ok = (
        isinstance(value, list)
        and (length is None or len(items) == length)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in items)
    )
    if not ok:
        raise ArchiveError(f"{what} must be a list of {length or 'some'} finite numbers, got {value!r:.60}")
    return [float(v) for v in items]


def _validated_manifest(manifest: object) -> dict:
    """The manifest if it has an export's shape and values (every face checked), else ArchiveError."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ArchiveError(f"manifest format {found!r}, expected {FORMAT!r}")
    faces, model, dim = manifest.get("faces"), manifest.get("model"), manifest.get("dim")
    if not isinstance(faces, list):
        raise ArchiveError("manifest 'faces' must be a list")
    dim_ok = isinstance(dim, int) and not isinstance(dim, bool) and 0 < dim <= MAX_DIM
    if faces and (not isinstance(model, str) or not model or not dim_ok):
        raise ArchiveError(
            f"manifest 'model' must name a model and 'dim' be a size of 1-{MAX_DIM}, "
            f"got {shown(str(model))}, {dim!r:.20}"
        )
    if len(faces) > MAX_FACES or (faces and isinstance(dim, int) and len(faces) * dim > MAX_VALUES):
        raise ArchiveError(
            f"{len(faces):,} faces of dimension {dim} are more than an archive may hold ({MAX_FACES:,} faces, "
            f"{MAX_VALUES:,} embedding numbers)"
        )
    templates = manifest.setdefault("templates", [])
    if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise ArchiveError("manifest 'templates' must be a list of names")
    for i, face in enumerate(faces):
        if not isinstance(face, dict):
            raise ArchiveError(f"face {i} must be an object, got {type(face).__name__}")
        try:
            check_name(face.get("person"))
        except GalleryError as exc:
            raise ArchiveError(f"face {i}: {exc}") from None
        if not isinstance(face.get("source", ""), str):
            raise ArchiveError(f"face {i}: 'source' must be text, got {face.get('source')!r:.60}")
        if face.get("box") is not None:
            face["box"] = _finite_numbers(face["box"], 4, f"face {i}: 'box'")
        if face.get("cues") is not None:
            face["cues"] = _finite_numbers(face["cues"], None, f"face {i}: 'cues'")
    return manifest
