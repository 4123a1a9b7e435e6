"""The embedded gallery: one SQLite file (WAL) holding people and faces, a FAISS index file beside it.

SQLite is the truth; the index is derived (`gallery/sync.py`). Every write is one transaction that also bumps a
generation counter, and the index is updated only after the commit, so it can lag the database (a
crash, another process writing) but never hold a face the database does not. Before every search
the index catches up (`DerivedIndex.sync`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rnnface.errors import GalleryError, GalleryUnavailableError, NoGalleryError, ReadOnlyGalleryError
from rnnface.gallery.base import FaceHits, Gallery, backends
from rnnface.gallery.index import CANDIDATES, KINDS, FaceIndex, Stamp
from rnnface.gallery.records import (
    FaceRecord,
    GroupName,
    Match,
    NewGroup,
    PersonInfo,
    StoredFace,
    check_face_ids,
    check_name,
    new_faces,
    no_such_person,
    number_new_groups,
)
from rnnface.gallery.sync import DerivedIndex
from rnnface.io.paths import OutputError, check_output, remove_stale_temporaries
from rnnface.similarity import normalize

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, template BLOB NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused, so the index can catch up by id
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL, model TEXT NOT NULL, source TEXT NOT NULL, box TEXT, crop BLOB, cues BLOB,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id);
"""
_TABLES = {"meta", "people", "faces"}


#: A stored face as `_stored_face` reads it.
_FACE_ROWS = (
    "SELECT f.id, p.name, f.embedding, f.source, f.box, f.crop, f.cues FROM faces f JOIN people p ON p.id = f.person_id"
)


