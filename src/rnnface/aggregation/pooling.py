"""Choosing how several faces of one person become one embedding: mean pooling or a recurrent aggregator."""

from __future__ import annotations

from collections.abc import Callable
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


def resolve_pooling(choice: str, model_id: str) -> tuple[Pool, str]:
    """(pool function, its description) for 'mean', 'auto' (the shipped aggregator if it fits `model_id`, else mean)
    or a checkpoint path."""
    if choice == "mean":
        return mean_pool_cues, "mean"
    if choice == "auto":
        path = Path(str(resources.files("rnnface.weights").joinpath(PACKAGED_AGGREGATOR)))
        try:
            model, _ = load_aggregator(path, model_id)
        except ModelError:
            return mean_pool_cues, "mean (no shipped aggregator for this model)"
    else:
        path = Path(choice)
        model, _ = load_aggregator(path, model_id)
    return model.aggregate, f"recurrent aggregator ({path.name})"
