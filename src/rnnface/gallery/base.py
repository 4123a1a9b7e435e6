"""The Gallery interface: people, their stored face embeddings, and 1:N search over them.

A gallery holds embeddings of exactly one model (`model_id`); it refuses to mix spaces. The base
class owns everything that is the same for every backend (query validation, ranking people from
face hits, export and import); a backend (SQLite + FAISS embedded, Milvus for scale) implements
storage and the nearest-neighbour lookups, and registers under the URI scheme it claims.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from rnnface.errors import EmptyGalleryError, GalleryError, ModelMismatchError, NoGalleryError
from rnnface.gallery.archive import read_archive, write_archive
from rnnface.gallery.records import (
    FACES_PER_PERSON,
    SAME_IMAGE_COSINE,
    FaceRecord,
    GroupName,
    Match,
    NewGroup,
    PersonInfo,
    SearchBy,
    StoredFace,
    check_name,
    is_unnamed,
    no_such_person,
    rank_people,
)
from rnnface.io.paths import check_output
from rnnface.registry import Registry
from rnnface.similarity import normalize

#: URI scheme -> backend class; a location without a registered scheme is a SQLite file path.
backends: Registry[Gallery] = Registry("gallery backend")
DEFAULT_BACKEND = "sqlite"


@dataclass(frozen=True)
class FaceHits:
    """One query's nearest stored faces as a backend found them: similarities, face ids, and who they are."""

    sims: np.ndarray
    ids: np.ndarray
    person_of: dict[int, str]
    source_of: dict[int, str]


