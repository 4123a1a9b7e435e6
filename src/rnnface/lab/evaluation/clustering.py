"""`rnnface eval cluster`: grouping all of LFW and all of CFP by person, rnnface's method beside the usual ones.

Every method clusters the same faces from the same embeddings: FaceNet's (VGGFace2) and dlib's (face_recognition),
both pretrained elsewhere, so no embedding has seen these people in training (the shipped rnnface model saw all of
LFW and CFP, and is therefore not a row). A method's setting (its threshold, or HDBSCAN's minimum group size) is
the one that scores best on the *other* set: LFW's is chosen on CFP's labels and CFP's on LFW's, so no test
face's label picks its own setting. The best setting on the set itself is shown too, as the ceiling.

Methods: rnnface (average linkage over the k-NN graph with pooled evidence, `rnnface.clustering`; its pooling
rho is chosen on the other set with its threshold, and rho 1 is plain average linkage), dlib's Chinese whispers as
face_recognition's example calls it, scikit-learn's DBSCAN, HDBSCAN and agglomerative clustering (average
linkage over the full distance matrix), and connected components of the thresholded k-NN graph (single
linkage). Each chosen run is timed again in a fresh process, with its peak memory above that process's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rnnface.clustering.graph import knn
from rnnface.clustering.linkage import DEFAULT_K, Pooling, background_cosine, cluster_embeddings
from rnnface.clustering.metrics import Scores, score
from rnnface.lab.evaluation.report import Report
from rnnface.registry import Registry

#: A method: `fit(x)` does what every setting shares (a tree, a graph) and returns `cut(setting) -> labels`
#: (-1: left alone); within a sweep a run's time is the fit's plus the cut's. A setting is a float, or
#: (variant, threshold) for a method with variants (`Setting`; `Any`: each cut takes its method's own).
Cut = Callable[[Any], np.ndarray]
Clusterer = Callable[[np.ndarray], Cut]
clusterers: Registry[Cut] = Registry("clustering method")  # each entry a Clusterer, the factory of its cuts
#: Settings each method is tried at; a float threshold is a cosine similarity.
SETTINGS: dict[str, list[float]] = {}
#: A method with variants (rnnface's pooling rho) is tried at every setting of each: its setting is then
#: (variant, threshold), and a set's variant is chosen on the other set with its threshold.
VARIANTS: dict[str, list[float]] = {}
#: Graph methods that would hold more pairs than this at a setting are not run there (see TooDense).
MAX_EDGES = 5_000_000
#: Fine enough for dlib's embeddings too, whose cosines between different people already average 0.84.
COSINES = [round(float(c), 4) for c in np.arange(0.2, 0.99, 0.0125)]
RHOS = [1.0, 0.85, 0.7, 0.55]

Setting = float | tuple[float, float]
T = TypeVar("T")


class TooDense(Exception):
    """A setting so permissive that the method's graph would not fit; the sweep skips it."""


def method(name: str, settings: list[float] = COSINES, variants: list[float] | None = None):
    """Register a clusterer tried at `settings` (of each of its `variants`)."""

    def decorator(fn: Clusterer) -> Clusterer:
        SETTINGS[name] = settings
        if variants:
            VARIANTS[name] = variants
        return clusterers.register(name)(fn)

    return decorator


@method("rnnface", variants=RHOS)
def _rnnface(x: np.ndarray) -> Cut:
    """Average linkage over the k-NN graph with pooled evidence (rho); the background cosine is the set's own
    mean cosine between faces, which needs no labels."""
    background = background_cosine(x)
    return lambda setting: cluster_embeddings(x, setting[1], DEFAULT_K, pooling=Pooling(setting[0], background))


