"""Cosine similarity between embeddings."""

from __future__ import annotations

import numpy as np


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Cosine similarity of two vectors (a float), or of every row of `a` with every row of `b` (a matrix)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a_n = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b_n = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    if a.ndim == 1 and b.ndim == 1:
        return float(a_n @ b_n)
    return np.atleast_2d(a_n) @ np.atleast_2d(b_n).T
