"""SQLite is the truth; the FAISS index is derived from it. `DerivedIndex` keeps one in step with the database.

Every write to the database bumps a generation counter (with a random token of its own) in the same transaction;
an index carries the stamp of the state it was made from. Before a search the index catches up: the one in memory,
else the saved file when it descends from this very database (same gallery, model, dimension and re-embedding
count, and the token the database wrote at the stamp's generation: a restored backup fails that check), else a
new build, read in chunks. Removed faces leave by id, new ones are added by id (ids are never reused).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from rnnface.errors import GalleryError
from rnnface.gallery.index import TRAIN_SAMPLE, FaceIndex, IndexCorrupt, Stamp, choose_kind

log = logging.getLogger(__name__)

_BUILD_CHUNK = 50_000


class DerivedIndex:
    """The index of a gallery database: `db` gives the connection (it may change, a new gallery's first write
    opens its file), `decode` turns stored embedding blobs into (N, D) float32; the index file is `path`."""

    def __init__(
        self,
        db: Callable[[], sqlite3.Connection],
        path: Path,
        kind: str,
        decode: Callable[[Sequence[bytes]], np.ndarray],
        location: str,
    ) -> None:
        self.db = db
        self.path = path
        self.kind = kind
        self.decode = decode
        self.location = location
        self.index: FaceIndex | None = None
        self.stamp: Stamp | None = None
        self.dirty = False  # changed since it was last saved

    def save(self) -> None:
        """Write the index file (when there is an index that changed)."""
        if self.dirty and self.index is not None and self.stamp is not None:
            self.index.save(self.path, self.stamp)
            self.dirty = False

    def _chunks(self, after: int = -1, upto: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, embeddings) of the stored faces with `after` < id <= `upto`, in id order, _BUILD_CHUNK at a time."""
        last, upto = after, 2**63 - 1 if upto is None else upto
        while True:
            rows = (
                self.db()
                .execute(
                    "SELECT id, embedding FROM faces WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                    (last, upto, _BUILD_CHUNK),
                )
                .fetchall()
            )
            if not rows:
                return
            yield np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)), self.decode([r[1] for r in rows])
            last = rows[-1][0]

    def _build(self, dim: int, requested: str) -> FaceIndex:
        """A new index of every face, read in chunks (a million faces never sit in memory as float32 at once)."""
        count = self.db().execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        kind = choose_kind(count, requested)
        log.info("building the %s index of %s from %d faces", kind, self.location, count)
        index = FaceIndex(dim, kind, count)
        if index.needs_training:
            step = max(1, count // TRAIN_SAMPLE)
            rows = self.db().execute("SELECT embedding FROM faces WHERE id % ? = 0", (step,)).fetchall()
            index.train(self.decode([r[0] for r in rows]) if rows else next(self._chunks())[1][:TRAIN_SAMPLE])
        for ids, vecs in self._chunks():
            index.add(ids, vecs)
        return index

    def _state(self) -> dict:
        """The database's state an index must match, read inside the caller's transaction."""
        meta = dict(self.db().execute("SELECT key, value FROM meta WHERE key NOT LIKE 'token:%'").fetchall())
        return {
            "gallery": meta["uid"],
            "model": meta.get("model"),
            "dim": int(meta["dim"]) if "dim" in meta else None,
            "generation": int(meta.get("generation", 0)),
            "removals": int(meta.get("removals", 0)),
            "rebuilds": int(meta.get("rebuilds", 0)),
        }

    def _token(self, generation: int) -> str:
        row = self.db().execute("SELECT value FROM meta WHERE key = ?", (f"token:{generation}",)).fetchone()
        return row[0] if row else ""

    def _descends(self, stamp: Stamp | None, state: dict) -> bool:
        """Whether an index stamped `stamp` was made from an earlier state of this very database (same gallery,
        model, dimension and re-embedding count, and the token the database wrote at the stamp's generation), so it
        can catch up by removing and adding faces. A restored backup fails the token check."""
        if stamp is None or stamp.generation > state["generation"]:
            return False
        keys = ("gallery", "model", "dim", "rebuilds")
        same = tuple(getattr(stamp, k) for k in keys) == tuple(state[k] for k in keys)
        return same and self._token(stamp.generation) == stamp.token

    def _catch_up(self, index: FaceIndex, stamp: Stamp, state: dict) -> None:
        """Bring an index that descends from this database up to it: removed faces out, new faces in."""
        if stamp.removals != state["removals"]:
            rows = self.db().execute("SELECT id FROM faces WHERE id <= ?", (stamp.max_id,))
            stored = np.fromiter((r[0] for r in rows), dtype=np.int64)
            index.remove(np.setdiff1d(index.ids(), stored, assume_unique=True))
        for ids, vecs in self._chunks(after=stamp.max_id):
            index.add(ids, vecs)

    def _from_file(self, state: dict) -> tuple[FaceIndex, Stamp] | tuple[None, None]:
        """The saved index, when it descends from this database, with the embeddings it re-ranks with read back."""
        if not self.path.exists():
            return None, None
        try:
            index, stamp = FaceIndex.load(self.path)
        except IndexCorrupt as exc:
            log.warning("%s: index file unusable (%s); rebuilding it from the database", self.path, exc)
            return None, None
        if not self._descends(stamp, state):
            return None, None
        for ids, vecs in self._chunks(upto=stamp.max_id):
            index.fill(ids, vecs)
        index.settle()  # faces removed since it was saved
        return index, stamp

    def sync(self, rebuild: bool = False) -> tuple[FaceIndex | None, Stamp | None]:
        """Bring the in-memory index up to the database: catch up the one in memory, else load the saved file and
        catch it up, else (or with `rebuild`) build anew.

        Returns the index and its stamp as of one snapshot of the database ((None, None) when it is empty), so a
        caller never mixes states while other processes write."""
        self.db().execute("BEGIN")  # a read transaction: everything below sees one snapshot of the database
        try:
            state = self._state()
            if state["model"] is None:
                self.index, self.stamp = None, None
                return None, None
            token, stamp = self._token(state["generation"]), self.stamp
            if not rebuild and stamp is not None and stamp.generation == state["generation"] and stamp.token == token:
                return self.index, stamp
            index = self.index if not rebuild and self._descends(stamp, state) else None
            if index is None and not rebuild:
                index, stamp = self._from_file(state)
            if index is not None:
                assert stamp is not None  # an index to catch up always comes with the stamp it was made at
                self._catch_up(index, stamp, state)
                if choose_kind(len(index), self.kind) != index.kind or index.dead_share > 0.25:
                    index = None  # grown past its kind, or too many removed faces to skip over
            if index is None:
                index = self._build(state["dim"], self.kind)
            max_id, count = self.db().execute("SELECT COALESCE(MAX(id), -1), COUNT(*) FROM faces").fetchone()
        finally:
            self.db().execute("COMMIT")
        if count != len(index):
            raise GalleryError(f"{self.location}: index has {len(index)} faces, database {count}; delete {self.path}")
        fields = {k: state[k] for k in ("gallery", "model", "dim", "generation", "removals", "rebuilds")}
        self.index, self.stamp = index, Stamp(kind=index.kind, max_id=max_id, count=count, token=token, **fields)
        self.dirty = True
        return self.index, self.stamp
