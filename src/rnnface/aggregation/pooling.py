"""Choosing how several faces of one person become one embedding: mean pooling or a recurrent aggregator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from rnnface.aggregation.model import load_aggregator, mean_pool
from rnnface.errors import ModelError

Pool = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: The aggregator shipped in the package, trained on the shipped backbone's embeddings.
PACKAGED_AGGREGATOR = "aggregator.pt"


def mean_pool_cues(embeddings: np.ndarray, cues: np.ndarray) -> np.ndarray:
    """Mean pooling with the aggregator's signature (the cues are ignored)."""
    return mean_pool(embeddings)


@dataclass(frozen=True)
class NamedPool:
    """A pooling (`Pool`) with the name reports give it."""

    name: str
    pool: Pool

    def __call__(self, embeddings: np.ndarray, cues: np.ndarray) -> np.ndarray:
        return self.pool(embeddings, cues)


MEAN = NamedPool("mean", mean_pool_cues)


def resolve_pooling(choice: str, model_id: str) -> NamedPool:
    """The pooling for 'mean', 'auto' (the shipped aggregator if it fits `model_id`, else mean) or a checkpoint
    path."""
    if choice == "mean":
        return MEAN
    if choice == "auto":
        path = Path(str(resources.files("rnnface.weights").joinpath(PACKAGED_AGGREGATOR)))
        try:
            model, _ = load_aggregator(path, model_id)
        except ModelError:
            return NamedPool("mean (no shipped aggregator for this model)", mean_pool_cues)
    else:
        path = Path(choice)
        model, _ = load_aggregator(path, model_id)
    return NamedPool(f"recurrent aggregator ({path.name})", model.aggregate)
