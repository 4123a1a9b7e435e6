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
from typing import Literal, cast

import faiss
import numpy as np

from rnnface.io.paths import atomic_output, remove_stale_temporaries

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
_MAGIC = b"RNNFACE-FAISS/2\n"  # 2: face ids by position, removed faces marked


def default_shards() -> int:
    """Parts of an approximate index, searched at once: one per core, up to 4 (FAISS scans one query on one core)."""
    return max(1, min(4, os.cpu_count() or 1))


def choose_kind(count: int, requested: str = "auto") -> Kind:
    """Exact search while it is fast enough, product quantization + exact re-ranking beyond EXACT_LIMIT faces,
    unless a kind is requested (one that learns from the data only from MIN_TRAINED faces on)."""
    if requested != "auto":
        return "flat" if requested in ("pq", "hnsw", "ivf") and count < MIN_TRAINED else cast(Kind, requested)
    return "flat" if count <= EXACT_LIMIT or count < MIN_TRAINED else "pq"


@dataclass(frozen=True)
class Stamp:
    """What an index reflects: which gallery, its model, its generation (with the random token the database
    wrote with it, so a restored backup at the same generation is told apart), removals and re-embeddings
    counted, and its highest face id."""

    gallery: str
    model: str
    dim: int
    kind: str
    generation: int
    removals: int
    max_id: int
    count: int
    token: str = ""
    rebuilds: int = 0


class IndexCorrupt(Exception):
    """The index file cannot be trusted (truncated, checksum mismatch, unreadable)."""


