"""Average linkage over a k-NN graph: rnnface's way of grouping faces, batch or incremental.

Two groups merge, best pair first, while the mean cosine between their faces is at least `threshold`: the
rule a pair decision uses, applied to whole groups, so one odd similar pair cannot chain two people
together (single linkage, DBSCAN) and a large group is not split for lack of density (HDBSCAN). The mean
cosine of groups A and B is sum(A) . sum(B) / (|A| |B|) for unit embeddings, exact from each group's
sum vector, so no pairwise matrix is ever held; only groups the k-NN graph connects are compared, so
the cost grows with N k, not N^2. With a `Pooling` below rho 1, the mean of two large groups counts for
more than one pair's cosine (it is steadier), so such groups merge at a lower mean than two single faces
need. Faces added later are linked the same way: a new face joins the group
it is closest to on average, founds a group of its own, or brings two groups together, without
reclustering what is there.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import faiss
import numpy as np

from rnnface.clustering.graph import new_index
from rnnface.similarity import normalize

#: Neighbours each face is linked with; groups are compared only where some pair of their faces is.
DEFAULT_K = 32


@dataclass(frozen=True)
class Pooling:
    """How much more a mean over many pairs of faces says than one pair does.

    The mean cosine of two groups is compared with the threshold as if it were one pair's cosine after
    `background + (mean - background) / sqrt(rho + (1 - rho) / pairs)`: the spread of a mean of `pairs`
    cosines between unrelated faces shrinks as 1 / pairs for independent pairs (rho 0) and not at all for
    fully correlated ones (rho 1, plain average linkage). So two single faces need the threshold itself,
    while two large groups, whose mean is far steadier, may merge nearer the `background` (the mean cosine of
    unrelated faces): the profile and the frontal photos of one person, say."""

    rho: float = 1.0
    background: float = 0.0

    def to_dict(self) -> dict:
        return {"rho": self.rho, "background": round(self.background, 4)}

    def single_pair(self, mean: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        """The single-pair cosine as telling as a `mean` over `pairs` pairs."""
        if self.rho >= 1.0:
            return mean
        return self.background + (mean - self.background) / np.sqrt(self.rho + (1.0 - self.rho) / pairs)


@dataclass(frozen=True)
class Group:
    """One group of faces: its members (face numbers, in the order added), how alike they are, and how near the
    closest other group is (both mean cosines); `representative` is the member nearest the group's mean."""

    id: int
    members: list[int]
    cohesion: float
    nearest: float
    representative: int

    @property
    def size(self) -> int:
        return len(self.members)


