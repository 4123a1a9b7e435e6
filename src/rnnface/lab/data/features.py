"""Front-end feature caches: a pretrained CNN's feature maps of every face in a face cache, computed once.

Training a recurrent head on frozen front-end features then takes minutes on a CPU instead of
running the CNN every step. View 0 of each face is its crop as inference sees it; view 1 its
mirror image; further views are seeded random jitters (shift, scale, rotation, brightness,
contrast, mirror), so augmentation survives the caching. Layout, under `<cache>/frontend-<name>/`:
`<output>.npy` of shape (N, V, ...) (maps float16, the embedding float32) and `meta.json`, written
last: its presence marks a complete feature cache.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from rnnface.alignment import CROPS
from rnnface.errors import DataError
from rnnface.io.paths import atomic_output
from rnnface.lab.data.prepare import FaceCache, damaged, read_meta
from rnnface.lab.data.workers import worker_pool
from rnnface.models.frontends import JOINT, FrontEndSpec, frontend_for_crop, frontend_spec
from rnnface.pretrained.facenet import facenet_runner
from rnnface.pretrained.mobilefacenet import MobileFaceNetRunner
from rnnface.progress import progress_bar

FEATURES_VERSION = 1

#: Each front-end's runner of numpy crops, built as `runner(outputs, threads=...)`.
RUNNERS: dict[str, Callable[..., Callable[[np.ndarray], dict[str, np.ndarray]]]] = {
    "facenet": facenet_runner,
    "mobilefacenet": MobileFaceNetRunner,
}

#: The outputs a feature cache holds unless asked otherwise: the map the default head reads, and the embedding.
DEFAULT_OUTPUTS: dict[str, tuple[str, ...]] = {
    "facenet": ("block17", "embedding"),
    "mobilefacenet": ("map7", "embedding"),
}


def jitter(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random view of one crop: mirror, +-6 % shift, +-8 % scale, +-10 degrees, brightness and contrast."""
    size = crop.shape[0]
    angle, scale = rng.uniform(-10, 10), rng.uniform(0.92, 1.08)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-0.06, 0.06, 2) * size
    out = cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = out.astype(np.float32) * rng.uniform(0.75, 1.25) + rng.uniform(-25, 25)
    return np.clip(out, 0, 255).astype(np.uint8)


def views_of(crop: np.ndarray, views: int, seed: int) -> np.ndarray:
    """(V, S, S, 3): the crop, its mirror, then V - 2 seeded jitters."""
    out = [crop, crop[:, ::-1]][:views]
    rng = np.random.default_rng(seed)
    out += [jitter(crop, rng) for _ in range(views - len(out))]
    return np.ascontiguousarray(np.stack(out))


@dataclass
class FrontendFeatures:
    """A complete feature cache: {output: (N, V, ...) memory-mapped array}."""

    root: Path
    arrays: dict[str, np.ndarray]
    meta: dict

    @property
    def views(self) -> int:
        return int(self.meta["views"])

    @staticmethod
    def location(cache: FaceCache, frontend: str = "facenet") -> Path:
        """Where the feature cache of `frontend` over `cache` lives."""
        return cache.root / f"frontend-{frontend}"

    @classmethod
    def complete(cls, cache: FaceCache, frontend: str = "facenet") -> bool:
        """Whether a finished feature cache is there (its meta.json is written last)."""
        return (cls.location(cache, frontend) / "meta.json").is_file()

    @classmethod
    def open(cls, cache: FaceCache, frontend: str = "facenet") -> FrontendFeatures:
        """The feature cache of `frontend` over `cache`; DataError saying how to rebuild it when it is incomplete
        or damaged (a truncated array, a meta.json that is not JSON)."""
        root = cls.location(cache, frontend)
        meta_path = root / "meta.json"
        if not meta_path.is_file():
            how = " --join <the same images cut for the other CNN>" if frontend_spec(frontend).parts else ""
            raise DataError(f"{root}: no complete feature cache; run `rnnface features {cache.root}{how}`")
        meta = read_meta(meta_path)
        try:
            if "joint" in meta:  # each part's arrays stay in its own feature cache
                arrays = {
                    f"{part}.{o}": np.load(root / where / f"{o}.npy", mmap_mode="r")
                    for part, where in meta["joint"].items()
                    for o in read_meta(root / where / "meta.json")["outputs"]
                }
            else:
                arrays = {o: np.load(root / f"{o}.npy", mmap_mode="r") for o in meta["outputs"]}
        except (OSError, ValueError, KeyError, TypeError, DataError) as exc:
            raise damaged(root, exc) from None
        if any(len(a) != len(cache.rows) for a in arrays.values()):
            raise damaged(root, f"it does not match its face cache ({len(cache.rows)} faces)")
        return cls(root, arrays, meta)


_worker: tuple[Callable[[np.ndarray], dict[str, np.ndarray]], FaceCache, int, int] | None = None

#: Faces a worker takes at once (with their views, one network batch where the runtime batches).
CHUNK = 16


