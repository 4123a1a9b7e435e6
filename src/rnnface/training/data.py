"""Training sets drawn from a face cache (crops or front-end features), with LFW folds' people held out on request."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rnnface.data.features import FrontendFeatures
from rnnface.data.prepare import FaceCache
from rnnface.errors import DataError
from rnnface.models.preprocess import to_model_input


class CropInputs:
    """Cached face crops of the training rows, in memory -> backbone input, resized and augmented on the fly."""

    def __init__(self, cache: FaceCache, rows: np.ndarray, size: int, augment: nn.Module | None = None) -> None:
        self.crops = torch.from_numpy(np.ascontiguousarray(cache.faces[rows]))
        self.size, self.augment = size, augment

    def __call__(self, batch: np.ndarray, device: torch.device) -> torch.Tensor:
        return to_model_input(self.crops[batch].to(device), self.size, self.augment)


class FeatureInputs:
    """Cached front-end features of the training rows, in memory -> hybrid-head input.

    Augmenting picks one of the cached views of each face at random (the crop, its mirror, jitters);
    otherwise every face is seen as inference sees it (view 0).
    """

    def __init__(
        self, features: FrontendFeatures, rows: np.ndarray, names: tuple[str, ...], augment: bool, seed: int = 0
    ) -> None:
        self.arrays = {n: torch.from_numpy(np.ascontiguousarray(features.arrays[n][rows])) for n in names}
        self.views = features.views if augment else 1
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        batch = torch.as_tensor(batch)
        view = torch.from_numpy(self.rng.integers(0, self.views, len(batch)))
        return {n: a[batch, view].to(device).float() for n, a in self.arrays.items()}


@dataclass
class TrainSet:
    labels: np.ndarray  # (N,) class index
    people: list[str]  # class index -> person
    rows: np.ndarray  # (N,) row of each face in the cache
    teacher: torch.Tensor | None = None  # (N, Dt) teacher embeddings, when distilling
    teacher_valid: torch.Tensor | None = None  # (N,) bool: the teacher found a face

    def with_teacher(self, embeddings: np.ndarray, valid: np.ndarray) -> TrainSet:
        """This set plus the teacher's embeddings of its rows (given for every cache row)."""
        return TrainSet(
            self.labels,
            self.people,
            self.rows,
            torch.from_numpy(embeddings[self.rows]),
            torch.from_numpy(valid[self.rows]),
        )


def build_train_set(cache: FaceCache, exclude: set[str], min_images: int = 2) -> TrainSet:
    """Every readable cached face of people not in `exclude` who have at least `min_images` faces."""
    usable = [i for i, r in enumerate(cache.rows) if r.status != "unreadable" and r.person not in exclude]
    counts = Counter(cache.rows[i].person for i in usable)
    people = sorted(p for p, n in counts.items() if n >= min_images)
    if not people:
        raise DataError(f"{cache.root}: no person with >= {min_images} images left to train on")
    index = {p: c for c, p in enumerate(people)}
    chosen = [i for i in usable if cache.rows[i].person in index]
    labels = np.array([index[cache.rows[i].person] for i in chosen], dtype=np.int64)
    return TrainSet(labels, people, np.array(chosen))
