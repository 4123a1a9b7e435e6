"""The FAISS index beside a SQLite gallery: derived data, saved with a stamp saying what it reflects.

Exact inner product up to EXACT_LIMIT faces; above, an approximate index proposes CANDIDATES faces
per query and the gallery re-ranks them exactly from the embeddings it stores, so the index itself
need not hold full vectors. The default approximate kind, "pq", is product quantization with 4-bit
codes scanned by FAISS's SIMD fast-scan kernels (32 bytes a face at 512-d), trained on the gallery
itself. It was chosen by `rnnface bench gallery` on a population fitted to the shipped model's real
LFW embeddings (the figures are in reports/bench_gallery.json and the README): a new photo of a
person sits far enough from their stored ones that graph and cell searches at the same latency miss
it more often. "lsh", "hnsw" (graph over 8-bit codes) and "ivf" (inverted lists of full vectors)
stay available on request. The file holds a JSON stamp
(database generation, highest face id, checksum) and the serialized index, so a missing, stale or
corrupt file is detected on open and the index is rebuilt or caught up from SQLite.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from rnnface.io.paths import atomic_output

Kind = Literal["flat", "pq", "lsh", "hnsw", "ivf"]
KINDS: tuple[str, ...] = ("flat", "pq", "lsh", "hnsw", "ivf")
EXACT_LIMIT = 20_000
MIN_TRAINED = 1_000  # an index that learns from the gallery needs this many faces; below, search is exact
CANDIDATES = 128  # faces an approximate index proposes per query, re-ranked exactly by the gallery
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128
IVF_LISTS = 4096  # at most; fewer for small galleries (about 40 faces per list)
IVF_PROBES = 64
TRAIN_SAMPLE = 100_000  # faces an index that learns its quantizer is trained on
_MAGIC = b"RNNFACE-FAISS/1\n"


def default_shards() -> int:
    """Parts of an approximate index, searched at once: one per core, up to 4 (FAISS scans one query on one core)."""
    return max(1, min(4, os.cpu_count() or 1))


def choose_kind(count: int, requested: str = "auto") -> Kind:
    """Exact search while it is fast enough, product quantization + exact re-ranking beyond EXACT_LIMIT faces,
    unless a kind is requested (one that learns from the data only from MIN_TRAINED faces on)."""
    if requested != "auto":
        return "flat" if requested in ("pq", "hnsw", "ivf") and count < MIN_TRAINED else requested
    return "flat" if count <= EXACT_LIMIT or count < MIN_TRAINED else "pq"


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


def _empty(dim: int, kind: Kind, size: int, shards: int) -> faiss.Index:
    """One untrained, empty FAISS index of `kind` (flat: keyed by face ids; the others: by position)."""
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "pq":  # 4-bit codes of dim/8 sub-vectors (32 bytes a face at 512-d), scanned with SIMD
        return faiss.IndexPQFastScan(dim, max(1, dim // 8), 4, faiss.METRIC_INNER_PRODUCT)
    if kind == "lsh":
        lsh = faiss.IndexLSH(dim, dim, True, False)  # one bit per dimension, after a random rotation
        lsh.train(np.zeros((1, dim), np.float32))  # draws the rotation; the thresholds stay at zero
        return lsh
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        return hnsw
    lists = int(min(IVF_LISTS, max(1, size // (40 * shards))))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
    ivf.nprobe = min(IVF_PROBES, lists)
    return ivf


class FaceIndex:
    """Inner-product search over unit embeddings, answering the gallery's face ids.

    An approximate index is split into `shards` parts searched in parallel threads (FAISS scans one
    query on one core): face number p (in the order added) lives in part p % shards at row p // shards,
    and the index holds every face's id and half-precision embedding by p for exact re-ranking."""

    def __init__(self, dim: int, kind: Kind, size: int = 0, shards: int | None = None) -> None:
        """An empty index of `kind` for about `size` faces (IVF sizes its lists by it)."""
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
        self.dim = dim
        self.kind = kind
        self.shards = 1 if kind == "flat" else shards or default_shards()
        self.parts = [_empty(dim, kind, size, self.shards) for _ in range(self.shards)]
        self._reset_held(size)

    def _reset_held(self, capacity: int) -> None:
        self._held_ids = np.zeros(capacity if self.approximate else 0, np.int64)
        self._held = np.zeros((len(self._held_ids), self.dim), np.float16)
        self._count = 0

    @property
    def approximate(self) -> bool:
        """Whether results are candidates to re-rank exactly (anything but flat)."""
        return self.kind != "flat"

    @property
    def needs_training(self) -> bool:
        return not self.parts[0].is_trained

    def train(self, sample: np.ndarray) -> None:
        """Learn the quantizer (PQ codebooks, HNSW's 8-bit ranges, IVF's lists) from a sample of the gallery."""
        self.parts[0].train(np.ascontiguousarray(sample, dtype=np.float32))
        self.parts[1:] = [faiss.clone_index(self.parts[0]) for _ in self.parts[1:]]  # all empty: same training

    def __len__(self) -> int:
        return sum(int(part.ntotal) for part in self.parts)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add faces (ids ascending, above every id already in); an approximate index also keeps them in
        half precision for re-ranking (not saved: they are the gallery's, read back from it on load)."""
        if not len(ids):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not self.approximate:
            self.parts[0].add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
            return
        first = len(self)
        for s, part in enumerate(self.parts):
            part.add(np.ascontiguousarray(vectors[(s - first) % self.shards :: self.shards]))
        self.keep(ids, vectors)

    def keep(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Hold faces' ids and embeddings, in the order they were added (approximate kinds only). The arrays
        are allocated for the expected size up front: growing them would copy a million faces at once."""
        if not self.approximate or not len(ids):
            return
        end = self._count + len(ids)
        if end > len(self._held_ids):
            capacity = end + end // 8
            self._held_ids = np.resize(self._held_ids, capacity)
            grown = np.zeros((capacity, self.dim), np.float16)
            grown[: self._count] = self._held[: self._count]
            self._held = grown
        self._held_ids[self._count : end] = ids
        self._held[self._count : end] = vectors
        self._count = end

    @property
    def complete(self) -> bool:
        """Whether every indexed face's id and embedding is held (always, for flat)."""
        return not self.approximate or self._count == len(self)

    def _candidates(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(Q, <= k * shards) positions of candidate faces (-1 pads), every part searched in its own thread."""

        def one(s: int) -> np.ndarray:
            part = self.parts[s]
            if not part.ntotal:
                return np.full((len(queries), 1), -1, np.int64)
            _, rows = part.search(queries, min(k, int(part.ntotal)))
            return np.where(rows >= 0, rows * self.shards + s, -1)

        return np.hstack(list(_pool(self.shards).map(one, range(self.shards))))

    def search(self, queries: np.ndarray, k: int, candidates: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(cosine similarities, face ids) of the k best faces per query, best first; id -1 pads. An approximate
        index proposes max(k, `candidates`) faces and re-ranks them by exact similarity from the held embeddings."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if not self.approximate:
            return self.parts[0].search(queries, max(1, min(k, len(self))))
        held_ids, held = self._held_ids[: self._count], self._held
        positions = self._candidates(queries, -(-max(k, candidates) // self.shards))
        out_sims = np.full((len(queries), k), -np.inf, np.float32)
        out_ids = np.full((len(queries), k), -1, np.int64)
        for q, row in enumerate(positions):
            row = row[(row >= 0) & (row < len(held_ids))]
            if not len(row):
                continue
            vecs = held[row].astype(np.float32)
            sims = (vecs @ queries[q]) / np.linalg.norm(vecs, axis=1)  # half precision is not quite unit length
            order = np.argsort(-sims)[:k]
            out_sims[q, : len(order)], out_ids[q, : len(order)] = sims[order], held_ids[row[order]]
        return out_sims, out_ids

    def set_breadth(self, breadth: int) -> None:
        """How widely an approximate search looks (HNSW efSearch, IVF nprobe): the recall/latency trade-off."""
        for part in self.parts:
            if self.kind == "hnsw":
                part.hnsw.efSearch = breadth
            elif self.kind == "ivf":
                part.nprobe = breadth

    def save(self, path: Path, stamp: Stamp) -> None:
        """Write index + stamp atomically (a reader sees the old file or the new one, never half)."""
        blobs = [faiss.serialize_index(part).tobytes() for part in self.parts]
        data = b"".join(blobs)
        header = json.dumps(
            {
                **asdict(stamp),
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "parts": [len(b) for b in blobs],
            }
        ).encode()
        with atomic_output(path, "gallery index file") as tmp, open(tmp, "wb") as fh:
            fh.write(_MAGIC + len(header).to_bytes(8, "little") + header + data)
            fh.flush()
            os.fsync(fh.fileno())

    @classmethod
    def load(cls, path: Path) -> tuple[FaceIndex, Stamp]:
        """Read an index file; raise IndexCorrupt if anything about it is wrong. An approximate index comes back
        without the embeddings it re-ranks with (`complete` is False): the gallery gives them (`keep`)."""
        try:
            raw = path.read_bytes()
            if not raw.startswith(_MAGIC):
                raise IndexCorrupt("bad magic")
            n = int.from_bytes(raw[len(_MAGIC) : len(_MAGIC) + 8], "little")
            start = len(_MAGIC) + 8
            header = json.loads(raw[start : start + n])
            data = memoryview(raw)[start + n :]
            if len(data) != header.pop("bytes") or hashlib.sha256(data).hexdigest() != header.pop("sha256"):
                raise IndexCorrupt("checksum mismatch")
            sizes = header.pop("parts", None)
            stamp = Stamp(**header)
            if not sizes or sum(sizes) != len(data) or (stamp.kind == "flat" and len(sizes) != 1):
                raise IndexCorrupt("an index file of another layout")
            index = cls.__new__(cls)
            index.dim, index.kind, index.shards, index.parts = stamp.dim, stamp.kind, len(sizes), []
            index._reset_held(stamp.count)
            offset = 0
            for size in sizes:
                index.parts.append(faiss.deserialize_index(np.frombuffer(data[offset : offset + size], dtype=np.uint8)))
                offset += size
        except IndexCorrupt:
            raise
        except Exception as exc:  # json, faiss and OS errors all mean "cannot trust it"
            raise IndexCorrupt(f"{type(exc).__name__}: {exc}") from None
        if len(index) != stamp.count or any(part.d != stamp.dim for part in index.parts):
            raise IndexCorrupt("size does not match its stamp")
        return index, stamp


@functools.cache
def _pool(threads: int) -> ThreadPoolExecutor:
    """Threads that search an index's parts at once (FAISS releases the GIL while it scans)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="rnnface-index")
