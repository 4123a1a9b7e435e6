"""The scale backend: the same Gallery on Milvus (a server or cluster, or Milvus Lite in one local file).

`milvus://HOST:PORT/COLLECTION` talks to a server; `milvus:PATH.db` (optionally `#COLLECTION`) runs
Milvus Lite in-process. Faces live in COLLECTION (one row per face, the model id on every row) and
per-person templates in COLLECTION_people.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from rnnface.errors import GalleryError, GalleryUnavailableError, NoGalleryError
from rnnface.gallery.base import FaceHits, Gallery, backends
from rnnface.gallery.records import (
    MAX_NAME_CHARS,
    FaceRecord,
    GroupName,
    Match,
    PersonInfo,
    StoredFace,
    check_face_ids,
    new_faces,
    no_such_person,
    number_new_groups,
)
from rnnface.similarity import normalize

DEFAULT_COLLECTION = "faces"
_MAX_TEXT = 65_535
_FIELDS = ["id", "person", "model", "source", "box", "crop", "cues", "vec"]
#: Build parameters per index type (a server refuses HNSW/IVF without them), and the search breadth.
_BUILD = {"HNSW": {"M": 32, "efConstruction": 200}, "IVF_FLAT": {"nlist": 1024}, "IVF_SQ8": {"nlist": 1024}}
_SEARCH = {"HNSW": "ef", "IVF_FLAT": "nprobe", "IVF_SQ8": "nprobe"}
HNSW_EF = 128
_PAGE = 16_384  # the most rows one query answers
IVF_NPROBE = 32


#: Seconds one call to a Milvus server may take before it counts as unreachable.
CALL_TIMEOUT_S = 60.0
#: gRPC channel options of each connection (see `_Client._connect`).
GRPC_OPTIONS = {"grpc.use_local_subchannel_pool": 1}


class _Client:
    """A pymilvus client whose failures are gallery errors naming the location: a server that cannot be
    reached is GalleryUnavailableError (and the next call connects afresh), a refused request GalleryError."""

    def __init__(self, uri: str, location: str) -> None:
        self.uri, self.location = uri, location
        self._client = None

    def _connect(self):
        from pymilvus import MilvusClient

        if self._client is None:
            with self.translated():
                # dedicated: a connection of our own, not one pymilvus shares (and keeps broken) across clients;
                # a local subchannel pool: a fresh connection, not gRPC's shared one still waiting out the backoff
                # of the attempts made while the server was away
                self._client = MilvusClient(self.uri, timeout=CALL_TIMEOUT_S, dedicated=True, grpc_options=GRPC_OPTIONS)
        return self._client

    @contextmanager
    def translated(self) -> Iterator[None]:
        """A block in which pymilvus errors become gallery errors."""
        try:
            yield
        except GalleryError:
            raise
        except Exception as exc:  # pymilvus, grpc and socket errors come as many types
            text = str(getattr(exc, "message", "") or exc)
            if _unreachable(exc, text):
                self._drop()
                raise GalleryUnavailableError(
                    f"{self.location}: the Milvus server cannot be reached ({text}); try again when it is back"
                ) from None
            raise GalleryError(f"{self.location}: Milvus refused the request ({text})") from None

    def _drop(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # a client of a server that is gone may fail to close; dropped anyway
                self._client.close()
        self._client = None

    def _call(self, method: str, *args, **kwargs):
        """One pymilvus call, its errors translated; a collection a restarted server left unloaded is loaded and
        the call made again."""
        with self.translated():
            client = self._connect()
            try:
                return getattr(client, method)(*args, **kwargs)
            except Exception as exc:
                text = str(getattr(exc, "message", "") or exc)
                if not args or not any(s in text for s in ("not loaded", "released", "load() before")):
                    raise
                client.load_collection(args[0])  # released (a restarted server, another process of Milvus Lite)
                return getattr(client, method)(*args, **kwargs)

    # The pymilvus calls the gallery makes, each through `_call`.
    def list_collections(self):
        return self._call("list_collections")

    def has_collection(self, name: str) -> bool:
        return self._call("has_collection", name)

    def create_collection(self, name: str, **kwargs) -> None:
        self._call("create_collection", name, **kwargs)

    def describe_collection(self, name: str) -> dict:
        return self._call("describe_collection", name)

    def drop_collection(self, name: str) -> None:
        self._call("drop_collection", name)

    def rename_collection(self, old: str, new: str) -> None:
        self._call("rename_collection", old, new)

    def load_collection(self, name: str) -> None:
        self._call("load_collection", name)

    def prepare_index_params(self):
        return self._call("prepare_index_params")

    def insert(self, name: str, rows: list[dict]) -> dict:
        return self._call("insert", name, rows)

    def upsert(self, name: str, rows: list[dict]) -> dict:
        return self._call("upsert", name, rows)

    def delete(self, name: str, **kwargs) -> dict:
        return self._call("delete", name, **kwargs)

    def query(self, name: str, **kwargs) -> list[dict]:
        return self._call("query", name, **kwargs)

    def query_iterator(self, name: str, **kwargs):
        return self._call("query_iterator", name, **kwargs)

    def search(self, name: str, **kwargs) -> list[list[dict]]:
        return self._call("search", name, **kwargs)

    def close(self) -> None:
        self._drop()


def _unreachable(exc: BaseException, text: str) -> bool:
    """Whether an error means the server is gone or not answering (rather than a refused request)."""
    import grpc

    if isinstance(exc, grpc.RpcError | ConnectionError | TimeoutError):
        return True
    return any(
        s in text
        for s in ("Fail connecting", "server unavailable", "UNAVAILABLE", "DEADLINE_EXCEEDED", "Connection refused")
    )


def _literal(text: str) -> str:
    """A Milvus filter string literal: the text itself between double quotes, only backslash and quote escaped.
    (JSON's \\u escapes are refused by Milvus Lite, and its surrogate pairs by the server: every character of a
    name, "Zoë" or "顔認識" or an emoji, goes in as it is.)"""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _stored_face(r: dict) -> StoredFace:
    box = tuple(json.loads(r["box"])) if r["box"] else None
    crop = base64.b64decode(r["crop"]) if r["crop"] else None
    cues = np.asarray(json.loads(r["cues"]), np.float32) if r["cues"] else None
    return StoredFace(int(r["id"]), r["person"], np.asarray(r["vec"], dtype=np.float32), r["source"], box, crop, cues)


def _literals(texts: Sequence[str]) -> str:
    return "[" + ", ".join(_literal(t) for t in texts) + "]"


#: Bytes a name field holds: 4 a character, so any name of MAX_NAME_CHARS characters fits (Milvus counts bytes).
_NAME_BYTES = 4 * MAX_NAME_CHARS
#: The fields of each collection of an rnnface gallery (anything else under our name is not ours).
_FACE_FIELDS = {"id", "person", "model", "source", "box", "crop", "cues", "vec"}
_PEOPLE_FIELDS = {"name", "faces", "template"}


@backends.register("milvus")
class MilvusGallery(Gallery):
    """Gallery on Milvus via pymilvus. Writes of one enrollment go in one insert call."""

    def __init__(self, location: str, *, index: str = "auto", bulk: bool = False, create: bool = True) -> None:
        parts = urlsplit(location)
        if parts.netloc:  # milvus://host:port/collection
            uri, collection = f"http://{parts.netloc}", parts.path.strip("/") or DEFAULT_COLLECTION
            self.lite = False
        else:  # milvus:path/to/file.db#collection
            uri, collection = parts.path, parts.fragment or DEFAULT_COLLECTION
            self.lite = True
            if not uri.endswith(".db"):
                raise GalleryError(f"{location}: a Milvus Lite gallery is a file ending in .db (milvus:PATH.db)")
        # pymilvus logs a traceback before raising each error we turn into one line, and Milvus Lite's embedded gRPC
        # server logs its own; neither is for our users.
        for name in ("pymilvus", "grpc._server"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self.location = location
        self.collection = collection
        self.people_collection = f"{collection}_people"
        self.index_type = ("FLAT" if self.lite else "HNSW") if index == "auto" else index.upper()
        self.breadth: int | None = None  # search breadth (HNSW ef, IVF nprobe); None: the defaults below
        if self.lite and not create and not Path(uri).exists():
            raise NoGalleryError(f"{location}: no gallery here (nothing enrolled yet, or a mistyped --gallery)")
        self.client = _Client(uri, location)
        present = set(self.client.list_collections())  # reachable (or the file usable) now, or a clear error now
        faces, people = self.collection in present, self.people_collection in present
        if not create and not (faces or people):
            raise NoGalleryError(f"{location}: no gallery here (nothing enrolled yet, or a mistyped --gallery)")
        for name, fields, there in (
            (self.collection, _FACE_FIELDS, faces),
            (self.people_collection, _PEOPLE_FIELDS, people),
        ):
            if there:
                found = {f["name"] for f in self.client.describe_collection(name)["fields"]}
                if found != fields:
                    raise GalleryError(
                        f"{location}: the collection {name!r} is not an rnnface collection (fields "
                        f"{', '.join(sorted(found))}); left unchanged"
                    )
                self.client.load_collection(name)  # a collection another process (or a restart) left released
        self._missing = (
            None if faces == people else f"the collection {self.people_collection if faces else self.collection!r}"
        )

    def _exists(self) -> bool:
        return self.client.has_collection(self.collection)

    def _check_whole(self) -> None:
        """GalleryError when one of the gallery's two collections is gone (dropped outside rnnface): its people and
        their templates no longer agree, so nothing is listed or named until what is left is removed."""
        if self._missing is None:
            return
        left = self.collection if self._exists() else self.people_collection
        field = "person" if left == self.collection else "name"
        rows = self.client.query(left, filter=f'{field} != ""', output_fields=[field], limit=_PAGE)
        names = sorted({r[field] for r in rows})
        shown = ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")
        raise GalleryError(
            f"{self.location}: a half-missing gallery: {self._missing} is gone; `rnnface remove` each of the people "
            f"left ({shown or 'none'}) to delete what remains of them, then enroll them again"
        )

    def _create(self, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("person", DataType.VARCHAR, max_length=_NAME_BYTES)
        schema.add_field("model", DataType.VARCHAR, max_length=128)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("box", DataType.VARCHAR, max_length=128)
        schema.add_field("crop", DataType.VARCHAR, max_length=_MAX_TEXT)
        schema.add_field("cues", DataType.VARCHAR, max_length=256)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
        params = self.client.prepare_index_params()
        params.add_index(
            field_name="vec", index_type=self.index_type, metric_type="IP", params=_BUILD.get(self.index_type, {})
        )
        if not self.client.has_collection(self.collection):
            self.client.create_collection(
                self.collection, schema=schema, index_params=params, consistency_level="Strong"
            )
        people = MilvusClient.create_schema(auto_id=False)
        people.add_field("name", DataType.VARCHAR, max_length=_NAME_BYTES, is_primary=True)
        people.add_field("faces", DataType.INT64)
        people.add_field("template", DataType.FLOAT_VECTOR, dim=dim)
        pparams = self.client.prepare_index_params()
        pparams.add_index(field_name="template", index_type="FLAT", metric_type="IP")
        if not self.client.has_collection(self.people_collection):
            self.client.create_collection(
                self.people_collection, schema=people, index_params=pparams, consistency_level="Strong"
            )
        self._missing = None

    @property
    def model_id(self) -> str | None:
        if not self._exists():
            return None
        rows = self.client.query(self.collection, filter="id >= 0", output_fields=["model"], limit=1)
        return rows[0]["model"] if rows else None

    @property
    def dim(self) -> int | None:
        if not self._exists():
            return None
        field = next(f for f in self.client.describe_collection(self.collection)["fields"] if f["name"] == "vec")
        return int(field["params"]["dim"])

    def __len__(self) -> int:
        if not self._exists():
            return 0
        return int(self.client.query(self.collection, filter="", output_fields=["count(*)"])[0]["count(*)"])

    def enroll_many(self, batch: Sequence[tuple[GroupName, Sequence[FaceRecord]]], model_id: str) -> list[list[int]]:
        self._check_whole()
        exists = self._exists()
        # Milvus has no transactions: numbers are read just before the insert (one writer per Milvus Lite file)
        batch = number_new_groups(batch, [p.name for p in self.people()] if exists else [])
        if exists:
            self.check_model(model_id)
        dim = self.check_batch(batch, self.dim if exists else None)
        if not exists:
            self._create(dim)
        # One query for the stored faces of everyone in the batch (each round trip waits for a consistent view).
        stored = self._stored_by_person([name for name, _ in batch]) if exists else {}
        rows, kept = [], []
        for name, faces in batch:
            faces = new_faces(faces, stored.get(name))
            kept.append(len(faces))
            for f in faces:
                crop = base64.b64encode(f.crop_png).decode() if f.crop_png else ""
                if len(crop) > _MAX_TEXT:
                    raise GalleryError(f"{name}: aligned crop too large to keep in Milvus ({len(crop)} bytes)")
                box = json.dumps([round(float(v), 2) for v in f.box]) if f.box is not None else ""
                cues = json.dumps([round(float(v), 5) for v in f.cues]) if f.cues is not None else ""
                rows.append(
                    {
                        "person": name,
                        "model": model_id,
                        "source": f.source[:4096],
                        "box": box,
                        "crop": crop,
                        "cues": cues,
                        "vec": normalize(f.embedding).tolist(),
                    }
                )
            if faces:
                new = np.stack([normalize(f.embedding) for f in faces])
                stored[name] = new if stored.get(name) is None else np.vstack([stored[name], new])
        ids = list(self.client.insert(self.collection, rows)["ids"]) if rows else []
        # Every person of the batch, not only those with new faces: re-running an enrollment that was cut off
        # between the two writes (Milvus has no multi-collection transaction) repairs their template.
        self._write_templates({name: stored[name] for name, _ in batch if stored.get(name) is not None})
        out, start = [], 0
        for n in kept:
            out.append([int(i) for i in ids[start : start + n]])
            start += n
        return out

    def _stored_by_person(self, names: list[str]) -> dict[str, np.ndarray]:
        """Each named person's stored face embeddings (people with none are absent)."""
        names = sorted(set(names))
        vecs: dict[str, list] = {}
        for start in range(0, len(names), 1000):
            for r in self._query(f"person in {_literals(names[start : start + 1000])}", ["person", "vec"]):
                vecs.setdefault(r["person"], []).append(r["vec"])
        return {name: np.asarray(v, np.float32) for name, v in vecs.items()}

    def _query(self, expr: str, fields: list[str]) -> list[dict]:
        """Every row matching `expr`: one round trip when they fit in one answer, else paged by an iterator."""
        rows = self.client.query(self.collection, filter=expr, output_fields=fields, limit=_PAGE)
        if len(rows) < _PAGE:
            return rows
        it = self.client.query_iterator(self.collection, batch_size=1000, filter=expr, output_fields=fields)
        rows = []
        with self.client.translated():
            while batch := it.next():
                rows.extend(batch)
            it.close()
        return rows

    def remove(self, name: str) -> int:
        """Delete the person's faces and template; a template left without faces (an enrollment cut off between
        its two writes, a collection dropped outside rnnface) is deleted too."""
        expr, key = f"person == {_literal(name)}", f"name == {_literal(name)}"
        faces, people = self._exists(), self.client.has_collection(self.people_collection)
        n = (
            int(self.client.query(self.collection, filter=expr, output_fields=["count(*)"])[0]["count(*)"])
            if faces
            else 0
        )
        template = (
            bool(self.client.query(self.people_collection, filter=key, output_fields=["name"])) if people else False
        )
        if not n and not template:
            raise no_such_person(self.location, name)
        if n:
            self.client.delete(self.collection, filter=expr)
        if people:
            self.client.delete(self.people_collection, filter=key)
        self._drop_if_emptied()
        return n

    def remove_faces(self, ids: Sequence[int]) -> int:
        """Delete the faces, then rewrite their people's templates (a person left without faces loses theirs)."""
        self._check_whole()
        stored = self.faces_by_id(ids)
        if stored:
            self.client.delete(self.collection, filter=f"id in {[f.id for f in stored]}")
            self._retemplate({f.person for f in stored})
            self._drop_if_emptied()
        return len(stored)

    def faces_by_id(self, ids: Sequence[int]) -> list[StoredFace]:
        wanted = sorted({int(i) for i in ids})
        rows = self._query(f"id in {wanted}", _FIELDS) if wanted and self._exists() else []
        check_face_ids(self.location, set(wanted), {int(r["id"]) for r in rows})
        return [_stored_face(r) for r in sorted(rows, key=lambda r: r["id"])]

    def _retemplate(self, names: set[str]) -> None:
        """Each of these people's template from the faces they have now; one with none left is deleted."""
        stored = self._stored_by_person(sorted(names))
        if gone := sorted(names - set(stored)):
            self.client.delete(self.people_collection, filter=f"name in {_literals(gone)}")
        self._write_templates(stored)

    def _write_templates(self, stored: dict[str, np.ndarray]) -> None:
        """Each person's template (the normalised sum of their stored face embeddings) and face count."""
        templates = [
            {"name": n, "faces": len(v), "template": normalize(v.sum(0)).tolist()} for n, v in sorted(stored.items())
        ]
        if templates:
            self.client.upsert(self.people_collection, templates)

    def _drop_if_emptied(self) -> None:
        """A half-missing gallery whose last remains were removed is no gallery at all any more."""
        if self._missing is None:
            return
        left = self.collection if self._exists() else self.people_collection
        if not int(self.client.query(left, filter="", output_fields=["count(*)"])[0]["count(*)"]):
            self.client.drop_collection(left)
            self._missing = None

    def replace_embeddings(self, model_id: str, embeddings: dict[int, np.ndarray]) -> None:
        stored = {f.id: f for f in self.faces()}
        if set(stored) != set(embeddings):
            raise GalleryError(f"{self.location}: changed while re-embedding; run reindex again")
        records: dict[str, list[FaceRecord]] = {}
        for fid, f in stored.items():
            records.setdefault(f.person, []).append(FaceRecord(embeddings[fid], f.source, f.box, f.crop_png, f.cues))
        # Milvus has no multi-row transaction: write the new space beside the old one, then swap names.
        live = (self.collection, self.people_collection)
        staging = (f"{self.collection}__reindex", f"{self.people_collection}__reindex")
        for name in staging:
            self.client.drop_collection(name)
        self.collection, self.people_collection = staging
        try:
            self._create(len(next(iter(embeddings.values()))))
            self.enroll_many(list(records.items()), model_id)
        finally:
            self.collection, self.people_collection = live
        for old, new in zip(live, staging):
            self.client.drop_collection(old)
            self.client.rename_collection(new, old)
            self.client.load_collection(old)

    def people(self) -> list[PersonInfo]:
        self._check_whole()
        if not self._exists():
            return []
        counts: dict[str, list[int]] = {}
        for r in self._query("id >= 0", ["person", "crop"]):
            c = counts.setdefault(r["person"], [0, 0])
            c[0] += 1
            c[1] += bool(r["crop"])
        return [PersonInfo(name, n, kept) for name, (n, kept) in sorted(counts.items())]

    def faces(self, person: str | None = None) -> Iterator[StoredFace]:
        if not self._exists():
            return
        expr = "id >= 0" if person is None else f"person == {_literal(person)}"
        for r in sorted(self._query(expr, _FIELDS), key=lambda r: r["id"]):
            yield _stored_face(r)

    def set_template(self, name: str, template: np.ndarray) -> None:
        rows = (
            self.client.query(self.people_collection, filter=f"name == {_literal(name)}", output_fields=["faces"])
            if self._exists()
            else []
        )
        if not rows:
            raise no_such_person(self.location, name)
        self.client.upsert(
            self.people_collection,
            [{"name": name, "faces": rows[0]["faces"], "template": normalize(template).tolist()}],
        )

    def templates(self) -> dict[str, np.ndarray]:
        if not self._exists():
            return {}
        rows = self.client.query(self.people_collection, filter='name != ""', output_fields=["name", "template"])
        return {r["name"]: np.asarray(r["template"], dtype=np.float32) for r in sorted(rows, key=lambda r: r["name"])}

    def _search_templates(self, queries: np.ndarray, k: int) -> list[list[Match]]:
        self._check_whole()
        self.check_query(queries, self.dim)
        hits = self.client.search(
            self.people_collection, data=queries.tolist(), limit=k, anns_field="template", output_fields=["name"]
        )
        # a template whose faces are gone (a cut-off enrollment) names nobody: identify names only people listed
        names = sorted({h["entity"]["name"] for row in hits for h in row})
        listed = {r["person"] for r in self._query(f"person in {_literals(names)}", ["person"])} if names else set()
        return [
            [Match(h["entity"]["name"], float(h["distance"])) for h in row if h["entity"]["name"] in listed]
            for row in hits
        ]

    def _search_faces(self, queries: np.ndarray, k: int) -> list[FaceHits]:
        self._check_whole()
        self.check_query(queries, self.dim)
        limit = min(16384, k)
        breadth = {"ef": max(self.breadth or HNSW_EF, limit), "nprobe": self.breadth or IVF_NPROBE}
        params = {key: breadth[key] for key in [_SEARCH.get(self.index_type)] if key}
        hits = self.client.search(
            self.collection,
            data=queries.tolist(),
            limit=limit,
            anns_field="vec",
            output_fields=["person", "source"],
            search_params={"params": params},
        )
        out = []
        for row in hits:
            person_of = {int(h["id"]): h["entity"]["person"] for h in row}
            source_of = {int(h["id"]): h["entity"]["source"] for h in row}
            out.append(
                FaceHits(np.array([h["distance"] for h in row]), np.array([h["id"] for h in row]), person_of, source_of)
            )
        return out

    def tune(self, breadth: int) -> None:
        self.breadth = breadth

    def drop(self) -> None:
        for name in (self.collection, self.people_collection):
            self.client.drop_collection(name)

    def close(self) -> None:
        self.client.close()