def pq_subquantizers(dim: int) -> int:
    """Sub-vectors of a PQ code: dim/8 when that divides the dimension, else the largest divisor below it
    (FAISS needs the sub-vectors to split the dimension exactly: 100-d takes 10, 300-d 30)."""
    return next(m for m in range(max(1, dim // 8), 0, -1) if dim % m == 0)


def _empty(dim: int, kind: Kind, size: int, shards: int) -> faiss.Index:
    """One untrained, empty FAISS index of `kind` (flat: keyed by face ids; the others: by position)."""
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "pq":  # 4-bit codes of dim/8 sub-vectors (32 bytes a face at 512-d), scanned with SIMD
        return faiss.IndexPQFastScan(dim, pq_subquantizers(dim), 4, faiss.METRIC_INNER_PRODUCT)
    if kind == "lsh":
        lsh = faiss.IndexLSH(dim, dim, True, False)  # one bit per dimension, after a random rotation
        lsh.train(np.zeros((1, dim), np.float32))  # draws the rotation; the thresholds stay at zero
        return lsh
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)  # type: ignore[arg-type]  # faiss's stubs miss this SWIG overload
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        return hnsw
    lists = int(min(IVF_LISTS, max(1, size // (40 * shards))))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
    ivf.nprobe = min(IVF_PROBES, lists)
    return ivf


class FaceIndex:
    """Inner-product search over unit embeddings, answering the gallery's face ids.

    Faces are added in ascending id order; position p holds id `ids[p]`. An approximate index is split into
    `shards` parts searched in parallel threads (FAISS scans one query on one core): position p lives in part
    p % shards at row p // shards, and the index holds each face's half-precision embedding by position for
    exact re-ranking. A removed face is marked dead (flat indexes drop it), so a removal costs no rebuild."""

    def __init__(self, dim: int, kind: Kind, size: int = 0, shards: int | None = None) -> None:
        """An empty index of `kind` for about `size` faces (IVF sizes its lists by it)."""
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
        self.dim = dim
        self.kind = kind
        self.shards = 1 if kind == "flat" else shards or default_shards()
        self.parts = [_empty(dim, kind, size, self.shards) for _ in range(self.shards)]
        self._allocate(size)

    def _allocate(self, capacity: int) -> None:
        self._ids = np.zeros(capacity, np.int64)
        self._alive = np.zeros(capacity, bool)
        self._filled = np.zeros(capacity if self.approximate else 0, bool)
        self._held = np.zeros((len(self._filled), self.dim), np.float16)
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
        """Faces the index answers with (removed ones not counted)."""
        return int(self._alive[: self._count].sum())

    @property
    def dead_share(self) -> float:
        """Share of positions held by removed faces (past a point a rebuild is cheaper than skipping them)."""
        return 1.0 - len(self) / self._count if self._count else 0.0

    def ids(self) -> np.ndarray:
        """The ids of the faces the index answers with, ascending."""
        return self._ids[: self._count][self._alive[: self._count]]

    def _grow(self, end: int) -> None:
        """Room for `end` positions (allocated for the expected size up front: growing copies everything)."""
        if end <= len(self._ids):
            return
        capacity = end + end // 8
        self._ids = np.resize(self._ids, capacity)
        self._alive = np.concatenate([self._alive[: self._count], np.zeros(capacity - self._count, bool)])
        if self.approximate:
            self._filled = np.concatenate([self._filled[: self._count], np.zeros(capacity - self._count, bool)])
            grown = np.zeros((capacity, self.dim), np.float16)
            grown[: self._count] = self._held[: self._count]
            self._held = grown

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add faces (ids ascending, above every id already in); an approximate index also holds them in half
        precision for re-ranking (not saved: they are the gallery's, read back from it on load)."""
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        first, end = self._count, self._count + len(ids)
        if self.approximate:
            for s, part in enumerate(self.parts):
                part.add(np.ascontiguousarray(vectors[(s - first) % self.shards :: self.shards]))
        else:
            self.parts[0].add_with_ids(vectors, ids)
        self._grow(end)
        self._ids[first:end], self._alive[first:end] = ids, True
        if self.approximate:
            self._held[first:end], self._filled[first:end] = vectors, True
        self._count = end

    def remove(self, ids: np.ndarray) -> None:
        """Stop answering with these faces (removed from the gallery)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        positions = np.searchsorted(self._ids[: self._count], ids)
        positions = positions[positions < self._count]
        positions = positions[np.isin(self._ids[positions], ids)]
        self._alive[positions] = False
        if not self.approximate:
            self.parts[0].remove_ids(ids)  # type: ignore[arg-type]  # faiss's Python wrapper takes an id array

    def fill(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Hold the embeddings of these faces (ids ascending), read back from the gallery after a load."""
        if not self.approximate or not len(ids):
            return
        positions = np.searchsorted(self._ids[: self._count], ids)
        ok = positions < self._count
        ok[ok] = self._ids[positions[ok]] == ids[ok]
        self._held[positions[ok]] = vectors[ok]
        self._filled[positions[ok]] = True

    def settle(self) -> None:
        """After every stored face has been given to `fill`: a face the gallery no longer has is removed."""
        if self.approximate:
            gone = self._ids[: self._count][self._alive[: self._count] & ~self._filled[: self._count]]
            self.remove(gone)

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
        index proposes max(k, `candidates`) faces (more when some are removed ones) and re-ranks them by exact
        similarity from the held embeddings."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if not self.approximate:
            return self.parts[0].search(queries, max(1, min(k, len(self))))
        wanted = int(max(k, candidates) / max(1.0 - self.dead_share, 0.05))
        positions = self._candidates(queries, -(-wanted // self.shards))
        out_sims = np.full((len(queries), k), -np.inf, np.float32)
        out_ids = np.full((len(queries), k), -1, np.int64)
        for q, row in enumerate(positions):
            row = row[(row >= 0) & (row < self._count)]
            row = row[self._alive[row]]
            if not len(row):
                continue
            vecs = self._held[row].astype(np.float32)
            sims = (vecs @ queries[q]) / np.linalg.norm(vecs, axis=1)  # half precision is not quite unit length
            order = np.argsort(-sims)[:k]
            out_sims[q, : len(order)], out_ids[q, : len(order)] = sims[order], self._ids[row[order]]
        return out_sims, out_ids

    def set_breadth(self, breadth: int) -> None:
        """How widely an approximate search looks (HNSW efSearch, IVF nprobe): the recall/latency trade-off."""
        for part in self.parts:
            if self.kind == "hnsw":
                cast(faiss.IndexHNSW, part).hnsw.efSearch = breadth
            elif self.kind == "ivf":
                cast(faiss.IndexIVF, part).nprobe = breadth

    def save(self, path: Path, stamp: Stamp) -> None:
        """Write index + stamp atomically (a reader sees the old file or the new one, never half)."""
        positions = np.stack([self._ids[: self._count], self._alive[: self._count].astype(np.int64)]).tobytes()
        blobs = [faiss.serialize_index(part).tobytes() for part in self.parts]
        data = positions + b"".join(blobs)
        header = json.dumps(
            {
                **asdict(stamp),
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "positions": self._count,
                "parts": [len(b) for b in blobs],
            }
        ).encode()
        remove_stale_temporaries(path)
        with atomic_output(path, "gallery index file") as tmp, open(tmp, "wb") as fh:
            fh.write(_MAGIC + len(header).to_bytes(8, "little") + header + data)
            fh.flush()
            os.fsync(fh.fileno())

    @classmethod
    def load(cls, path: Path) -> tuple[FaceIndex, Stamp]:
        """Read an index file; raise IndexCorrupt if anything about it is wrong. An approximate index comes back
        without the embeddings it re-ranks with: the gallery gives them (`fill`, then `settle`)."""
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
            sizes, count = header.pop("parts", None), header.pop("positions", None)
            stamp = Stamp(**header)
            if not sizes or count is None or sum(sizes) + 16 * count != len(data):
                raise IndexCorrupt("an index file of another layout")
            if stamp.kind == "flat" and len(sizes) != 1:
                raise IndexCorrupt("an index file of another layout")
            index = cls.__new__(cls)
            index.dim, index.kind, index.shards, index.parts = stamp.dim, cast(Kind, stamp.kind), len(sizes), []
            index._allocate(count)
            positions = np.frombuffer(data[: 16 * count], dtype=np.int64).reshape(2, count)
            index._ids[:count], index._alive[:count], index._count = positions[0], positions[1].astype(bool), count
            offset = 16 * count
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