class Gallery(ABC):
    """Persistent 1:N face store. Use as a context manager so derived data is flushed on exit."""

    location: str  # every backend opens as Backend(location, *, index="auto", bulk=False, create=True)

    # -- storage: what each backend implements ---------------------------------------------------

    @property
    @abstractmethod
    def model_id(self) -> str | None:
        """The model whose embeddings this gallery holds (None while empty)."""

    @property
    @abstractmethod
    def dim(self) -> int | None:
        """Embedding dimension (None while empty)."""

    def _stored_model(self) -> str:
        """The model of the faces stored (to move or copy them); GalleryError when the gallery is empty."""
        model = self.model_id
        if model is None:
            raise GalleryError(f"{self.location}: the gallery is empty")
        return model

    @abstractmethod
    def enroll_many(self, batch: Sequence[tuple[GroupName, Sequence[FaceRecord]]], model_id: str) -> list[list[int]]:
        """Add faces to people (created when new), all of `batch` atomically; return the new face ids.

        Implementations call `check_model` and `check_batch`, and name each `NewGroup` (`number_new_groups`), where
        no other writer can interleave."""

    @abstractmethod
    def _search_faces(self, queries: np.ndarray, k: int) -> list[FaceHits]:
        """The `k` nearest stored faces of each unit query row, after `check_query` on the same snapshot."""

    @abstractmethod
    def _search_templates(self, queries: np.ndarray, k: int) -> list[list[Match]]:
        """The `k` nearest person templates of each unit query row, after `check_query` on the same snapshot."""

    @abstractmethod
    def people(self) -> list[PersonInfo]:
        """Everyone enrolled, by name."""

    @abstractmethod
    def remove(self, name: str) -> int:
        """Delete a person with every embedding, crop and source reference; return how many faces went."""

    @abstractmethod
    def remove_faces(self, ids: Sequence[int]) -> int:
        """Delete these stored faces (a person or group left without faces goes too); return how many went.
        GalleryError, and nothing deleted, when one of the ids is not a stored face."""

    @abstractmethod
    def faces(self, person: str | None = None) -> Iterator[StoredFace]:
        """Stored faces (of one person, or all), in enrollment order."""

    @abstractmethod
    def faces_by_id(self, ids: Sequence[int]) -> list[StoredFace]:
        """The stored faces with these ids, in id order; UnknownFaceError naming the first id that is not one."""

    @abstractmethod
    def set_template(self, name: str, template: np.ndarray) -> None:
        """Replace a person's template (by default the mean of their faces) with another pooling's."""

    @abstractmethod
    def templates(self) -> dict[str, np.ndarray]:
        """Every person's template, by name."""

    @abstractmethod
    def replace_embeddings(self, model_id: str, embeddings: dict[int, np.ndarray]) -> None:
        """Swap every face's embedding for a new model's, atomically (used by reindex)."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of stored faces."""

    # -- optional hooks ------------------------------------------------------------------------

    def check_open(self) -> None:  # noqa: B027 - optional hook, nothing to check by default
        """Raise GalleryUnavailableError if the storage opened is no longer where it was (deleted, replaced)."""

    def tune(self, breadth: int) -> None:  # noqa: B027 - optional hook for backends with a search breadth
        """How widely an approximate search looks (HNSW ef, IVF nprobe): the recall/latency trade-off."""

    def rebuild_index(self) -> None:  # noqa: B027 - optional hook for backends that derive an index themselves
        """Build the nearest-neighbour index anew now, from the stored faces (a server keeps its own)."""

    def rename(self, old: str, new: str) -> int:
        """Give every face of `old` (a person or an unnamed group) to `new`, created or joined; return how many.

        This default copies the faces, then removes `old`: interrupted between the two, the faces are in both
        (never in neither); a backend that can do it in one transaction overrides it."""
        check_name(new)
        stored = list(self.faces(old))
        if not stored:
            raise no_such_person(self.location, old)
        if old == new:
            return len(stored)
        records = [FaceRecord(f.embedding, f.source, f.box, f.crop_png, f.cues) for f in stored]
        self.enroll_many([(new, records)], self._stored_model())
        self.remove(old)
        return len(stored)

    def move_faces(self, ids: Sequence[int], to: str) -> int:
        """Give these stored faces to `to` (a person or an unnamed group, created or joined); return how many moved.

        This default copies the faces, then removes them where they were: interrupted between the two, they are
        in both (never in neither); a backend that can do it in one transaction overrides it."""
        check_name(to)
        moving = [f for f in self.faces_by_id(ids) if f.person != to]
        if moving:
            records = [FaceRecord(f.embedding, f.source, f.box, f.crop_png, f.cues) for f in moving]
            self.enroll_many([(to, records)], self._stored_model())
            self.remove_faces([f.id for f in moving])
        return len(moving)

    def move_to_new_group(self, ids: Sequence[int]) -> str:
        """Move these stored faces into a new unnamed group, numbered by the write that stores it; return its name.
        This default copies, then removes (as `move_faces`); SQLite does it in one transaction."""
        moving = self.faces_by_id(ids)
        records = [FaceRecord(f.embedding, f.source, f.box, f.crop_png, f.cues) for f in moving]
        (new_ids,) = self.enroll_many([(NewGroup(0), records)], self._stored_model())
        label = self.faces_by_id(new_ids[:1])[0].person
        self.remove_faces([f.id for f in moving])
        return label

    def disk_bytes(self) -> int:
        """Bytes this gallery occupies on local disk (0 where the data lives on a server)."""
        return 0

    def drop(self) -> None:
        """Delete the whole gallery and everything derived from it."""
        for person in self.people():
            self.remove(person.name)

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Flush derived data and release the store."""

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the same for every backend --------------------------------------------------------------

    def enroll(self, name: str, faces: Sequence[FaceRecord], model_id: str) -> list[int]:
        """Add `faces` of one person in one transaction."""
        return self.enroll_many([(name, faces)], model_id)[0]

    def search(self, queries: np.ndarray, top_k: int = 5, by: SearchBy = "face") -> list[list[Match]]:
        """For each (D,) query row: the `top_k` most similar distinct people, best first."""
        queries = normalize(np.atleast_2d(np.asarray(queries, np.float32)))
        if by == "template":
            return self._search_templates(queries, top_k)
        hits = self._search_faces(queries, top_k * FACES_PER_PERSON)
        return [rank_people(h.sims, h.ids, h.person_of, top_k, h.source_of) for h in hits]

    def entries(self, by: SearchBy = "face") -> int:
        """How many entries one search compares a query with: stored faces, or people (their templates)."""
        return len(self) if by == "face" else len(self.people())

    def check_query(self, queries: np.ndarray, dim: int | None) -> None:
        """Refuse a search of an empty gallery, or with queries of another dimension than `dim`."""
        if dim is None:
            raise EmptyGalleryError(f"{self.location}: the gallery is empty; enroll people first (rnnface enroll)")
        if queries.shape[1] != dim:
            raise GalleryError(f"query of dimension {queries.shape[1]}, the gallery holds {dim}")

    def check_model(self, model_id: str) -> None:
        """Refuse to mix embedding spaces: raise unless the gallery is empty or holds `model_id`."""
        if self.model_id is not None and self.model_id != model_id:
            raise ModelMismatchError(
                f"{self.location} holds embeddings of model {self.model_id}, but the model in use is {model_id}; "
                "use the model it was built with (--model), or `rnnface reindex` to re-embed it"
            )

    @staticmethod
    def check_batch(batch: Sequence[tuple[str, Sequence[FaceRecord]]], dim: int | None) -> int:
        """Validate names and embeddings of an enrollment; return the embedding dimension."""
        for name, faces in batch:
            check_name(name)
            if not faces:
                raise GalleryError(f"{name}: nothing to enroll (no faces)")
            for f in faces:
                e = np.asarray(f.embedding)
                if e.ndim != 1 or not np.all(np.isfinite(e)) or np.linalg.norm(e) < 1e-6:
                    raise GalleryError(f"{name}: invalid embedding (shape {e.shape}, must be a finite non-zero vector)")
                dim = dim or e.shape[0]
                if e.shape[0] != dim:
                    raise GalleryError(f"{name}: embedding of dimension {e.shape[0]}, the gallery holds {dim}")
        if dim is None:
            raise GalleryError("nothing to enroll (no faces)")
        return int(dim)

    def export(self, path: str | os.PathLike) -> int:
        """Write the whole gallery to one portable zip (see `rnnface.gallery.archive`); return faces written."""
        check_output(path, "export")  # before reading the gallery
        stored = list(self.faces())
        write_archive(path, self.model_id, self.dim, stored, self.templates())
        return len(stored)

    def import_file(self, path: str | os.PathLike) -> int:
        """Add every face of an export file (same model only), in one transaction; return faces added.

        Faces already in this gallery (e.g. from importing the same file before) are not added again. Templates
        (e.g. the recurrent aggregator's) come along for people new here; one already in this gallery keeps
        the gallery's own template of all their faces."""
        archive = read_archive(path)
        if not archive.faces:
            return 0
        if self.model_id is not None and self.model_id != archive.model:
            raise ModelMismatchError(
                f"{path}: the archive holds embeddings of model {archive.model}, and {self.location} those of "
                f"{self.model_id}; import it into a gallery of that model, or re-embed one of them (`rnnface reindex`)"
            )
        if self.dim is not None and self.dim != archive.dim:
            raise GalleryError(
                f"{path}: the archive holds {archive.dim}-d embeddings, {self.location} {self.dim}-d ones"
            )
        assert archive.model is not None  # an archive with faces names its model (checked when it was read)
        existing = {p.name for p in self.people()}
        batch = self._renumbered(archive.faces)
        added = sum(len(ids) for ids in self.enroll_many(batch, archive.model))
        for name, template in archive.templates.items():
            if name in archive.faces and name not in existing and not is_unnamed(name):
                self.set_template(name, template)
        return added

    def _renumbered(self, faces: dict[str, list[FaceRecord]]) -> list[tuple[GroupName, list[FaceRecord]]]:
        """An archive's faces with each unnamed group given its number here: the group already holding one of its
        faces (an earlier import of the same archive: nothing is added twice), else a new one numbered by the
        write. The archive's `unknown #3` and this gallery's are two strangers, never merged by their number."""
        batch: list[tuple[GroupName, list[FaceRecord]]] = []
        for key, (name, records) in enumerate(sorted(faces.items())):
            if not is_unnamed(name):
                batch.append((name, records))
                continue
            hits = self.search(np.stack([r.embedding for r in records]), top_k=1) if len(self) else []
            known = {
                row[0].person
                for row in hits
                if row and row[0].similarity >= SAME_IMAGE_COSINE and is_unnamed(row[0].person)
            }
            batch.append((min(known) if len(known) == 1 else NewGroup(key), records))
        return batch


def open_gallery(
    location: str | os.PathLike | None = None, *, index: str = "auto", bulk: bool = False, create: bool = True
) -> Gallery:
    """Open the gallery at a path (SQLite + FAISS) or a backend URI such as milvus://host:port/collection.

    None means the configured one: $RNNFACE_GALLERY, else the user's data directory. `index`: the nearest-
    neighbour index kind (backend-specific; "auto" lets the backend choose); `bulk`: a bulk load that defers
    derived data; `create=False`: a gallery that does not exist yet is a GalleryError (reading never creates one).
    """
    if location is None:
        from rnnface.settings import Settings

        location = Settings.from_env().gallery
    text = str(location)
    scheme = text.split(":", 1)[0] if ":" in text else ""
    if "://" in text and scheme not in backends:
        raise GalleryError(f"{text}: unknown gallery backend {scheme!r}; known: {', '.join(backends.names())}")
    backend = backends.get(scheme if scheme in backends else DEFAULT_BACKEND)
    return backend(text, index=index, bulk=bulk, create=create)


@contextmanager
def naming_gallery(location: str | os.PathLike | None) -> Iterator[Gallery | None]:
    """The gallery that names faces where naming is optional (video), open for the block: the one at `location`,
    else $RNNFACE_GALLERY's (a GalleryError if either cannot be opened), else the user's default one when it exists,
    else None (everyone `unknown`)."""
    from rnnface.settings import Settings, default_gallery

    try:
        gallery = open_gallery(location, create=False)
    except NoGalleryError:
        if location is not None or Settings.from_env().gallery != default_gallery():
            raise  # a gallery asked for ($RNNFACE_GALLERY too) must exist
        yield None
        return
    with gallery:
        yield gallery