def _init(frontend: str, cache_root: str, outputs: tuple[str, ...], views: int, seed: int) -> None:
    global _worker
    _worker = (RUNNERS[frontend](outputs, threads=1), FaceCache.open(cache_root), views, seed)


def _features(start: int) -> dict[str, np.ndarray]:
    """The front-end's outputs for the views of faces start .. start + CHUNK - 1: {output: (faces, views, ...)}."""
    assert _worker is not None  # set by each worker's initializer
    net, cache, views, seed = _worker
    stop = min(start + CHUNK, len(cache.rows))
    crops = np.concatenate(
        [views_of(np.asarray(cache.faces[i]), views, seed * 1_000_003 + i) for i in range(start, stop)]
    )
    return {o: v.reshape(stop - start, views, *v.shape[1:]) for o, v in net(crops).items()}


def build_features(
    cache: FaceCache,
    views: int = 2,
    outputs: tuple[str, ...] | None = None,
    workers: int | None = None,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
    frontend: str = "facenet",
) -> FrontendFeatures:
    """Compute (or reuse) the `frontend`'s `outputs` (default: `DEFAULT_OUTPUTS`) for `views` views of every face
    of `cache`."""
    spec: FrontEndSpec = frontend_spec(frontend)
    if cache.crop != spec.crop:
        crop = next((name for name, c in CROPS.items() if c == spec.crop), "?")
        raise DataError(
            f"{cache.root}: faces are cut as {cache.crop}, {spec.name} needs {spec.crop}; prepare with --crop {crop}"
        )
    if views < 1:
        raise DataError(f"views must be >= 1, got {views}")
    outputs = tuple(outputs or DEFAULT_OUTPUTS[frontend])
    root = FrontendFeatures.location(cache, frontend)
    settings = {
        "version": FEATURES_VERSION,
        "views": views,
        "outputs": list(outputs),
        "seed": seed,
        "faces": len(cache.rows),
    }
    meta_path = root / "meta.json"
    if meta_path.is_file() and not force:
        meta = read_meta(meta_path)
        if {k: meta.get(k) for k in settings} == settings:
            return FrontendFeatures.open(cache, frontend)
    # fails here, clearly, if the package or its weights are wrong
    runtime = type(RUNNERS[frontend](outputs, threads=1)).__name__
    root.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)
    n = len(cache.rows)
    arrays = {
        o: np.lib.format.open_memmap(
            root / f"{o}.npy",
            mode="w+",
            dtype=np.float32 if o == "embedding" else np.float16,
            shape=(n, views, *spec.outputs[o]),
        )
        for o in outputs
    }
    workers = workers or os.cpu_count() or 1
    start = time.perf_counter()
    with worker_pool(workers, _init, (frontend, str(cache.root), outputs, views, seed)) as pool:
        starts = range(0, n, CHUNK)
        bar = progress_bar(enabled=progress, total=n, desc="features", unit="face")
        for first, feats in zip(starts, pool.map(_features, starts)):
            for o in outputs:
                arrays[o][first : first + len(feats[o])] = feats[o]
            bar.update(len(feats[outputs[0]]))
        bar.close()
    for array in arrays.values():
        array.flush()
    del arrays
    seconds = round(time.perf_counter() - start, 1)
    meta = {**settings, "frontend": frontend, "runner": runtime, "seconds": seconds, "workers": workers}
    with atomic_output(meta_path, "feature cache") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return FrontendFeatures.open(cache, frontend)


def join_features(cache: FaceCache, partner: FaceCache) -> FrontendFeatures:
    """One feature cache over `cache` that reads its front-end's features and those of `partner` (the same images
    in the same order, cut for another CNN): what a head fusing both CNNs' maps trains on. Nothing is copied: it
    points at both feature caches, which `build_features` made."""
    found = [frontend_for_crop(c.crop) for c in (cache, partner)]
    if None in found:
        bad = (cache, partner)[found.index(None)]
        raise DataError(f"{bad.root}: its faces are cut as {bad.crop}, which no front-end reads")
    parts = cast("list[FrontEndSpec]", found)  # neither is None (above)
    spec = frontend_spec(JOINT.join(p.name for p in parts))
    if [r.path for r in cache.rows] != [r.path for r in partner.rows]:
        raise DataError(f"{cache.root} and {partner.root} do not hold the same images in the same order")
    sources = [FrontendFeatures.open(c, p.name) for c, p in zip((cache, partner), parts)]
    root = FrontendFeatures.location(cache, spec.name)
    root.mkdir(parents=True, exist_ok=True)
    meta = {
        "version": FEATURES_VERSION,
        "views": min(f.views for f in sources),
        "outputs": [f"{p.name}.{o}" for p, f in zip(parts, sources) for o in f.meta["outputs"]],
        "faces": len(cache.rows),
        "frontend": spec.name,
        "joint": {p.name: os.path.relpath(f.root, root) for p, f in zip(parts, sources)},
    }
    with atomic_output(root / "meta.json", "feature cache") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return FrontendFeatures.open(cache, spec.name)
