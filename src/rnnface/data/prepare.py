"""`rnnface prepare`: detect and align every image of an identity-folder dataset once, on all cores.

The cache is a directory holding
- `faces.npy`: (N, S, S, 3) uint8 aligned crops (memory-mapped on load),
- `index.csv`: one row per image: path, person, status (ok / no_face / unreadable), score, faces,
- `meta.json`: the settings and statistics of the run, written last: its presence marks a complete cache.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rnnface.alignment import align_face
from rnnface.data.folders import ImageRecord, list_identity_images, resolve_image_root
from rnnface.detection import DEFAULT_DETECTOR, Detector, Face, create_detector
from rnnface.errors import DataError, ImageError
from rnnface.io import load_image

CACHE_VERSION = 1


@dataclass(frozen=True)
class PrepareConfig:
    size: int = 112
    detector: str = DEFAULT_DETECTOR
    # Fallback crop for images with no detected face: LFW-style photos have the face centred,
    # covering about half the frame.
    fallback_crop: float = 0.5


@dataclass(frozen=True)
class FaceRow:
    path: str
    person: str
    status: str  # ok | no_face | unreadable
    score: float
    faces: int


@dataclass
class FaceCache:
    """An aligned-face cache: crops plus one FaceRow per crop."""

    root: Path
    faces: np.ndarray
    rows: list[FaceRow]
    meta: dict = field(default_factory=dict)
    reused: bool = False  # True when prepare() found this cache complete and did no work

    @classmethod
    def open(cls, root: str | Path) -> FaceCache:
        root = Path(root)
        meta_path = root / "meta.json"
        if not meta_path.is_file():
            raise DataError(f"{root}: not a complete face cache (no meta.json); run `rnnface prepare`")
        meta = json.loads(meta_path.read_text())
        with open(root / "index.csv", newline="") as fh:
            rows = [
                FaceRow(r["path"], r["person"], r["status"], float(r["score"]), int(r["faces"]))
                for r in csv.DictReader(fh)
            ]
        faces = np.load(root / "faces.npy", mmap_mode="r")
        if len(faces) != len(rows):
            raise DataError(f"{root}: faces.npy has {len(faces)} crops but index.csv {len(rows)} rows")
        return cls(root, faces, rows, meta)

    def images_per_person(self) -> Counter:
        """How many readable crops each person has."""
        return Counter(r.person for r in self.rows if r.status != "unreadable")


def central_face(faces: list[Face], width: int, height: int) -> Face:
    """The face nearest the image centre among those at least a quarter the size of the largest.

    Identity-labelled photos (LFW) centre the labelled person; others in the frame are bystanders.
    """
    largest = max(f.area for f in faces)
    candidates = [f for f in faces if f.area >= 0.25 * largest]
    centre = np.array([width / 2, height / 2])
    return min(candidates, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))


_worker: tuple[Detector, PrepareConfig, Path] | None = None


def _init_worker(config: PrepareConfig, root: Path) -> None:
    global _worker
    import cv2

    cv2.setNumThreads(1)  # parallelism comes from the processes
    _worker = (create_detector(config.detector), config, root)


def _process(record: ImageRecord) -> tuple[np.ndarray | None, str, float, int]:
    detector, config, root = _worker
    try:
        image = load_image(root / record.path)
    except ImageError:
        return None, "unreadable", 0.0, 0
    faces = detector.detect(image)
    if not faces:
        return align_face(image, None, config.size, config.fallback_crop).image, "no_face", 0.0, 0
    face = central_face(faces, image.shape[1], image.shape[0])
    return align_face(image, face.landmarks, config.size).image, "ok", face.score, len(faces)


def prepare(
    data: str | Path,
    out: str | Path,
    config: PrepareConfig = PrepareConfig(),
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> FaceCache:
    """Build (or reuse) the aligned-face cache of the dataset at `data` in `out`."""
    root = resolve_image_root(data)
    out = Path(out)
    records = list_identity_images(root)
    meta_path = out / "meta.json"
    if meta_path.is_file() and not force:
        meta = json.loads(meta_path.read_text())
        if meta.get("config") == asdict(config) and meta.get("images") == len(records) and meta.get("version") == CACHE_VERSION:
            return replace(FaceCache.open(out), reused=True)
    out.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # the cache is incomplete until meta.json is rewritten
    workers = workers or os.cpu_count() or 1
    faces = np.lib.format.open_memmap(
        out / "faces.npy", mode="w+", dtype=np.uint8, shape=(len(records), config.size, config.size, 3)
    )
    rows: list[FaceRow] = []
    start = time.perf_counter()
    # spawn, not fork: a fork of a process whose OpenMP/OpenCV thread pools are running can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(config, root)) as pool:
        results = pool.map(_process, records, chunksize=16)
        for i, (record, (crop, status, score, n)) in enumerate(
            tqdm(zip(records, results), total=len(records), desc="prepare", unit="img", disable=not progress)
        ):
            faces[i] = 0 if crop is None else crop
            rows.append(FaceRow(record.path, record.person, status, round(score, 5), n))
    faces.flush()
    del faces
    seconds = time.perf_counter() - start
    with open(out / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(FaceRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "no_face", "unreadable")}
    meta = {
        "version": CACHE_VERSION,
        "data": str(root.resolve()),
        "config": asdict(config),
        "images": len(records),
        "people": len({r.person for r in rows}),
        "counts": counts,
        "seconds": round(seconds, 1),
        "workers": workers,
    }
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_path)
    return FaceCache.open(out)
