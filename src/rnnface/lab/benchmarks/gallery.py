"""`rnnface bench gallery`: build time, query latency, recall@1, rank-1, memory and disk per index kind.

The realistic workload is made of the shipped model's own embeddings: real LFW faces enrolled under
their names, one held-out photo of each LFW person with two or more (a real query whose person is
enrolled), and synthetic identities drawn from a population fitted to those embeddings (two faces
each) to fill the gallery to size, plus new synthetic photos of enrolled synthetic identities as
more queries. recall@1 compares the gallery's best face with exact search over the same stored
faces; rank-1 asks whether the best face is of the query's person. The uniform workload (random
unit vectors, queries at cosine `similarity` to a stored face) is kept as a labelled stress case.

Each index kind is measured in a fresh process (its peak RSS is the gallery's, not the generator's).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnface.gallery import FaceRecord, open_gallery
from rnnface.gallery.index import KINDS
from rnnface.lab.benchmarks.population import Population, fit_population, shaped_like, similarity_profile
from rnnface.lab.benchmarks.report import machine, write_report
from rnnface.similarity import normalize

MODEL_ID = "bench"
CHUNK = 20_000  # faces generated and enrolled at a time
EXACT_CHUNK = 100_000  # stored faces compared with every query at a time


@dataclass
class Workload:
    """A gallery of `size` faces, generated in chunks, and its queries."""

    name: str
    size: int
    dim: int
    real: np.ndarray  # (R, D) real faces enrolled first
    real_people: list[str]
    queries: list[np.ndarray] = field(default_factory=list)
    query_people: list[str] = field(default_factory=list)
    query_kinds: list[str] = field(default_factory=list)
    population: Population | None = None
    seed: int = 0
    generated_queries: int = 0
    similarity: float = 0.5  # uniform workload: cosine of a query to its source face
    queries_made: bool = False  # a second pass over the chunks (another store) makes the same faces, no new queries

    def chunks(self) -> Iterator[list[tuple[str, np.ndarray]]]:
        """(person, face) in enrollment order; the first pass also adds generated queries (their person enrolled)."""
        make_queries = not self.queries_made
        real = list(zip(self.real_people, self.real))[: self.size]
        for start in range(0, len(real), CHUNK):
            yield real[start : start + CHUNK]
        synthetic = self.size - len(real)
        rng = np.random.default_rng(self.seed)
        per_chunk = np.bincount(
            rng.integers(0, max(1, -(-synthetic // CHUNK)), self.generated_queries),
            minlength=max(1, -(-synthetic // CHUNK)),
        )
        for c, start in enumerate(range(0, synthetic, CHUNK)):
            n = min(CHUNK, synthetic - start)
            draw = np.random.default_rng((self.seed, c))
            first = start // 2
            if self.population is not None:  # two photos of each new identity
                centres = self.population.identities(-(-n // 2), draw)
                faces = self.population.photos(np.repeat(centres, 2, axis=0)[:n], draw)
            else:
                centres = faces = normalize(draw.standard_normal((n, self.dim), dtype=np.float32))
            names = (
                [f"synthetic_{first + i // 2:07d}" for i in range(n)]
                if self.population is not None
                else [f"u{start + i:08d}" for i in range(n)]
            )
            for j in draw.choice(
                len(centres) if self.population is not None else n,
                min(per_chunk[c], n) if make_queries else 0,
                replace=False,
            ):
                if self.population is not None:
                    q = self.population.photos(centres[j : j + 1], draw)[0]
                    self._add_query(q, f"synthetic_{first + j:07d}", "generated")
                else:  # the stress case: a stored face moved to cosine `similarity`
                    noise = normalize(draw.standard_normal(self.dim, dtype=np.float32))
                    noise = normalize(noise - (noise @ faces[j]) * faces[j])
                    self._add_query(
                        normalize(self.similarity * faces[j] + np.sqrt(1 - self.similarity**2) * noise),
                        names[j],
                        "generated",
                    )
            yield list(zip(names, faces))
        self.queries_made = True

    def _add_query(self, q: np.ndarray, person: str, kind: str) -> None:
        self.queries.append(q)
        self.query_people.append(person)
        self.query_kinds.append(kind)


def realistic_workload(
    size: int, embeddings: np.ndarray, people: list[str], population: Population, queries: int = 1000, seed: int = 0
) -> Workload:
    """Real faces (less one held-out photo per person with two or more) + synthetic identities of `population`
    (fitted to the same embeddings: `fit_population`)."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(people):
        rows[p].append(i)
    multi = sorted(p for p, r in rows.items() if len(r) >= 2)
    held_out_people = [multi[i] for i in sorted(rng.choice(len(multi), min(queries // 2, len(multi)), replace=False))]
    held = {rows[p][-1] for p in held_out_people}
    # the other photos of the query people first, so that a gallery smaller than LFW still holds them
    first = set(held_out_people)
    enrolled = sorted((i for i in range(len(people)) if i not in held), key=lambda i: people[i] not in first)
    work = Workload(
        "realistic", size, embeddings.shape[1], embeddings[enrolled], [people[i] for i in enrolled], seed=seed
    )
    work.population = population
    for p in held_out_people:
        work._add_query(embeddings[rows[p][-1]], p, "real")
    work.generated_queries = queries - len(held_out_people)
    return work


def uniform_workload(size: int, dim: int, queries: int = 1000, similarity: float = 0.5, seed: int = 0) -> Workload:
    """The stress case: isotropic random unit vectors, one face per person, queries at cosine `similarity` to one."""
    work = Workload("uniform", size, dim, np.zeros((0, dim), np.float32), [], seed=seed, similarity=similarity)
    work.generated_queries = queries
    return work


def _batch(chunk: list[tuple[str, np.ndarray]]) -> list[tuple[str, list[np.ndarray]]]:
    """A chunk's faces grouped by person, in first-seen order (one `enroll_many` batch)."""
    groups: dict[str, list[np.ndarray]] = defaultdict(list)
    for name, face in chunk:
        groups[name].append(face)
    return list(groups.items())


def _enroll(gallery, batch: list[tuple[str, list[np.ndarray]]]) -> list[list[int]]:
    return gallery.enroll_many([(n, [FaceRecord(f) for f in fs]) for n, fs in batch], MODEL_ID)


def enroll_workload(location: str, work: Workload) -> dict:
    """Enroll the workload (no index built); return the exact top-1 face id and person of every query and the rate.

    Exact search runs over the faces as the gallery stored them (read back after enrollment, since a generated
    query belongs to a chunk but must be compared with every chunk)."""
    start, count = time.perf_counter(), 0
    with open_gallery(location, bulk=True) as gallery:
        for chunk in work.chunks():
            _enroll(gallery, _batch(chunk))
            count += len(chunk)
        rate = count / (time.perf_counter() - start)
        q = np.asarray(work.queries, np.float32)
        best_sim = np.full(len(q), -np.inf, np.float32)
        best_id = np.zeros(len(q), np.int64)
        best_person = np.empty(len(q), object)
        faces = gallery.faces()
        while block := list(itertools.islice(faces, EXACT_CHUNK)):
            sims = q @ np.stack([f.embedding for f in block]).T
            arg = sims.argmax(1)
            val = sims[np.arange(len(q)), arg]
            better = val > best_sim
            best_sim[better] = val[better]
            best_id[better] = [block[j].id for j in arg[better]]
            best_person[better] = [block[j].person for j in arg[better]]
    return {"truth_ids": best_id, "truth_people": best_person, "truth_sims": best_sim, "enroll_faces_per_s": rate}


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _single_queries(gallery, queries: np.ndarray) -> tuple[list, list[float]]:
    """Each query alone through `Gallery.search`: the best match of each, and the milliseconds each took."""
    matches, latencies = [], []
    for v in queries:
        t = time.perf_counter()
        matches.append(gallery.search(v[None], top_k=1)[0][0])
        latencies.append((time.perf_counter() - t) * 1000)
    return matches, latencies


def _measure(location: str, kind: str, breadth: int | None, queries: np.ndarray, result: dict) -> None:
    """In a fresh process: open, build the index (timed), time single queries; peak RSS of this process."""
    with open_gallery(location, index=kind) as gallery:
        start = time.perf_counter()
        gallery.rebuild_index()
        result["build_s"] = time.perf_counter() - start
        if breadth is not None:
            gallery.tune(breadth)
        matches, latencies = _single_queries(gallery, queries)
        result["found"], result["people"], result["latencies"] = (
            [m.face_id for m in matches],
            [m.person for m in matches],
            latencies,
        )
        result["disk_bytes"] = gallery.disk_bytes()
    result["peak_rss_mb"] = _peak_rss_mb()


def _measure_in_child(location: str, kind: str, breadth: int | None, queries: np.ndarray) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        result = manager.dict()
        proc = ctx.Process(target=_measure, args=(location, kind, breadth, queries, result))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"measuring the {kind} index failed (exit {proc.exitcode})")
        return dict(result)


def _row(
    work: Workload,
    truth: dict,
    index: str,
    build_s: float,
    latencies: list[float],
    people: list[str],
    found: np.ndarray,
    rss_mb: float | None,
    disk_per_face: float | None,
    enroll_rate: float,
) -> dict:
    """One report row: `people` is each query's best match, `found` whether it is exact search's best face."""
    kinds_of = np.asarray(work.query_kinds)
    real = kinds_of == "real"
    right = np.asarray(people) == np.asarray(work.query_people)
    return {
        "workload": work.name,
        "faces": work.size,
        "dim": work.dim,
        "index": index,
        "build_s": build_s,
        "query_p50_ms": statistics.median(latencies),
        "query_p99_ms": float(np.percentile(latencies, 99)),
        "recall_at_1": float(np.mean(found)),
        "rank1": float(np.mean(right)),
        "rank1_real": float(np.mean(right[real])) if real.any() else None,
        "exact_rank1": float(np.mean(truth["truth_people"] == np.asarray(work.query_people))),
        "peak_rss_mb": rss_mb,
        "disk_bytes_per_face": disk_per_face,
        "enroll_faces_per_s": enroll_rate,
        "queries": len(work.queries),
        "real_queries": int(real.sum()),
    }


def bench_indexes(
    work: Workload,
    kinds: list[tuple[str, int | None]],
    on_row: Callable[[dict], None] | None = None,
    workdir: str | None = None,
) -> list[dict]:
    """Enroll `work` once into a SQLite gallery, then measure each (index kind, breadth) on it."""
    rows = []
    with tempfile.TemporaryDirectory(
        prefix="rnnface-bench-", dir=workdir or os.environ.get("RNNFACE_BENCH_TMP")
    ) as tmp:
        db = Path(tmp) / "g.db"
        truth = enroll_workload(str(db), work)
        queries = np.asarray(work.queries, np.float32)
        for kind, breadth in kinds:
            m = _measure_in_child(str(db), kind, breadth, queries)
            row = _row(
                work,
                truth,
                kind + (f" {'ef' if kind == 'hnsw' else 'nprobe'}={breadth}" if breadth else ""),
                m["build_s"],
                m["latencies"],
                m["people"],
                np.asarray(m["found"]) == truth["truth_ids"],
                m["peak_rss_mb"],
                m["disk_bytes"] / work.size,
                truth["enroll_faces_per_s"],
            )
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def bench_milvus(work: Workload, uri: str, on_row: Callable[[dict], None] | None = None) -> dict:
    """The same workload on Milvus (`uri`: milvus://HOST:PORT for a server, milvus:PATH.db for Milvus Lite) in a
    fresh collection, dropped after: enrollment, latency, recall, rank-1.

    recall@1 counts a query found when its best face is as similar as exact search's best (ids differ between
    stores); memory and disk are the server's and are not measured here."""
    with tempfile.TemporaryDirectory(prefix="rnnface-bench-") as tmp:
        truth = enroll_workload(str(Path(tmp) / "truth.db"), work)  # exact answers, from the same faces
    collection = f"bench_{os.getpid()}_{work.size}"
    location = f"{uri}#{collection}" if uri.endswith(".db") else f"{uri.rstrip('/')}/{collection}"
    gallery = open_gallery(location)
    try:
        start = time.perf_counter()
        for chunk in work.chunks():
            _enroll(gallery, _batch(chunk))
        enroll_rate = work.size / (time.perf_counter() - start)
        queries = np.asarray(work.queries, np.float32)
        start = time.perf_counter()
        gallery.search(queries[:1], top_k=1)
        ready = time.perf_counter() - start
        matches, latencies = _single_queries(gallery, queries)
        sims, people = [m.similarity for m in matches], [m.person for m in matches]
    finally:
        gallery.drop()
        gallery.close()
    index = "milvus lite" if uri.endswith(".db") else "milvus server"
    found = np.asarray(sims) >= truth["truth_sims"] - 1e-3
    row = _row(work, truth, index, ready, latencies, people, found, None, None, enroll_rate)
    if on_row is not None:
        on_row(row)
    return row


HEADER = (
    f"{'workload':<11}{'faces':>10}  {'index':<14}{'build s':>8}{'p50 ms':>8}{'p99 ms':>8}"
    f"{'recall@1':>9}{'rank-1':>8}{'exact':>7}{'RSS MB':>8}{'B/face':>8}"
)


def format_row(r: dict) -> str:
    return (
        f"{r['workload']:<11}{r['faces']:>10,}  "
        f"{r['index']:<14}{r['build_s']:>8.1f}{r['query_p50_ms']:>8.2f}{r['query_p99_ms']:>8.2f}"
        f"{r['recall_at_1']:>9.3f}{r['rank1']:>8.3f}{r['exact_rank1']:>7.3f}"
        f"{_num(r['peak_rss_mb']):>8}{_num(r['disk_bytes_per_face']):>8}"
    )


def _num(value: float | None) -> str:
    return "server" if value is None else f"{value:.0f}"


def parse_kinds(text: str) -> list[tuple[str, int | None]]:
    """Index kinds to measure from "flat,pq,hnsw:256": KIND or KIND:BREADTH (hnsw efSearch, ivf nprobe)."""
    out = []
    for item in filter(None, (v.strip() for v in text.split(","))):
        kind, _, breadth = item.partition(":")
        if kind not in KINDS or (breadth and not breadth.isdigit()):
            raise ValueError(
                f"index {item!r}: one of {', '.join(KINDS)}, as KIND or KIND:BREADTH (hnsw efSearch, ivf nprobe)"
            )
        out.append((kind, int(breadth) if breadth else None))
    return out


def run_gallery_bench(
    embeddings: np.ndarray,
    people: list[str],
    model_id: str,
    sizes: list[int],
    kinds: list[tuple[str, int | None]],
    out: Path,
    queries: int = 1000,
    uniform: Sequence[int] = (),
    milvus_uri: str | None = None,
    milvus_sizes: Sequence[int] = (),
    echo: Callable[[str], None] = print,
) -> dict:
    """The whole `rnnface bench gallery` run over real embeddings (and their `people`); the report grows row by
    row in `out`, so an interrupted run keeps what it measured."""
    labels = np.asarray(people)
    real = similarity_profile(embeddings, labels)
    population = fit_population(embeddings, labels)
    synthetic = shaped_like(population, labels)
    rows: list[dict] = []
    report = {
        "machine": machine(),
        "model": model_id,
        "real_lfw": real,
        "population": {"sigma": population.sigma, "synthetic_lfw_shaped": synthetic},
        "rows": rows,
    }

    def row_done(row: dict) -> None:
        rows.append(row)
        echo(format_row(row))
        write_report(report, out)

    for what, values in (
        (f"real LFW embeddings ({len(embeddings)} faces)", real),
        ("synthetic, LFW-shaped", synthetic),
    ):
        echo(f"{what}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items() if k != "gallery"))
    echo(HEADER)
    for size in sizes:
        work = realistic_workload(size, embeddings, people, population, queries)
        if kinds:
            bench_indexes(work, kinds, on_row=row_done)
        if milvus_uri and size in milvus_sizes:
            # the same faces and queries (a second pass over the workload makes no new ones)
            bench_milvus(work, milvus_uri, on_row=row_done)
    for size in uniform:
        bench_indexes(
            uniform_workload(size, embeddings.shape[1], queries), [("pq", None), ("lsh", None)], on_row=row_done
        )
    return report
