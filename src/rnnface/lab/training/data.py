"""Training sets drawn from face caches (crops or front-end features), with the people of chosen folds held out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from rnnface.errors import DataError
from rnnface.lab.data.features import FrontendFeatures
from rnnface.lab.data.people import person_keys
from rnnface.lab.data.prepare import FaceCache
from rnnface.models.preprocess import to_model_input


class CropInputs:
    """Cached face crops of the training rows, in memory -> backbone input, resized and augmented on the fly."""

    def __init__(
        self, sources: list[tuple[FaceCache, np.ndarray]], size: int, augment: nn.Module | None = None
    ) -> None:
        self.crops = torch.from_numpy(np.concatenate([np.asarray(c.faces[rows]) for c, rows in sources]))
        self.size, self.augment = size, augment

    def __call__(self, batch: np.ndarray, device: torch.device) -> torch.Tensor:
        return to_model_input(self.crops[batch].to(device), self.size, self.augment)


class FeatureInputs:
    """Cached front-end features of the training rows, in memory -> hybrid-head input.

    Augmenting picks one of the cached views of each face at random (the crop, its mirror, jitters; caches may
    hold different numbers of views); otherwise every face is seen as inference sees it (view 0).
    """

    def __init__(
        self,
        sources: list[tuple[FrontendFeatures, np.ndarray]],
        names: tuple[str, ...],
        augment: bool,
        seed: int = 0,
    ) -> None:
        width = max(f.views for f, _ in sources) if augment else 1
        self.arrays = {n: torch.from_numpy(_stack([(f.arrays[n], rows) for f, rows in sources], width)) for n in names}
        self.views = torch.from_numpy(
            np.concatenate([np.full(len(rows), f.views if augment else 1) for f, rows in sources])
        )
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(batch)
        view = (torch.from_numpy(self.rng.random(len(rows))) * self.views[rows]).long()
        return {n: a[rows, view].to(device).float() for n, a in self.arrays.items()}


def _stack(parts: list[tuple[np.ndarray, np.ndarray]], views: int) -> np.ndarray:
    """The rows of each (N, V, ...) array, their first `views` views (padded with view 0), one array."""
    first = parts[0][0]
    out = np.empty((sum(len(r) for _, r in parts), views, *first.shape[2:]), first.dtype)
    at = 0
    for array, rows in parts:
        have = min(views, array.shape[1])
        out[at : at + len(rows), :have] = array[rows, :have]
        out[at : at + len(rows), have:] = array[rows, :1]
        at += len(rows)
    return out


@dataclass
class TrainSet:
    labels: np.ndarray  # (N,) class index
    people: list[str]  # class index -> person key (`rnnface.lab.data.people`)
    rows: np.ndarray  # (N,) row of each face in its cache
    source: np.ndarray  # (N,) which of the training caches it is in
    names: list[str] = field(default_factory=list)  # the people as their caches label them (LFW names, CFP ids)
    teacher: torch.Tensor | None = None  # (N, Dt) teacher embeddings, when distilling
    teacher_valid: torch.Tensor | None = None  # (N,) bool: the teacher found a face

    def of(self, source: int) -> np.ndarray:
        """The rows of cache `source`."""
        return self.rows[self.source == source]

    def with_teacher(self, embeddings: np.ndarray, valid: np.ndarray) -> TrainSet:
        """This set plus the teacher's (N, Dt) embeddings and (N,) validity of its faces, in its order."""
        return replace(self, teacher=torch.from_numpy(embeddings), teacher_valid=torch.from_numpy(valid))


def build_train_set(caches: list[FaceCache], exclude: set[str], min_images: int = 2) -> TrainSet:
    """Every readable cached face of people (keys, across all `caches`) not in `exclude` who have at least
    `min_images` faces in all of them together."""
    keys = [person_keys(c) for c in caches]
    usable = [
        (s, i)
        for s, cache in enumerate(caches)
        for i, r in enumerate(cache.rows)
        if r.status != "unreadable" and keys[s][i] not in exclude
    ]
    counts = Counter(keys[s][i] for s, i in usable)
    people = sorted(p for p, n in counts.items() if n >= min_images)
    if not people:
        roots = ", ".join(str(c.root) for c in caches)
        raise DataError(f"{roots}: no person with >= {min_images} images left to train on")
    index = {p: c for c, p in enumerate(people)}
    chosen = [(s, i) for s, i in usable if keys[s][i] in index]
    labels = np.array([index[keys[s][i]] for s, i in chosen], dtype=np.int64)
    names = sorted({caches[s].rows[i].person for s, i in chosen})
    return TrainSet(labels, people, np.array([i for _, i in chosen]), np.array([s for s, _ in chosen]), names)
