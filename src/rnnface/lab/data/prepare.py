"""`rnnface prepare`: detect and align every image of an identity-folder dataset once, on all cores.

The cache is a directory holding
- `faces.npy`: (N, S, S, 3) uint8 face crops, cut as the config's crop spec says (memory-mapped on load),
- `index.csv`: one row per image: path, person, status (ok / no_face / unreadable), score, faces and
  the detector box (x1, y1, x2, y2) of the face used,
- `meta.json`: the settings and statistics of the run, written last: its presence marks a complete cache.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from rnnface.alignment import CropSpec
from rnnface.detection import DEFAULT_DETECTOR, DetectionSettings, Detector, Face, create_detector, main_faces
from rnnface.errors import DataError, ImageError
from rnnface.io import load_image
from rnnface.io.folders import ImageRecord, list_identity_images, resolve_image_root
from rnnface.io.paths import atomic_output
from rnnface.lab.data.workers import worker_pool
from rnnface.progress import progress_bar

CACHE_VERSION = 2  # 2: crop specs, boxes in the index


@dataclass(frozen=True)
class PrepareConfig:
    crop: CropSpec = CropSpec()
    detector: str = DEFAULT_DETECTOR
    # Fallback crop for images with no detected face: LFW-style photos have the face centred,
    # covering about half the frame (1.0: the whole photo, for loosely cropped sets such as CFP).
    fallback_crop: float = 0.5
    check: bool = False  # the false-positive filter users get (rnnface.recognition.faceness)
    pad: bool = False  # look again on a padded canvas when no face is found


def _same_config(stored: object, config: PrepareConfig) -> bool:
    """Whether a cache's recorded config is `config` (a field an older cache does not record had its default)."""
    if not isinstance(stored, dict):
        return False
    defaults = asdict(PrepareConfig())
    return all(stored.get(k, defaults[k]) == v for k, v in asdict(config).items())


@dataclass(frozen=True)
class FaceRow:
    path: str
    person: str
    status: str  # ok | no_face | unreadable
    score: float
    faces: int
    box: tuple[float, ...] | None = None  # detector box of the face used, (x1, y1, x2, y2) (None: no face)


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
        """The cache at `root`; DataError saying how to rebuild it when it is incomplete, damaged or of another
        version (a truncated array, a meta.json that is not JSON, a missing index)."""
        root = Path(root)
        if not (root / "meta.json").is_file():
            raise DataError(f"{root}: not a complete face cache (no meta.json); run `rnnface prepare`")
        try:
            meta = read_meta(root / "meta.json")
            if meta.get("version") != CACHE_VERSION:
                raise DataError(f"{root}: a face cache of an older format; rebuild it with `rnnface prepare --force`")
            with open(root / "index.csv", newline="") as fh:
                rows = [
                    FaceRow(r["path"], r["person"], r["status"], float(r["score"]), int(r["faces"]), _box(r["box"]))
                    for r in csv.DictReader(fh)
                ]
            faces = np.load(root / "faces.npy", mmap_mode="r")
        except DataError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise damaged(root, exc) from None
        if len(faces) != len(rows) or faces.ndim != 4:
            raise damaged(root, f"faces.npy holds {faces.shape}, index.csv {len(rows)} rows")
        return cls(root, faces, rows, meta)

    @property
    def crop(self) -> CropSpec:
        """How the cached faces were cut out."""
        return CropSpec(**self.meta["config"]["crop"])

    def images_per_person(self) -> Counter:
        """How many readable crops each person has."""
        return Counter(r.person for r in self.rows if r.status != "unreadable")


def damaged(root: Path, why: object) -> DataError:
    """The one message for a cache that cannot be read as it is: what is wrong, and how to start it afresh."""
    text = f"{type(why).__name__}: {why}" if isinstance(why, BaseException) else str(why)
    return DataError(f"{root}: incomplete or damaged cache ({text[:200]}); rerun with --force to build it afresh")


def read_meta(path: Path) -> dict:
    """A cache's meta.json as a mapping; DataError (a damaged cache) for anything else, however deeply nested."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise damaged(path.parent, f"meta.json is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise damaged(path.parent, "meta.json is not a mapping")
    return meta


def _box(text: str) -> tuple[float, ...] | None:
    return tuple(float(v) for v in text.split()) if text else None


def central_face(faces: list[Face], width: int, height: int) -> Face:
    """The face nearest the image centre among the main faces (`rnnface.detection.main_faces`: not much smaller
    or weaker than the largest). Identity-labelled photos (LFW) centre the labelled person; others in the frame
    are bystanders."""
    centre = np.array([width / 2, height / 2])
    return min(main_faces(faces), key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))


_worker: tuple[Detector, PrepareConfig, Path] | None = None


def _init_worker(config: PrepareConfig, root: Path) -> None:
    global _worker
    detector = create_detector(config.detector, settings=DetectionSettings(check=config.check, pad=config.pad))
    if config.check:
        from rnnface.recognition.faceness import CheckedDetector

        detector = CheckedDetector(detector)
    _worker = (detector, config, root)


def _process(record: ImageRecord) -> tuple[np.ndarray | None, FaceRow]:
    assert _worker is not None  # set by _init_worker, each worker's initializer
    detector, config, root = _worker
    try:
        image = load_image(root / record.path)
    except ImageError:
        return None, FaceRow(record.path, record.person, "unreadable", 0.0, 0)
    faces = detector.detect(image)
    if not faces:
        crop = config.crop.crop(image, None, None, config.fallback_crop)
        return crop.image, FaceRow(record.path, record.person, "no_face", 0.0, 0)
    face = central_face(faces, image.shape[1], image.shape[0])
    box = tuple(round(float(v), 2) for v in face.box)
    row = FaceRow(record.path, record.person, "ok", round(face.score, 5), len(faces), box)
    return config.crop.crop(image, face.box, face.landmarks).image, row


def prepare(
    data: str | Path,
    out: str | Path,
    config: PrepareConfig = PrepareConfig(),
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    records: list[ImageRecord] | None = None,
) -> FaceCache:
    """Build (or reuse) the aligned-face cache of the dataset at `data` in `out`: an identity-folder tree, or the
    given `records` (paths relative to `data`)."""
    root = resolve_image_root(data) if records is None else Path(data)
    out = Path(out)
    records = list_identity_images(root) if records is None else records
    meta_path = out / "meta.json"
    if meta_path.is_file() and not force:
        meta = read_meta(meta_path)
        same = _same_config(meta.get("config"), config) and meta.get("images") == len(records)
        if same and meta.get("version") == CACHE_VERSION:
            return replace(FaceCache.open(out), reused=True)
    out.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # the cache is incomplete until meta.json is rewritten
    workers = workers or os.cpu_count() or 1
    size = config.crop.size
    faces = np.lib.format.open_memmap(out / "faces.npy", mode="w+", dtype=np.uint8, shape=(len(records), size, size, 3))
    rows: list[FaceRow] = []
    start = time.perf_counter()
    pool = worker_pool(workers, _init_worker, (config, root))
    with pool:
        results = pool.map(_process, records, chunksize=16)
        for i, (crop, row) in enumerate(
            progress_bar(results, enabled=progress, total=len(records), desc="prepare", unit="img")
        ):
            faces[i] = 0 if crop is None else crop
            rows.append(row)
    faces.flush()
    del faces
    seconds = time.perf_counter() - start
    with atomic_output(out / "index.csv", "face cache index") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(FaceRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows({**asdict(r), "box": " ".join(map(str, r.box or ()))} for r in rows)
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
    with atomic_output(meta_path, "face cache") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return FaceCache.open(out)
