"""A separate process for the gallery reliability tests: enrolls synthetic people or searches, printing as it goes.

python gallery_worker.py enroll GALLERY PREFIX COUNT [FLUSH_EVERY]   prints "committed NAME" after each commit
python gallery_worker.py search GALLERY COUNT                        prints "searches N" at the end
python gallery_worker.py split GALLERY ID,ID,...                     each face split off into a new unnamed group
"""

from __future__ import annotations

import sys
import zlib

import numpy as np

from rnnface.gallery import FaceRecord, open_gallery

DIM = 16
FACES = 3
MODEL = "test-model"


def embeddings_of(name: str) -> np.ndarray:
    """Deterministic faces of a person, so a test can recompute what was stored."""
    return np.random.default_rng(zlib.crc32(name.encode())).standard_normal((FACES, DIM)).astype(np.float32)


def enroll(location: str, prefix: str, count: int, flush_every: int = 0) -> None:
    with open_gallery(location) as gallery:
        for i in range(count):
            name = f"{prefix}{i:05d}"
            gallery.enroll(name, [FaceRecord(e, f"{name}/{j}.jpg") for j, e in enumerate(embeddings_of(name))], MODEL)
            print(f"committed {name}", flush=True)
            if flush_every and (i + 1) % flush_every == 0:
                gallery.search(embeddings_of(name)[:1], top_k=1)  # brings the index up to date
                gallery.flush()


def search(location: str, count: int) -> None:
    rng = np.random.default_rng(0)
    n = 0
    with open_gallery(location) as gallery:
        while n < count:
            try:
                gallery.search(rng.standard_normal((1, DIM)).astype(np.float32), top_k=3)
            except Exception as exc:  # an empty gallery at the very start is fine; anything else is not
                if "empty" not in str(exc):
                    raise
            n += 1
    print(f"searches {n}", flush=True)


def split(location: str, ids: list[int]) -> None:
    from rnnface.clustering.store import split_face

    with open_gallery(location) as gallery:
        for face_id in ids:
            split_face(gallery, face_id)
    print(f"split {len(ids)}", flush=True)


if __name__ == "__main__":
    mode, location, *rest = sys.argv[1:]
    if mode == "enroll":
        enroll(location, rest[0], int(rest[1]), int(rest[2]) if len(rest) > 2 else 0)
    elif mode == "split":
        split(location, [int(i) for i in rest[0].split(",")])
    else:
        search(location, int(rest[0]))
