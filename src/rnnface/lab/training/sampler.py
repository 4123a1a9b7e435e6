"""Batch samplers: P identities x K images (class-balanced) or plain shuffled images."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class PKSampler:
    """Yields batches of `p` distinct identities with `k` images each.

    Identities are drawn uniformly, so a person with 530 images is not seen 265 times more often
    than one with 2; a person with fewer than `k` images repeats some (augmentation makes the
    repeats differ). One epoch is `len(labels) // (p * k)` batches.
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, p: int, k: int, seed: int = 0) -> None:
        labels = np.asarray(labels)
        self.by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        if len(self.by_class) < p:
            raise ValueError(f"need at least p={p} identities, have {len(self.by_class)}")
        self.p, self.k = p, k
        self.batches = max(1, len(labels) // (p * k))
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[np.ndarray]:
        for _ in range(self.batches):
            classes = self.rng.choice(len(self.by_class), self.p, replace=False)
            yield np.concatenate(
                [self.rng.choice(self.by_class[c], self.k, replace=len(self.by_class[c]) < self.k) for c in classes]
            )


class UniformSampler:
    """Shuffled images in batches of `batch_size` (the imbalanced baseline)."""

    def __init__(self, labels: Sequence[int] | np.ndarray, batch_size: int, seed: int = 0) -> None:
        self.n, self.batch_size = len(labels), batch_size
        self.batches = max(1, self.n // batch_size)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self.rng.permutation(self.n)
        for i in range(self.batches):
            yield order[i * self.batch_size : (i + 1) * self.batch_size]
