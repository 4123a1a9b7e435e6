"""Cosine similarity of face embeddings: unit normalisation, comparison, and the range a threshold may take.

Every layer compares embeddings the same way, so this sits at the bottom: the gallery, the tracker,
the aggregator, the evaluation and the checkpoint's threshold check all use it.
"""

from __future__ import annotations

import math

import numpy as np

from rnnface.errors import ModelError


def normalize(x: np.ndarray) -> np.ndarray:
    """Unit rows as float32; rows already of unit length (to float32 precision) come back bit for bit."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(np.abs(norms - 1.0) <= 1e-6, x, x / np.maximum(norms, 1e-12)).astype(np.float32)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Cosine similarity of two vectors (a float), or of every row of `a` with every row of `b` (a matrix)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a_n = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b_n = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    if a.ndim == 1 and b.ndim == 1:
        return float(a_n @ b_n)
    return np.atleast_2d(a_n) @ np.atleast_2d(b_n).T


def check_threshold(value: object, what: str = "threshold") -> float:
    """A decision threshold as a float: a finite cosine similarity in [-1, 1], else ModelError."""
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not -1.0 <= value <= 1.0
    ):
        raise ModelError(f"{what} must be a finite cosine similarity in [-1, 1], got {value!r}")
    return float(value)
