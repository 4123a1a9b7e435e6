"""A face population fitted to real embeddings, to synthesize galleries of any size for benchmarks.

Real face embeddings are clustered by identity: each person has a centre, and photos of a person
scatter around it. `fit_population` estimates both from real embeddings of people with two or more
photos (a two-level Gaussian model: between-person covariance of the centres, pooled within-person
covariance of the photos, in the full embedding space), and `Population` draws new identities and
new photos of them, on the unit sphere as the model's embeddings are.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from rnnface.similarity import normalize


def _factor(cov: np.ndarray) -> np.ndarray:
    """A matrix L with L @ L.T = cov (negative eigenvalues of an estimate clipped to zero)."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))).astype(np.float32)


@dataclass(frozen=True)
class Population:
    """Identity centres ~ N(mean, B B^T); a photo of a person ~ centre + s N(0, W W^T), then unit length,
    where s (E[s^2] = 1) is log-normal with spread `sigma`: some photos of a person (profile, age,
    light) stray much further than others, as real ones do."""

    mean: np.ndarray
    between: np.ndarray
    within: np.ndarray
    sigma: float = 0.0

    @property
    def dim(self) -> int:
        return len(self.mean)

    def identities(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, D) new identity centres."""
        return self.mean + rng.standard_normal((n, self.dim), dtype=np.float32) @ self.between.T

    def photos(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One unit embedding per centre: a new photo of that person."""
        scale = np.exp(self.sigma * rng.standard_normal((len(centres), 1), dtype=np.float32) - self.sigma**2).astype(
            np.float32
        )
        return normalize(centres + scale * (rng.standard_normal(centres.shape, dtype=np.float32) @ self.within.T))


def fit_population(embeddings: np.ndarray, people: np.ndarray) -> Population:
    """Fit the two-level model to real unit embeddings and their person labels."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(people):
        groups[p].append(i)
    multi = [np.asarray(rows) for rows in groups.values() if len(rows) >= 2]
    if len(multi) < 2:
        raise ValueError("fitting a population needs at least two people with two or more photos each")
    x = np.asarray(embeddings, np.float64)
    centres = np.stack([x[rows].mean(0) for rows in multi])
    scatter = np.concatenate([x[rows] - x[rows].mean(0) for rows in multi])
    dof = len(scatter) - len(multi)
    within = scatter.T @ scatter / dof
    # The spread of observed centres includes each centre's own sampling noise, within / n_photos.
    mean_inverse_n = float(np.mean([1.0 / len(rows) for rows in multi]))
    between = np.cov(centres, rowvar=False) - mean_inverse_n * within
    population = Population(centres.mean(0).astype(np.float32), _factor(between), _factor(within))
    # The photo spread: the sigma whose same-person cosines vary as much as the real ones do.
    rng = np.random.default_rng(0)
    real = np.concatenate([(x[rows[:1]] @ x[rows[1:2]].T).ravel() for rows in multi])
    pairs = population.identities(4000, rng)

    def spread(sigma: float) -> float:
        p = replace(population, sigma=sigma)
        draw = np.random.default_rng(1)
        return float(np.std((p.photos(pairs, draw) * p.photos(pairs, draw)).sum(1)))

    sigma = min(np.arange(0.0, 1.01, 0.05), key=lambda s: abs(spread(s) - float(np.std(real))))
    return replace(population, sigma=float(sigma))


def similarity_profile(
    embeddings: np.ndarray, people: np.ndarray, pairs: int = 20_000, seed: int = 0
) -> dict[str, float]:
    """Mean and spread of same-person and different-person cosines, and how often a photo's nearest
    other photo is of another person: what a synthetic population must reproduce of the real one."""
    rng = np.random.default_rng(seed)
    people = np.asarray(people)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(people):
        groups[p].append(i)
    multi = [rows for rows in groups.values() if len(rows) >= 2]
    same = []
    for _ in range(pairs):
        rows = multi[rng.integers(len(multi))]
        a, b = rng.choice(len(rows), 2, replace=False)
        same.append(float(embeddings[rows[a]] @ embeddings[rows[b]]))
    a, b = rng.integers(len(embeddings), size=(2, pairs))
    keep = people[a] != people[b]
    other = (embeddings[a[keep]] * embeddings[b[keep]]).sum(1)
    probes = np.concatenate([rows[:1] for rows in multi])[:2000]
    sims = embeddings[probes] @ embeddings.T
    sims[np.arange(len(probes)), probes] = -2
    nearest_other = float(np.mean(people[sims.argmax(1)] != people[probes]))
    return {
        "same_mean": float(np.mean(same)),
        "same_std": float(np.std(same)),
        "different_mean": float(np.mean(other)),
        "different_std": float(np.std(other)),
        "nearest_is_another_person": nearest_other,
        "gallery": len(embeddings),
    }


def shaped_like(population: Population, people: np.ndarray, seed: int = 0) -> dict[str, float]:
    """`similarity_profile` of a synthetic gallery with as many people, and photos per person, as `people`."""
    rng = np.random.default_rng(seed)
    labels = np.unique(people, return_inverse=True)[1]
    centres = population.identities(int(labels.max()) + 1, rng)
    return similarity_profile(population.photos(centres[labels], rng), labels.astype(str))