class Clustering:
    """Faces grouped by average linkage at `threshold` (a mean cosine); `add` more at any time."""

    def __init__(self, threshold: float, k: int = DEFAULT_K, pooling: Pooling | None = None) -> None:
        self.threshold = float(threshold)
        self.k = int(k)
        self.pooling = pooling or Pooling()
        self._dim: int | None = None
        self._faces = np.zeros((0, 0), np.float32)
        self._group = np.zeros(0, np.int64)  # each face's group id
        self._sums = np.zeros((0, 0), np.float32)  # by group id; ids are never reused
        self._sizes = np.zeros(0, np.int64)  # 0 for a group merged into another
        self._version = np.zeros(0, np.int64)
        self._fixed = np.zeros(0, bool)  # groups given by `seed`: never merged with one another
        self._members: dict[int, list[int]] = {}
        self._adjacent: dict[int, set[int]] = {}
        self._index: faiss.Index | None = None

    def __len__(self) -> int:
        return len(self._group)

    def is_fixed(self, group: int) -> bool:
        """Whether `group` is one given by `seed` (perhaps grown by faces added since)."""
        return bool(self._fixed[group])

    @property
    def labels(self) -> np.ndarray:
        """Each face's group id."""
        return self._group.copy()

    def seed(self, embeddings: np.ndarray, labels: np.ndarray) -> dict[object, int]:
        """Faces already grouped (a gallery's people): one fixed group per distinct label, never merged with another
        fixed group; faces added later can join one. Returns each label's group id."""
        new = self._start(embeddings)
        labels = np.asarray(labels)
        if len(labels) != len(new):
            raise ValueError(f"{len(labels)} labels for {len(new)} faces")
        keys, inverse = np.unique(labels, return_inverse=True)
        first_group = len(self._sizes)
        sums = np.zeros((len(keys), new.shape[1]), np.float32)
        np.add.at(sums, inverse, new)
        first_face = len(self._group)
        self._grow(new, first_group + inverse, sums, np.bincount(inverse, minlength=len(keys)), fixed=True)
        for g in range(len(keys)):
            self._members[first_group + g] = (first_face + np.flatnonzero(inverse == g)).tolist()
            self._adjacent[first_group + g] = set()
        return {key: first_group + g for g, key in enumerate(keys.tolist())}

    def add(self, embeddings: np.ndarray) -> np.ndarray:
        """Link new faces ((N, D) embeddings) with everything so far; return their group ids.

        A batch is linked as a whole, so adding faces in one call or several gives the same groups whenever
        the later faces never rank among an earlier face's k nearest."""
        new = self._start(embeddings)
        if not len(new):
            return np.zeros(0, np.int64)
        first = len(self._group)
        ids = np.arange(first, first + len(new))
        groups = len(self._sizes) + np.arange(len(new))
        self._grow(new, groups, new, np.ones(len(new), np.int64), fixed=False)
        for face, g in zip(ids.tolist(), groups.tolist()):
            self._members[g] = [face]
            self._adjacent[g] = set()
        assert self._index is not None  # set by _start with the first faces
        _, near = self._index.search(new, min(self.k + 1, len(self._group)))
        heap: list[tuple[float, int, int, int, int]] = []
        for face, row_ids in zip(ids.tolist(), near):
            a = int(self._group[face])
            for j in row_ids[(row_ids >= 0) & (row_ids != face)]:
                b = int(self._group[j])
                if b != a and b not in self._adjacent[a]:
                    self._adjacent[a].add(b)
                    self._adjacent[b].add(a)
                    self._push(heap, a, b, float(self._evidence(a, np.array([b]))[0]))
        self._merge(heap)
        return self._group[ids].copy()

    def _start(self, embeddings: np.ndarray) -> np.ndarray:
        """Unit rows of `embeddings`, checked against (or setting) this clustering's dimension."""
        new = normalize(np.atleast_2d(np.asarray(embeddings, np.float32)))
        if self._dim is None and len(new):
            self._dim = new.shape[1]
            self._faces = np.zeros((0, self._dim), np.float32)
            self._sums = np.zeros((0, self._dim), np.float32)
            self._index = new_index(self._dim, len(new), self.k)  # sized by the first batch
        if len(new) and new.shape[1] != self._dim:
            raise ValueError(f"embeddings of dimension {new.shape[1]}; this clustering holds {self._dim}")
        return new

    def _grow(self, faces: np.ndarray, groups: np.ndarray, sums: np.ndarray, sizes: np.ndarray, fixed: bool) -> None:
        assert self._index is not None  # set by _start with the first faces
        self._faces = np.concatenate([self._faces, faces])
        self._index.add(faces)
        self._group = np.concatenate([self._group, groups.astype(np.int64)])
        self._sums = np.concatenate([self._sums, sums])
        self._sizes = np.concatenate([self._sizes, sizes.astype(np.int64)])
        self._version = np.concatenate([self._version, np.zeros(len(sizes), np.int64)])
        self._fixed = np.concatenate([self._fixed, np.full(len(sizes), fixed)])

    def groups(self, min_size: int = 1) -> list[Group]:
        """Groups of at least `min_size` faces, largest first (ties: earliest face first)."""
        live = [g for g, members in self._members.items() if len(members) >= min_size]
        out = []
        for g in live:
            members = sorted(self._members[g])
            n = len(members)
            s = self._sums[g].astype(np.float64)
            cohesion = float((s @ s - n) / (n * (n - 1))) if n > 1 else 1.0
            adjacent = np.fromiter(self._adjacent[g], np.int64, len(self._adjacent[g]))
            nearest = float(self._link(g, adjacent).max()) if len(adjacent) else -1.0
            representative = members[int(np.argmax(self._faces[members] @ s))]
            out.append(Group(g, members, cohesion, nearest, representative))
        return sorted(out, key=lambda grp: (-grp.size, grp.members[0]))

    def _link(self, a: int, others: np.ndarray) -> np.ndarray:
        """Mean cosine between group `a`'s faces and each group of `others`'."""
        dots = self._sums[others].astype(np.float64) @ self._sums[a].astype(np.float64)
        return dots / (self._sizes[others] * self._sizes[a])

    def _evidence(self, a: int, others: np.ndarray) -> np.ndarray:
        """What is compared with the threshold: each link of `a` to `others`, as strong as a single pair's."""
        return self.pooling.single_pair(self._link(a, others), self._sizes[others] * self._sizes[a])

    def _push(self, heap: list, a: int, b: int, link: float) -> None:
        if link >= self.threshold and not (self._fixed[a] and self._fixed[b]):
            heapq.heappush(heap, (-link, a, b, int(self._version[a]), int(self._version[b])))

    def _merge(self, heap: list) -> None:
        """Merge the most similar linked pair of groups while its mean cosine reaches the threshold."""
        while heap:
            _, a, b, va, vb = heapq.heappop(heap)
            if self._version[a] != va or self._version[b] != vb or not self._sizes[a] or not self._sizes[b]:
                continue  # one of them has changed since: its current links are queued already
            if self._fixed[a] and self._fixed[b]:
                continue
            if self._fixed[b] or (self._sizes[a] < self._sizes[b] and not self._fixed[a]):
                a, b = b, a  # the survivor keeps its id: the fixed one, else the larger
            self._sums[a] += self._sums[b]
            self._sizes[a] += self._sizes[b]
            self._sizes[b] = 0
            self._version[a] += 1
            moved = self._members.pop(b)
            self._group[moved] = a
            self._members[a].extend(moved)
            for c in self._adjacent.pop(b):
                if c != a:
                    self._adjacent[c].discard(b)
                    self._adjacent[c].add(a)
                    self._adjacent[a].add(c)
            self._adjacent[a].discard(b)
            self._sums[b] = 0.0
            adjacent = np.fromiter(self._adjacent[a], np.int64, len(self._adjacent[a]))
            if len(adjacent):
                links = self._evidence(a, adjacent)
                for c, link in zip(adjacent[links >= self.threshold], links[links >= self.threshold]):
                    self._push(heap, a, int(c), float(link))


def background_cosine(embeddings: np.ndarray) -> float:
    """The mean cosine between two different faces of a set (nearly all pairs are two people: no labels
    needed), from the sum vector alone."""
    unit = normalize(np.asarray(embeddings, np.float32)).astype(np.float64)
    n, total = len(unit), unit.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1))) if n > 1 else 0.0


def cluster_embeddings(
    embeddings: np.ndarray, threshold: float, k: int = DEFAULT_K, min_size: int = 1, pooling: Pooling | None = None
) -> np.ndarray:
    """Each face's group number (0, 1, ... by group size), or -1 for a face in a group under `min_size`."""
    clustering = Clustering(threshold, k, pooling)
    clustering.add(embeddings)
    labels = np.full(len(clustering), -1, np.int64)
    for number, group in enumerate(clustering.groups(min_size)):
        labels[group.members] = number
    return labels