def _radius_graph(x: np.ndarray) -> Callable[[float], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For a threshold: every pair of faces at least that similar (each face with itself too), found by FAISS, as
    (rows, cols, cosines) with rows <= cols; TooDense past MAX_EDGES pairs."""
    import faiss

    unit = np.ascontiguousarray(x, np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(unit)

    def pairs(threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        limits, sims, ids = index.range_search(unit, float(threshold))
        rows = np.repeat(np.arange(len(x)), np.diff(limits).astype(np.int64))
        keep = rows <= ids
        if keep.sum() > MAX_EDGES:
            raise TooDense(f"{int(keep.sum()):,} pairs at cosine {threshold}")
        return rows[keep], ids[keep], sims[keep]

    return pairs


@method("chinese whispers (dlib)")
def _chinese_whispers(x: np.ndarray) -> Cut:
    """dlib's chinese_whispers over the graph face_recognition's example has dlib build (every pair of faces
    closer than the threshold, each face with itself too); the pairs are found by FAISS, as dlib's own loop
    over all N^2 pairs takes 40 s for LFW."""
    import dlib

    pairs = _radius_graph(x)

    def cut(threshold: float) -> np.ndarray:
        rows, cols, _ = pairs(threshold)
        return np.asarray(dlib.chinese_whispers(list(zip(rows.tolist(), cols.tolist()))))

    return cut


@method("DBSCAN (min 2)")
def _dbscan(x: np.ndarray) -> Cut:
    """scikit-learn's DBSCAN (cosine distance, eps = 1 - threshold, 2 faces make a core), on the sparse graph of
    the pairs within eps (what its brute-force search finds, without the N^2 matrix)."""
    from scipy.sparse import coo_matrix
    from sklearn.cluster import DBSCAN

    pairs = _radius_graph(x)

    def cut(threshold: float) -> np.ndarray:
        rows, cols, sims = pairs(threshold)
        distance = np.maximum(1.0 - sims, 1e-9)  # a stored zero would be no edge at all
        both = (np.concatenate([rows, cols]), np.concatenate([cols, rows]))
        graph = coo_matrix((np.concatenate([distance, distance]), both), shape=(len(x), len(x))).tocsr()
        graph.sum_duplicates()  # each face's pair with itself was listed twice
        return DBSCAN(eps=max(1e-6, 1.0 - threshold), min_samples=2, metric="precomputed").fit_predict(graph)

    return cut


@method("HDBSCAN", settings=[2, 3, 4, 5, 8])
def _hdbscan(x: np.ndarray) -> Cut:
    from sklearn.cluster import HDBSCAN

    return lambda min_size: HDBSCAN(min_cluster_size=int(min_size), min_samples=1, copy=True).fit_predict(x)


@method("agglomerative, average (full matrix)")
def _agglomerative(x: np.ndarray) -> Cut:
    """Average linkage over every pair (scikit-learn's AgglomerativeClustering(linkage="average") without a
    connectivity graph runs this same SciPy tree): the tree once, cut at each threshold."""
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(np.asarray(x, np.float64), method="average", metric="cosine")
    return lambda threshold: fcluster(tree, t=1.0 - threshold, criterion="distance")


@method("connected components of the k-NN graph")
def _components(x: np.ndarray) -> Cut:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    sims, ids = knn(x, x, DEFAULT_K + 1)

    def cut(threshold: float) -> np.ndarray:
        keep = (sims >= threshold) & (ids >= 0)
        rows = np.repeat(np.arange(len(x)), ids.shape[1])[keep.ravel()]
        graph = coo_matrix((np.ones(len(rows)), (rows, ids.ravel()[keep.ravel()])), shape=(len(x), len(x)))
        return connected_components(graph, directed=False)[1]

    return cut


@dataclass(frozen=True)
class Run:
    """One method on one set at one setting."""

    method: str
    embedding: str
    dataset: str
    setting: Setting
    scores: Scores
    seconds: float
    peak_mb: float | None = None  # measured in a fresh process (`run`); None within a sweep

    @property
    def objective(self) -> float:
        """What settings are chosen by: the mean of pairwise and BCubed F."""
        return (self.scores.pairwise_f + self.scores.bcubed_f) / 2

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "scores"}, **self.scores.to_dict()}


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run(name: str, x: np.ndarray, truth: np.ndarray, setting: Setting, embedding: str, dataset: str) -> Run:
    """One method at one setting, from scratch, in a fresh process: its time, and its peak memory above that
    process's once it holds the embeddings (a process that ran other methods would reuse their freed memory)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        labels, seconds, peak_mb = pool.submit(_isolated, name, x, setting).result()
    return Run(name, embedding, dataset, setting, score(truth, labels), seconds, peak_mb)


def _isolated(name: str, x: np.ndarray, setting: Setting) -> tuple[np.ndarray, float, float]:
    with suppress(TooDense):
        clusterers.get(name)(x[:64])(setting)  # the libraries it imports are not what it costs
    with peak_rss() as memory:
        start = time.perf_counter()
        labels = clusterers.get(name)(x)(setting)
        seconds = time.perf_counter() - start
    return labels, seconds, memory["mb"]


@contextmanager
def peak_rss() -> Iterator[dict]:
    """Peak resident memory above the level at entry, in MB (sampled every 5 ms from /proc/self/statm; the
    process's peak so far, ru_maxrss, would hide whatever stays under the peak of its imports)."""
    import threading

    page = os.sysconf("SC_PAGE_SIZE") / 2**20

    def rss() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * page

    base, out, done = rss(), {"mb": 0.0}, threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            out["mb"] = max(out["mb"], rss() - base)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        done.set()
        thread.join()
        out["mb"] = max(out["mb"], rss() - base)


def sweep(name: str, x: np.ndarray, truth: np.ndarray, embedding: str, dataset: str) -> list[Run]:
    """The method at every setting (of each variant), coarse first and then finely around the best coarse one;
    what the settings share is built once, and its time counted in every run (memory is measured for the
    chosen runs only)."""
    cut, fit = timed(lambda: clusterers.get(name)(x))

    def attempt(setting: Setting) -> Run | None:
        with suppress(TooDense):
            labels, seconds = timed(lambda: cut(setting))
            return Run(name, embedding, dataset, setting, score(truth, labels), fit + seconds)
        return None

    out: list[Run] = []
    for variant in VARIANTS.get(name, [None]):
        out += _refined(SETTINGS[name], lambda t, v=variant: attempt(t if v is None else (v, t)))
    return out


# `attempt(threshold)`; `...`: mypy cannot match `lambda t, v=variant:` to `[float]`
def _refined(settings: list[float], attempt: Callable[..., Run | None]) -> list[Run]:
    """`attempt` at every 4th threshold, then at each one within 3 of the best, by threshold."""
    coarse = settings[::4] if len(settings) > 8 else settings
    runs = {t: r for t in coarse if (r := attempt(t)) is not None}
    if len(settings) > 8 and runs:
        best = settings.index(max(runs, key=lambda t: runs[t].objective))
        for t in settings[max(0, best - 3) : best + 4]:
            if t not in runs and (r := attempt(t)) is not None:
                runs[t] = r
    return [runs[t] for t in sorted(runs)]


def _threshold(setting: Setting) -> float:
    return setting[1] if isinstance(setting, tuple) else setting


def _variant(setting: Setting) -> float | None:
    return setting[0] if isinstance(setting, tuple) else None


def shown(setting: Setting) -> str:
    """A setting as the report writes it: a threshold, or rho and threshold."""
    return f"rho {setting[0]:g}, {setting[1]:g}" if isinstance(setting, tuple) else f"{setting:g}"


@dataclass(frozen=True)
class Faces:
    """One set's faces for clustering: unit embeddings by embedder name and the person of each face."""

    name: str
    embeddings: dict[str, np.ndarray]
    people: np.ndarray
    total: int  # faces in the set, including those some embedder could not embed (not clustered)


def cache_faces(name: str, cache_dir: Path, embedders: list[str]) -> Faces:
    """The faces of a prepared cache every embedder could embed (at the box the cache's detector found)."""
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.lab.data.teachers import pretrained_embeddings
    from rnnface.similarity import normalize

    cache = FaceCache.open(cache_dir)
    found = {e: pretrained_embeddings(cache, e) for e in embedders}
    valid = np.logical_and.reduce([v for _, v in found.values()])
    people = np.array([r.person for r in cache.rows])[valid]
    return Faces(name, {e: normalize(emb[valid]) for e, (emb, _) in found.items()}, people, len(cache.rows))


@dataclass(frozen=True)
class Result:
    """A method and embedding on one set, at the setting chosen on the other set, and the set's own best."""

    chosen: Run
    ceiling: Run

    def to_dict(self) -> dict:
        return {"chosen": self.chosen.to_dict(), "ceiling": self.ceiling.to_dict()}


def evaluate(sets: list[Faces], methods: list[str] | None = None) -> tuple[list[Result], list[Run]]:
    """Every method on every embedding of every set; each set's setting chosen on the next set (two sets:
    each on the other). Returns the results and every run of the sweeps."""
    methods = methods or clusterers.names()
    runs: dict[tuple[str, str, str], list[Run]] = {}
    for faces in sets:
        for embedding, x in faces.embeddings.items():
            for name in methods:
                runs[name, embedding, faces.name] = sweep(name, x, faces.people, embedding, faces.name)
    results = []
    for i, faces in enumerate(sets):
        other = sets[(i + 1) % len(sets)]
        for embedding in faces.embeddings:
            for name in methods:
                tuning = max(runs[name, embedding, other.name], key=lambda r: r.objective).setting
                here = runs[name, embedding, faces.name]
                # the sweeps of two sets can refine around different thresholds: take this set's nearest one
                same = [r for r in here if _variant(r.setting) == _variant(tuning)]
                chosen = min(same, key=lambda r: abs(_threshold(r.setting) - _threshold(tuning)))
                measured = run(name, faces.embeddings[embedding], faces.people, chosen.setting, embedding, faces.name)
                results.append(Result(measured, max(here, key=lambda r: r.objective)))
    return results, [r for rs in runs.values() for r in rs]


def markdown(results: list[Result], sets: list[Faces]) -> str:
    """One table per set: pairwise and BCubed F at the setting chosen on the other set, then the ceiling."""
    parts = []
    for faces in sets:
        rows = [r for r in results if r.chosen.dataset == faces.name]
        n = len(faces.people)
        parts.append(
            f"**{faces.name}**: {n:,} faces of {len(set(faces.people)):,} people (of {faces.total:,} photos; "
            f"the rest had no face an embedder could use)\n\n"
            "| embedding | method | setting (chosen on the other set) | pairwise P / R / F | BCubed P / R / F | "
            "groups (2+) | singletons | time s | peak MB | ceiling: best F here (setting) |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        )
        for r in sorted(rows, key=lambda r: (r.chosen.embedding, -r.chosen.objective)):
            c, s = r.chosen, r.chosen.scores
            best = r.ceiling.scores
            parts.append(
                f"| {c.embedding} | {c.method} | {shown(c.setting)} | "
                f"{100 * s.pairwise_precision:.1f} / {100 * s.pairwise_recall:.1f} / **{100 * s.pairwise_f:.1f}** | "
                f"{100 * s.bcubed_precision:.1f} / {100 * s.bcubed_recall:.1f} / **{100 * s.bcubed_f:.1f}** | "
                f"{s.groups:,} | {s.singletons:,} | {c.seconds:.1f} | {c.peak_mb:.0f} | "
                f"{100 * best.pairwise_f:.1f} / {100 * best.bcubed_f:.1f} ({shown(r.ceiling.setting)}) |"
            )
        parts.append("")
    return "\n".join(parts)


def cluster_report(sets: list[Faces], methods: list[str] | None = None) -> Report:
    """`evaluate` as a report (cluster.json: every result and every run of the sweeps; cluster.md)."""
    results, runs = evaluate(sets, methods)
    data = {"results": [r.to_dict() for r in results], "sweeps": [r.to_dict() for r in runs]}
    return Report("cluster", data, markdown(results, sets))
