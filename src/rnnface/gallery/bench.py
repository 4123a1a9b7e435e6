"""`rnnface bench gallery`: enrollment rate, query latency, throughput, recall and memory of the gallery backends.

Synthetic data: N random unit vectors of the model's dimension, two faces per person. Queries are
noisy copies of stored faces (cosine `query_similarity` to their source, like a new photo of an
enrolled person); recall@1 compares the backend's best face with exact brute-force search.
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnface.gallery.base import FaceRecord, normalize, open_gallery

MODEL_ID = "bench-synthetic"
FACES_PER_PERSON = 2


def synthetic_faces(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return normalize(np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32))


def noisy_queries(faces: np.ndarray, count: int, similarity: float, seed: int = 1) -> np.ndarray:
    """Unit vectors at cosine ~`similarity` to randomly chosen stored faces."""
    rng = np.random.default_rng(seed)
    src = faces[rng.choice(len(faces), size=count, replace=False)]
    noise = normalize(rng.standard_normal(src.shape, dtype=np.float32))
    noise -= (noise * src).sum(1, keepdims=True) * src  # orthogonal to the source
    noise = normalize(noise)
    return normalize(similarity * src + np.sqrt(1 - similarity**2) * noise)


def exact_top1(faces: np.ndarray, queries: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Row index of the most similar stored face for each query, by brute force."""
    best_sim = np.full(len(queries), -np.inf, dtype=np.float32)
    best = np.zeros(len(queries), dtype=np.int64)
    for start in range(0, len(faces), chunk):
        sims = queries @ faces[start : start + chunk].T
        arg = sims.argmax(1)
        val = sims[np.arange(len(queries)), arg]
        better = val > best_sim
        best_sim[better], best[better] = val[better], arg[better] + start
    return best


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def bench_backend(
    location: str, workdir: Path, n: int, dim: int, queries: int = 1000, similarity: float = 0.5, batch: int = 10_000
) -> dict:
    """One backend at one size: enroll N faces in batches, then time single and batched top-1 queries."""
    faces = synthetic_faces(n, dim)
    q = noisy_queries(faces, queries, similarity)
    truth = exact_top1(faces, q)
    row: dict = {"backend": location.split(":")[0] if location.startswith("milvus") else "sqlite+faiss", "faces": n, "dim": dim}
    with open_gallery(location) as gallery:
        start = time.perf_counter()
        ids: list[int] = []
        for s in range(0, n, batch):
            people = [
                (f"p{(s + i) // FACES_PER_PERSON:08d}", [FaceRecord(faces[s + i + j]) for j in range(min(FACES_PER_PERSON, n - s - i))])
                for i in range(0, min(batch, n - s), FACES_PER_PERSON)
            ]
            ids += [i for group in gallery.enroll_many(people, MODEL_ID) for i in group]
        row["enroll_faces_per_s"] = n / (time.perf_counter() - start)
        start = time.perf_counter()
        gallery.search(q[:1], top_k=1)  # builds or loads the index
        row["index_ready_s"] = time.perf_counter() - start
        row["index"] = getattr(getattr(gallery, "_index", None), "kind", getattr(gallery, "index_type", ""))
        found, latencies = [], []
        for v in q:
            t = time.perf_counter()
            match = gallery.search(v[None], top_k=1)[0][0]
            latencies.append((time.perf_counter() - t) * 1000)
            found.append(match.face_id)
        row["query_p50_ms"] = statistics.median(latencies)
        row["query_p99_ms"] = float(np.percentile(latencies, 99))
        start = time.perf_counter()
        gallery.search(q, top_k=1)
        row["batch_queries_per_s"] = len(q) / (time.perf_counter() - start)
        id_of_row = np.asarray(ids)
        row["recall_at_1"] = float(np.mean(np.asarray(found) == id_of_row[truth]))
    row["disk_mb"] = _dir_mb(workdir)
    row["peak_rss_mb"] = _peak_rss_mb()
    return row


def bench_gallery(
    sizes: list[int],
    dim: int,
    milvus_sizes: list[int],
    queries: int = 1000,
    similarity: float = 0.5,
    on_row: Callable[[dict], None] | None = None,
    milvus_queries: int | None = None,
) -> list[dict]:
    """Rows for SQLite+FAISS at every size and Milvus Lite at `milvus_sizes`, each in a fresh temporary gallery."""
    rows = []
    for backend, ns in (("sqlite", sizes), ("milvus", milvus_sizes)):
        for n in ns:
            with tempfile.TemporaryDirectory(prefix="rnnface-bench-", dir=os.environ.get("RNNFACE_BENCH_TMP")) as tmp:
                workdir = Path(tmp)
                location = str(workdir / "g.db") if backend == "sqlite" else f"milvus:{workdir / 'g.db'}"
                count = milvus_queries if backend == "milvus" and milvus_queries else queries
                rows.append(bench_backend(location, workdir, n, dim, count, similarity))
                rows[-1]["queries"] = count
                if on_row is not None:
                    on_row(rows[-1])
    return rows


HEADER = f"{'backend':<14}{'faces':>9}{'index':>7}{'enroll/s':>10}{'ready s':>9}{'p50 ms':>8}{'p99 ms':>8}{'batch q/s':>11}{'recall@1':>10}{'disk MB':>9}{'RSS MB':>8}"


def format_row(r: dict) -> str:
    return (
        f"{r['backend']:<14}{r['faces']:>9,}{r['index']:>7}{r['enroll_faces_per_s']:>10,.0f}{r['index_ready_s']:>9.1f}"
        f"{r['query_p50_ms']:>8.2f}{r['query_p99_ms']:>8.2f}{r['batch_queries_per_s']:>11,.0f}{r['recall_at_1']:>10.3f}"
        f"{r['disk_mb']:>9.0f}{r['peak_rss_mb']:>8.0f}"
    )
