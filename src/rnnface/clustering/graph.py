"""Each face's k most similar faces, by FAISS: the graph clustering runs on.

Exact inner product up to EXACT_LIMIT faces (quadratic, but SIMD); an HNSW graph above, so 100,000 faces
take a minute on two cores instead of the full 10^10 comparisons.
"""

from __future__ import annotations

import faiss
import numpy as np

EXACT_LIMIT = 30_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80


def new_index(dim: int, count: int, k: int) -> faiss.Index:
    """An empty inner-product index for about `count` faces searched for `k` neighbours: exact up to EXACT_LIMIT,
    an HNSW graph above."""
    if count <= EXACT_LIMIT:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = max(64, 2 * k)
    return index


def knn(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Q, k) similarities and indices into `base` of each unit query row's k nearest rows (-1 where fewer)."""
    base = np.ascontiguousarray(base, np.float32)
    queries = np.ascontiguousarray(queries, np.float32)
    k = min(k, len(base))
    if k == 0 or not len(queries):
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    index = new_index(base.shape[1], len(base), k)
    index.add(base)
    return index.search(queries, k)