def _chunks(ids: list[int], size: int = 900) -> Iterator[list[int]]:
    """`ids` in runs short enough to bind (SQLite caps bound parameters)."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _row_id(cursor: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just made."""
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _writable(path: Path) -> bool:
    """Whether this process may change `path` and make files beside it (SQLite's -wal and -shm)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _read_only_uri(path: Path) -> str:
    """How to open a gallery this process may not write: immutable=1, so SQLite creates nothing beside it (not even
    a -shm file, which a reader without write access would leave owned by them, breaking the owner's gallery)."""
    return f"{path.resolve().as_uri()}?mode=ro&immutable=1"


def _refuse_foreign(path: Path) -> None:
    """GalleryError, without writing a byte, unless `path` is new, empty, an empty SQLite database or an rnnface
    gallery."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        uri = f"{path.resolve().as_uri()}?mode=ro" if _writable(path) else _read_only_uri(path)
        db = sqlite3.connect(uri, uri=True)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} - {
                "sqlite_sequence"
            }
            if not tables:
                return
            if tables != _TABLES:
                raise GalleryError(
                    f"{path}: not an rnnface gallery (an SQLite database with tables {', '.join(sorted(tables))}); "
                    "left unchanged"
                )
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise GalleryError(f"{path}: not an rnnface gallery ({exc}); left unchanged") from None
    if meta.get("schema") != SCHEMA_VERSION or "uid" not in meta:
        raise GalleryError(
            f"{path}: gallery schema {meta.get('schema')!r}, this rnnface reads {SCHEMA_VERSION!r}; left unchanged"
        )


#: Generations whose tokens a gallery keeps: an index older than this many writes is rebuilt, not caught up.
TOKENS_KEPT = 1000


@backends.register("sqlite")
class SqliteGallery(Gallery):
    """SQLite (WAL, one transaction per enrollment) + FAISS. `location` is the .db path; `bulk`: a bulk load,
    whose index is built by the first search (of this or a later session) instead of on close. A new gallery's
    file is made by its first write, so a refused enrollment or a read leaves nothing behind."""

    def __init__(
        self,
        location: str,
        *,
        index: str = "auto",
        bulk: bool = False,
        create: bool = True,
        busy_timeout_s: float = 60.0,
    ) -> None:
        path = Path(location.removeprefix("sqlite://"))
        self.location = str(path)
        self.path = path
        self._identity: tuple[int, int] | None = None  # set once the file is open and set up
        self.index_path = path.with_name(path.name + ".faiss")
        if index != "auto" and index not in KINDS:
            raise GalleryError(f"{path}: unknown index kind {index!r}; choose auto or one of {', '.join(KINDS)}")
        self.index_kind = index
        self.bulk = bulk
        self._busy_timeout_s = busy_timeout_s
        if path.is_dir():
            raise GalleryError(f"{path}: is a directory, expected a gallery file")
        if self.index_path.is_dir():
            raise GalleryError(
                f"{self.index_path}: is a directory, where the gallery keeps its index file; move it away"
            )
        _refuse_foreign(path)  # before anything is written: another program's file stays byte-for-byte as it was
        self._pending = not path.exists()  # no file yet: an empty in-memory stand-in until the first write
        if self._pending and not create:
            raise NoGalleryError(f"{path}: no gallery here (nothing enrolled yet, or a mistyped --gallery path)")
        if self._pending:
            try:  # a new gallery: its folder must take a file (made at the first write)
                check_output(path, "gallery", parents=True)
            except OutputError as exc:
                raise GalleryError(str(exc)) from None
        # A gallery we may not write (read-only file or folder) still answers every read; writes say why not.
        self.read_only = path.exists() and not _writable(path)
        self.derived = DerivedIndex(lambda: self.db, self.index_path, index, self._decode, self.location)
        if not self.read_only:
            remove_stale_temporaries(self.index_path)  # left by index saves that were killed
        self._enrolled = False  # this session added faces: bring the index file up to date on close
        self._open()

    def _open(self) -> None:
        """Connect to the file (or, for a gallery not made yet, to an empty in-memory stand-in) and check it."""
        try:
            self._connect(self.path, self._busy_timeout_s)
            schema = self._meta("schema")
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.path}: not an rnnface gallery ({exc})") from None
        if schema != SCHEMA_VERSION:
            raise GalleryError(f"{self.path}: gallery schema {schema!r}, this rnnface reads {SCHEMA_VERSION!r}")
        # Stored face embeddings and templates: float16 (1 KB a face at 512-d; cosines within 1e-6 of float32)
        # in galleries made since, float32 in older ones.
        self._dtype = np.dtype(self._meta("vectors") or "float32")
        if not self._pending:
            stat = os.stat(self.location)
            self._identity = (stat.st_dev, stat.st_ino)  # the file opened: noticed if it is deleted or replaced

    def _connect(self, path: Path, busy_timeout_s: float) -> None:
        """Open the database: read-only as it is, or read-write (WAL) with the schema created when new."""
        options: dict[str, Any] = {"timeout": busy_timeout_s, "isolation_level": None, "check_same_thread": False}
        if self.read_only:
            self._db = sqlite3.connect(_read_only_uri(path), uri=True, **options)
            return
        self._db = sqlite3.connect(":memory:" if self._pending else path, **options)
        self._db.execute("PRAGMA page_size=16384")  # takes effect only on a new file: ~1 KB rows pack 15 to a page
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")  # removed biometric data is overwritten, not just unlinked
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            if self._meta("schema") is None:  # a new gallery: half-precision embeddings (older ones keep float32)
                self._db.execute("INSERT INTO meta VALUES ('vectors', 'float16')")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('uid', ?)", (uuid.uuid4().hex,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _materialize(self) -> None:
        """Open the gallery's file instead of the empty stand-in: made by this gallery's first write, or by
        another gallery of the same file (another process or thread) meanwhile."""
        self._db.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _refuse_foreign(self.path)  # another program may have put a file there meanwhile
        self._pending = False
        self._open()

    @property
    def db(self) -> sqlite3.Connection:
        """The connection; a gallery not made yet switches to its file as soon as the file exists (between
        transactions, never inside one)."""
        if self._pending and not self._db.in_transaction and self.path.exists():
            self._materialize()
        return self._db

    # -- storage -------------------------------------------------------------------------------

    def _same_file(self) -> bool:
        if self._identity is None:
            return True
        try:
            stat = os.stat(self.location)
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino) == self._identity

    def check_open(self) -> None:
        if not self._same_file():
            raise GalleryUnavailableError(
                f"{self.location}: the gallery file was deleted or replaced while in use; nothing more is written to "
                "it (reopen it)"
            )

    @contextmanager
    def _write(self) -> Iterator[None]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so concurrent writers queue, not fail."""
        self.check_open()  # never write into an unlinked file, or into one another process put in its place
        if self.read_only:
            raise ReadOnlyGalleryError(
                f"{self.location}: the gallery is read-only (no permission to write it); reads still work"
            )
        if self._pending:
            self._materialize()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: object) -> None:
        self.db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, str(value))
        )

    def _bump(self, counter: str | None = None) -> None:
        """A new generation (with a random token of its own, written in the same transaction as the change, so a
        database restored from a backup is never mistaken for the one an index was made from); `counter`, if
        given ("removals" or "rebuilds"), counts the kind of change the index must learn of."""
        generation = int(self._meta("generation") or 0) + 1
        self._set_meta("generation", generation)
        self._set_meta(f"token:{generation}", uuid.uuid4().hex)
        self.db.execute("DELETE FROM meta WHERE key = ?", (f"token:{generation - TOKENS_KEPT}",))
        if counter is not None:
            self._set_meta(counter, int(self._meta(counter) or 0) + 1)

    @property
    def model_id(self) -> str | None:
        return self._meta("model")

    @property
    def dim(self) -> int | None:
        dim = self._meta("dim")
        return int(dim) if dim else None

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]

    def _encode(self, embedding: np.ndarray) -> bytes:
        return normalize(embedding).astype(self._dtype).tobytes()

    def _decode(self, blobs: Sequence[bytes]) -> np.ndarray:
        """(N, D) float32 from stored embedding blobs."""
        return normalize(np.frombuffer(b"".join(blobs), dtype=self._dtype).reshape(len(blobs), -1))

    def _update_template(self, person_id: int) -> None:
        rows = self.db.execute("SELECT embedding FROM faces WHERE person_id = ?", (person_id,)).fetchall()
        template = self._decode([r[0] for r in rows]).sum(0)
        self.db.execute("UPDATE people SET template = ? WHERE id = ?", (self._encode(template), person_id))

    def enroll_many(self, batch: Sequence[tuple[GroupName, Sequence[FaceRecord]]], model_id: str) -> list[list[int]]:
        out: list[list[int]] = []
        with self._write():
            self.check_model(model_id)  # inside the transaction: no other writer can set a different model meanwhile
            batch = number_new_groups(batch, self._names())  # inside it too: no other writer takes the numbers
            dim = self.check_batch(batch, self.dim)
            if self.model_id is None:
                self._set_meta("model", model_id)
                self._set_meta("dim", dim)
            now = time.time()
            for name, faces in batch:
                row = self.db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
                if row is None:
                    faces = new_faces(faces)
                    cur = self.db.execute(
                        "INSERT INTO people (name, template, created) VALUES (?, ?, ?)", (name, b"", now)
                    )
                    person_id = _row_id(cur)
                else:
                    person_id = row[0]
                    stored = self.db.execute("SELECT embedding FROM faces WHERE person_id = ?", (person_id,)).fetchall()
                    faces = new_faces(faces, self._decode([r[0] for r in stored]))
                ids = []
                for f in faces:
                    cur = self.db.execute(
                        "INSERT INTO faces (person_id, embedding, model, source, box, crop, cues, created) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            person_id,
                            self._encode(f.embedding),
                            model_id,
                            f.source,
                            json.dumps([round(float(v), 2) for v in f.box]) if f.box is not None else None,
                            f.crop_png,
                            None if f.cues is None else np.asarray(f.cues, np.float32).tobytes(),
                            now,
                        ),
                    )
                    ids.append(_row_id(cur))
                if ids:
                    self._update_template(person_id)
                out.append(ids)
            self._bump()
        self._enrolled = True
        return out

    def remove(self, name: str) -> int:
        with self._write():
            row = self.db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise no_such_person(self.location, name)
            n = self.db.execute("DELETE FROM faces WHERE person_id = ?", (row[0],)).rowcount
            self.db.execute("DELETE FROM people WHERE id = ?", (row[0],))
            self._forget_model_if_empty()
            self._bump("removals")
        self._sync()  # a removed face leaves the index now (marked removed: no rebuild), not at the next search
        return n

    def rename(self, old: str, new: str) -> int:
        check_name(new)
        with self._write():
            row = self.db.execute("SELECT id FROM people WHERE name = ?", (old,)).fetchone()
            if row is None:
                raise no_such_person(self.location, old)
            n = self.db.execute("SELECT COUNT(*) FROM faces WHERE person_id = ?", (row[0],)).fetchone()[0]
            if old == new:
                return n
            target = self.db.execute("SELECT id FROM people WHERE name = ?", (new,)).fetchone()
            if target is None:
                self.db.execute("UPDATE people SET name = ? WHERE id = ?", (new, row[0]))
            else:
                self.db.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (target[0], row[0]))
                self.db.execute("DELETE FROM people WHERE id = ?", (row[0],))
                self._update_template(target[0])
            self._bump()
        return n

    def remove_faces(self, ids: Sequence[int]) -> int:
        with self._write():
            owners = self._owners(ids)
            for chunk in _chunks(sorted(owners)):
                self.db.execute(f"DELETE FROM faces WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            self._retemplate(set(owners.values()))
            self._forget_model_if_empty()
            self._bump("removals")
        self._sync()
        return len(owners)

    def _names(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT name FROM people")]

    def move_to_new_group(self, ids: Sequence[int]) -> str:
        with self._write():
            ((label, _),) = number_new_groups([(NewGroup(0), ())], self._names())
            self._move(ids, label)
        return label

    def move_faces(self, ids: Sequence[int], to: str) -> int:
        check_name(to)
        with self._write():
            return self._move(ids, to)

    def _move(self, ids: Sequence[int], to: str) -> int:
        """`move_faces` inside the caller's write transaction."""
        owners = self._owners(ids)
        row = self.db.execute("SELECT id FROM people WHERE name = ?", (to,)).fetchone()
        target = (
            row[0]
            if row
            else _row_id(
                self.db.execute("INSERT INTO people (name, template, created) VALUES (?, ?, ?)", (to, b"", time.time()))
            )
        )
        moving = sorted(f for f, person in owners.items() if person != target)
        for chunk in _chunks(moving):
            self.db.execute(
                f"UPDATE faces SET person_id = ? WHERE id IN ({','.join('?' * len(chunk))})", (target, *chunk)
            )
        self._retemplate({*owners.values(), target})
        self._bump()
        return len(moving)

    def _forget_model_if_empty(self) -> None:
        if not self.db.execute("SELECT 1 FROM faces LIMIT 1").fetchone():
            self.db.execute("DELETE FROM meta WHERE key IN ('model', 'dim')")  # empty again: any model may start it

    def _owners(self, ids: Sequence[int]) -> dict[int, int]:
        """Face id -> person id for these stored faces; UnknownFaceError if one is not stored."""
        wanted = sorted({int(i) for i in ids})
        owners: dict[int, int] = {}
        for chunk in _chunks(wanted):
            query = f"SELECT id, person_id FROM faces WHERE id IN ({','.join('?' * len(chunk))})"
            owners.update(self.db.execute(query, chunk).fetchall())
        check_face_ids(self.location, set(wanted), set(owners))
        return owners

    def _retemplate(self, people: set[int]) -> None:
        """Recompute these people's templates; one left without faces is deleted."""
        for person_id in people:
            if self.db.execute("SELECT 1 FROM faces WHERE person_id = ? LIMIT 1", (person_id,)).fetchone():
                self._update_template(person_id)
            else:
                self.db.execute("DELETE FROM people WHERE id = ?", (person_id,))

    def replace_embeddings(self, model_id: str, embeddings: dict[int, np.ndarray]) -> None:
        with self._write():
            ids = [r[0] for r in self.db.execute("SELECT id FROM faces")]
            if set(ids) != set(embeddings):
                raise GalleryError(f"{self.location}: changed while re-embedding; run reindex again")
            dims = {np.asarray(e).shape[0] for e in embeddings.values()}
            for face_id, e in embeddings.items():
                self.db.execute(
                    "UPDATE faces SET embedding = ?, model = ? WHERE id = ?", (self._encode(e), model_id, face_id)
                )
            for (person_id,) in self.db.execute("SELECT id FROM people").fetchall():
                self._update_template(person_id)
            self._set_meta("model", model_id)
            self._set_meta("dim", dims.pop() if dims else self.dim)
            self._bump("rebuilds")
        self._sync()

    def people(self) -> list[PersonInfo]:
        rows = self.db.execute(
            "SELECT p.name, COUNT(f.id), COUNT(f.crop) FROM people p LEFT JOIN faces f ON f.person_id = p.id GROUP "
            "BY p.id ORDER BY p.name"
        )
        return [PersonInfo(name, n, kept) for name, n, kept in rows]

    def faces(self, person: str | None = None) -> Iterator[StoredFace]:
        query = _FACE_ROWS
        args: tuple = ()
        if person is not None:
            query, args = query + " WHERE p.name = ?", (person,)
        cursor = self.db.execute(query + " ORDER BY f.id", args)
        while rows := cursor.fetchmany(1000):  # a million faces are read a thousand at a time, not all at once
            yield from (self._stored_face(*row) for row in rows)

    def faces_by_id(self, ids: Sequence[int]) -> list[StoredFace]:
        wanted = sorted({int(i) for i in ids})
        found: list[StoredFace] = []
        for chunk in _chunks(wanted):
            query = f"{_FACE_ROWS} WHERE f.id IN ({','.join('?' * len(chunk))}) ORDER BY f.id"
            found += [self._stored_face(*row) for row in self.db.execute(query, chunk)]
        check_face_ids(self.location, set(wanted), {f.id for f in found})
        return found

    def _stored_face(
        self, fid: int, name: str, emb: bytes, source: str, box: str | None, crop: bytes | None, cues: bytes | None
    ) -> StoredFace:
        return StoredFace(
            fid,
            name,
            self._decode([emb])[0],
            source,
            tuple(json.loads(box)) if box else None,
            crop,
            None if cues is None else np.frombuffer(cues, dtype=np.float32).copy(),
        )

    def set_template(self, name: str, template: np.ndarray) -> None:
        with self._write():
            cur = self.db.execute("UPDATE people SET template = ? WHERE name = ?", (self._encode(template), name))
            if cur.rowcount == 0:
                raise no_such_person(self.location, name)
            self._bump()

    def templates(self) -> dict[str, np.ndarray]:
        rows = self.db.execute("SELECT name, template FROM people ORDER BY name").fetchall()
        return {name: self._decode([t])[0] for name, t in rows}

    def _search_templates(self, queries: np.ndarray, k: int) -> list[list[Match]]:
        self.db.execute("BEGIN")  # one snapshot: another process may empty or refill the gallery meanwhile
        try:
            dim = self.dim
            rows = self.db.execute("SELECT name, template FROM people").fetchall()
        finally:
            self.db.execute("COMMIT")
        self.check_query(queries, dim if rows else None)
        names = [r[0] for r in rows]
        sims = queries @ self._decode([r[1] for r in rows]).T
        order = np.argsort(-sims, axis=1)[:, :k]
        return [[Match(names[j], float(sims[q, j])) for j in row] for q, row in enumerate(order)]

    def _sync(self, rebuild: bool = False) -> tuple[FaceIndex | None, Stamp | None]:
        return self.derived.sync(rebuild)

    def _search_faces(self, queries: np.ndarray, k: int) -> list[FaceHits]:
        index, stamp = self._sync()  # the index and its dimension as of one snapshot
        self.check_query(queries, stamp.dim if stamp is not None else None)
        assert index is not None  # check_query refuses a search of an empty gallery
        sims, ids = index.search(queries, k, candidates=CANDIDATES)
        wanted = sorted({int(i) for i in ids.ravel() if i >= 0})
        person_of, source_of = {}, {}
        for chunk in _chunks(wanted):
            marks = ",".join("?" * len(chunk))
            join = "SELECT f.id, p.name, f.source FROM faces f JOIN people p ON p.id = f.person_id"
            query = f"{join} WHERE f.id IN ({marks})"
            for fid, name, source in self.db.execute(query, chunk):
                person_of[fid], source_of[fid] = name, source
        return [FaceHits(s, i, person_of, source_of) for s, i in zip(sims, ids)]

    def tune(self, breadth: int) -> None:
        index, _ = self._sync()
        if index is not None:
            index.set_breadth(breadth)

    def rebuild_index(self) -> None:
        self._sync(rebuild=True)

    def disk_bytes(self) -> int:
        paths = [self.path, self.index_path, *self.path.parent.glob(self.path.name + "-*")]
        return sum(p.stat().st_size for p in paths if p.is_file())

    def drop(self) -> None:
        self.close()
        for p in [self.path, self.index_path, *self.path.parent.glob(self.path.name + "-*")]:
            p.unlink(missing_ok=True)

    def flush(self) -> None:
        """Save the index file if it changed (it is rebuilt from SQLite whenever missing or stale)."""
        if self.read_only or not self._same_file():
            return  # the index stays in memory (and nothing is written beside a file that is gone)
        if self.derived.dirty:
            self.derived.save()
        elif self.model_id is None and self.index_path.exists():
            self.index_path.unlink()

    def close(self) -> None:
        try:
            if (
                not self._pending
                and self.model_id is not None
                and ((self._enrolled and not self.bulk) or self.derived.index is not None)
            ):
                self._sync()
            if not self._pending:
                self.flush()
        finally:
            self._db.close()
