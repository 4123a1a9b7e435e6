"""`rnnface bench cluster`: time and memory of clustering 10,000 to 100,000 faces on this machine.

The faces are drawn from a population fitted to real embeddings (`rnnface.lab.benchmarks.population`, e.g. FaceNet's
of all of LFW), with as many photos per person as LFW's people have (most have one), so the graph is as hard as
the real one, at any size; pairwise and BCubed F against the drawn identities come with the time.
"""

from __future__ import annotations

import numpy as np

from rnnface.lab.benchmarks.population import fit_population
from rnnface.lab.evaluation.clustering import VARIANTS, run

SIZES = (10_000, 30_000, 100_000)


def draw_faces(population, photos_per_person: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit embeddings of new people whose photo counts are drawn from `photos_per_person`, and their labels."""
    rng = np.random.default_rng(seed)
    counts: list[int] = []
    while sum(counts) < n:
        counts.append(int(rng.choice(photos_per_person)))
    counts[-1] -= sum(counts) - n
    truth = np.repeat(np.arange(len(counts)), counts)
    centres = population.identities(len(counts), rng)
    return population.photos(centres[truth], rng), truth


def run_cluster_bench(
    embeddings: np.ndarray,
    people: np.ndarray,
    threshold: float,
    rho: float = 1.0,
    sizes: tuple[int, ...] = SIZES,
    methods: tuple[str, ...] = ("rnnface", "connected components of the k-NN graph"),
) -> dict:
    """Each method on synthetic sets of each size: seconds, peak MB above the start, and the scores (a method
    with variants, rnnface, at `rho`)."""
    population = fit_population(embeddings, people)
    per_person = np.unique(people, return_counts=True)[1]
    rows = []
    for n in sizes:
        x, truth = draw_faces(population, per_person, n)
        for name in methods:
            setting = (rho, threshold) if name in VARIANTS else threshold
            r = run(name, x, truth, setting, "synthetic", f"{n:,} faces")
            rows.append({"faces": n, "people": int(truth.max()) + 1, **r.to_dict()})
    return {"threshold": threshold, "rho": rho, "dim": int(embeddings.shape[1]), "rows": rows}
