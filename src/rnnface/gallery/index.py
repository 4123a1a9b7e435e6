"""The FAISS index beside a SQLite gallery: derived data, saved with a stamp saying what it reflects.

Exact inner product up to EXACT_LIMIT faces; above, an approximate index proposes CANDIDATES faces
per query and the gallery re-ranks them exactly from the embeddings it stores, so the index itself
need not hold full vectors. The default approximate kind, "lsh", keeps one sign bit per dimension of
the randomly rotated embedding (random-hyperplane LSH: 64 bytes a face at 512-d) and scans them by
Hamming distance. It was chosen by `rnnface bench gallery` on a population fitted to the shipped
model's real LFW embeddings, where it met recall@1 >= 0.99 against exact search at 1M faces while
HNSW and IVF, whose recall depends on queries landing near their neighbours' cells or graph
regions, did not at the same latency (see the README table). "hnsw" (graph over 8-bit codes) and
"ivf" (inverted lists of full vectors) stay available on request. The file holds a JSON stamp
(database generation, highest face id, checksum) and the serialized index, so a missing, stale or
corrupt file is detected on open and the index is rebuilt or caught up from SQLite.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

IndexKind = Literal["auto", "flat", "lsh", "hnsw", "ivf"]
Kind = Literal["flat", "lsh", "hnsw", "ivf"]
KINDS: tuple[str, ...] = ("flat", "lsh", "hnsw", "ivf")
EXACT_LIMIT = 20_000
CANDIDATES = 128  # faces an approximate index proposes per query, re-ranked exactly by the gallery
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128
IVF_LISTS = 4096  # at most; fewer for small galleries (about 40 faces per list)
IVF_PROBES = 64
TRAIN_SAMPLE = 100_000  # faces an index that learns its quantizer is trained on
_MAGIC = b"RNNFACE-FAISS/1\n"


def choose_kind(count: int, requested: IndexKind = "auto") -> Kind:
    """Exact search while it is fast enough, LSH + exact re-ranking beyond EXACT_LIMIT faces, unless one is requested."""
    if requested != "auto":
        return requested
    return "flat" if count <= EXACT_LIMIT else "lsh"


@dataclass(frozen=True)
class Stamp:
    """What an index reflects: which gallery, its model, generation and removal count, and its highest face id."""

    gallery: str
    model: str
    dim: int
    kind: str
    generation: int
    removals: int
    max_id: int
    count: int

    @property
    def key(self) -> tuple:
        return (self.gallery, self.model, self.dim, self.generation, self.removals)


class IndexCorrupt(Exception):
    """The index file cannot be trusted (truncated, checksum mismatch, unreadable)."""


class FaceIndex:
    """Inner-product search over unit embeddings, keyed by the gallery's face ids."""

    def __init__(self, dim: int, kind: Kind, size: int = 0) -> None:
        """An empty index of `kind` for about `size` faces (IVF sizes its lists by it)."""
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
        self.dim = dim
        self.kind = kind
        if kind == "flat":
            base = faiss.IndexFlatIP(dim)
        elif kind == "lsh":
            base = faiss.IndexLSH(dim, dim, True, False)  # one bit per dimension, after a random rotation
            base.train(np.zeros((1, dim), np.float32))  # draws the rotation; the thresholds stay at zero
        elif kind == "hnsw":
            base = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            base.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            lists = int(min(IVF_LISTS, max(1, size // 40)))
            base = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
            base.nprobe = min(IVF_PROBES, lists)
        self.index = faiss.IndexIDMap2(base)

    @property
    def approximate(self) -> bool:
        """Whether results are candidates to re-rank exactly (anything but flat)."""
        return self.kind != "flat"

    @property
    def needs_training(self) -> bool:
        return not self.index.is_trained

    def train(self, sample: np.ndarray) -> None:
        """Learn the quantizer (HNSW's 8-bit ranges, IVF's lists) from a sample of the gallery."""
        self.index.train(np.ascontiguousarray(sample, dtype=np.float32))

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dim: int, kind: Kind) -> FaceIndex:
        index = cls(dim, kind, len(ids))
        if index.needs_training:
            index.train(vectors[:: max(1, len(vectors) // TRAIN_SAMPLE)])
        index.add(ids, vectors)
        return index

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, face ids) of the k best faces per query; id -1 pads when fewer exist. Scores are
        cosine similarities for flat; for approximate kinds they only order candidates (re-rank them)."""
        k = max(1, min(k, len(self)))
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def set_breadth(self, breadth: int) -> None:
        """How widely an approximate search looks (HNSW efSearch, IVF nprobe): the recall/latency trade-off."""
        base = faiss.downcast_index(self.index.index)
        if self.kind == "hnsw":
            base.hnsw.efSearch = breadth
        elif self.kind == "ivf":
            base.nprobe = breadth

    def save(self, path: Path, stamp: Stamp) -> None:
        """Write index + stamp atomically (a reader sees the old file or the new one, never half)."""
        data = faiss.serialize_index(self.index).tobytes()
        header = json.dumps({**asdict(stamp), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}).encode()
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(_MAGIC + len(header).to_bytes(8, "little") + header + data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> tuple[FaceIndex, Stamp]:
        """Read an index file; raise IndexCorrupt if anything about it is wrong."""
        try:
            raw = path.read_bytes()
            if not raw.startswith(_MAGIC):
                raise IndexCorrupt("bad magic")
            n = int.from_bytes(raw[len(_MAGIC) : len(_MAGIC) + 8], "little")
            start = len(_MAGIC) + 8
            header = json.loads(raw[start : start + n])
            data = raw[start + n :]
            if len(data) != header.pop("bytes") or hashlib.sha256(data).hexdigest() != header.pop("sha256"):
                raise IndexCorrupt("checksum mismatch")
            stamp = Stamp(**header)
            index = cls.__new__(cls)
            index.dim, index.kind = stamp.dim, stamp.kind
            index.index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except IndexCorrupt:
            raise
        except Exception as exc:  # json, faiss and OS errors all mean "cannot trust it"
            raise IndexCorrupt(f"{type(exc).__name__}: {exc}") from None
        if len(index) != stamp.count or index.index.d != stamp.dim:
            raise IndexCorrupt("size does not match its stamp")
        return index, stamp
