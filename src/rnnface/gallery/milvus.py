"""The scale backend: the same Gallery on Milvus (a server or cluster, or Milvus Lite in one local file).

`milvus://HOST:PORT/COLLECTION` talks to a server; `milvus:PATH.db` (optionally `#COLLECTION`) runs
Milvus Lite in-process. Faces live in COLLECTION (one row per face, the model id on every row) and
per-person templates in COLLECTION_people.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np

from rnnface.errors import GalleryError, UnknownPersonError, EmptyGalleryError
from rnnface.gallery.base import FaceRecord, Gallery, Match, PersonInfo, SearchBy, StoredFace, backends, new_faces, normalize, rank_people

DEFAULT_COLLECTION = "faces"
_MAX_TEXT = 65_535
_FACES_PER_PERSON = 8
_FIELDS = ["id", "person", "model", "source", "box", "crop", "cues", "vec"]


def _literal(text: str) -> str:
    """A Milvus filter string literal (JSON escaping is what its expression parser accepts)."""
    return json.dumps(text)


@backends.register("milvus")
class MilvusGallery(Gallery):
    """Gallery on Milvus via pymilvus. Writes of one enrollment go in one insert call."""

    def __init__(self, location: str, index: str = "auto") -> None:
        from pymilvus import MilvusClient  # only when this backend is used

        parts = urlsplit(location)
        if parts.netloc:  # milvus://host:port/collection
            uri, collection = f"http://{parts.netloc}", parts.path.strip("/") or DEFAULT_COLLECTION
            self.lite = False
        else:  # milvus:path/to/file.db#collection
            uri, collection = parts.path, parts.fragment or DEFAULT_COLLECTION
            self.lite = True
            if not uri.endswith(".db"):
                raise GalleryError(f"{location}: a Milvus Lite gallery is a file ending in .db (milvus:PATH.db)")
        # Milvus Lite has no server clock; pymilvus warns about it on every paged query.
        logging.getLogger("pymilvus").setLevel(logging.ERROR)
        self.location = location
        self.collection = collection
        self.people_collection = f"{collection}_people"
        self.index_type = ("FLAT" if self.lite else "HNSW") if index == "auto" else index.upper()
        try:
            self.client = MilvusClient(uri)
        except Exception as exc:  # connection and file errors come as many types
            raise GalleryError(f"{location}: cannot open Milvus ({type(exc).__name__}: {exc})") from None

    def _exists(self) -> bool:
        return self.client.has_collection(self.collection)

    def _create(self, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("person", DataType.VARCHAR, max_length=256)
        schema.add_field("model", DataType.VARCHAR, max_length=128)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("box", DataType.VARCHAR, max_length=128)
        schema.add_field("crop", DataType.VARCHAR, max_length=_MAX_TEXT)
        schema.add_field("cues", DataType.VARCHAR, max_length=256)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
        params = self.client.prepare_index_params()
        params.add_index(field_name="vec", index_type=self.index_type, metric_type="IP")
        self.client.create_collection(self.collection, schema=schema, index_params=params, consistency_level="Strong")
        people = MilvusClient.create_schema(auto_id=False)
        people.add_field("name", DataType.VARCHAR, max_length=256, is_primary=True)
        people.add_field("faces", DataType.INT64)
        people.add_field("template", DataType.FLOAT_VECTOR, dim=dim)
        pparams = self.client.prepare_index_params()
        pparams.add_index(field_name="template", index_type="FLAT", metric_type="IP")
        self.client.create_collection(self.people_collection, schema=people, index_params=pparams, consistency_level="Strong")

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

    def enroll_many(self, batch: Sequence[tuple[str, Sequence[FaceRecord]]], model_id: str) -> list[list[int]]:
        if self._exists():
            self.check_model(model_id)
        dim = self.check_batch(batch, self.dim)
        if not self._exists():
            self._create(dim)
        batch = [(name, new_faces(faces, self._stored_embeddings(name))) for name, faces in batch]
        rows = []
        for name, faces in batch:
            for f in faces:
                crop = base64.b64encode(f.crop_png).decode() if f.crop_png else ""
                if len(crop) > _MAX_TEXT:
                    raise GalleryError(f"{name}: aligned crop too large to keep in Milvus ({len(crop)} bytes)")
                box = json.dumps([round(float(v), 2) for v in f.box]) if f.box is not None else ""
                cues = json.dumps([round(float(v), 5) for v in f.cues]) if f.cues is not None else ""
                rows.append(
                    {"person": name, "model": model_id, "source": f.source[:4096], "box": box, "crop": crop, "cues": cues, "vec": normalize(f.embedding).tolist()}
                )
        ids = list(self.client.insert(self.collection, rows)["ids"]) if rows else []
        self._update_templates([name for name, faces in batch if faces])
        out, start = [], 0
        for _, faces in batch:
            out.append([int(i) for i in ids[start : start + len(faces)]])
            start += len(faces)
        return out

    def _stored_embeddings(self, name: str) -> np.ndarray | None:
        rows = self._query(f"person == {_literal(name)}", ["vec"])
        return np.asarray([r["vec"] for r in rows], np.float32) if rows else None

    def _update_templates(self, names: list[str]) -> None:
        """Recompute the mean template of each named person from their stored faces."""
        names = sorted(set(names))
        for start in range(0, len(names), 1000):
            chunk = names[start : start + 1000]
            vecs: dict[str, list] = {}
            for r in self._query(f"person in {json.dumps(chunk)}", ["person", "vec"]):
                vecs.setdefault(r["person"], []).append(r["vec"])
            rows = [
                {"name": name, "faces": len(v), "template": normalize(np.asarray(v, dtype=np.float32).sum(0)).tolist()}
                for name, v in vecs.items()
            ]
            if rows:
                self.client.upsert(self.people_collection, rows)

    def _query(self, expr: str, fields: list[str]) -> list[dict]:
        it = self.client.query_iterator(self.collection, batch_size=1000, filter=expr, output_fields=fields)
        rows = []
        while batch := it.next():
            rows.extend(batch)
        it.close()
        return rows

    def remove(self, name: str) -> int:
        expr = f"person == {_literal(name)}"
        n = int(self.client.query(self.collection, filter=expr, output_fields=["count(*)"])[0]["count(*)"]) if self._exists() else 0
        if not n:
            raise UnknownPersonError(f"{self.location}: no person named {name!r} (see `rnnface people`)")
        self.client.delete(self.collection, filter=expr)
        self.client.delete(self.people_collection, filter=f"name == {_literal(name)}")
        return n

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
            box = tuple(json.loads(r["box"])) if r["box"] else None
            crop = base64.b64decode(r["crop"]) if r["crop"] else None
            cues = np.asarray(json.loads(r["cues"]), np.float32) if r["cues"] else None
            yield StoredFace(int(r["id"]), r["person"], np.asarray(r["vec"], dtype=np.float32), r["source"], box, crop, cues)

    def set_template(self, name: str, template: np.ndarray) -> None:
        rows = self.client.query(self.people_collection, filter=f"name == {_literal(name)}", output_fields=["faces"]) if self._exists() else []
        if not rows:
            raise UnknownPersonError(f"{self.location}: no person named {name!r} (see `rnnface people`)")
        self.client.upsert(self.people_collection, [{"name": name, "faces": rows[0]["faces"], "template": normalize(template).tolist()}])

    def templates(self) -> dict[str, np.ndarray]:
        if not self._exists():
            return {}
        rows = self.client.query(self.people_collection, filter='name != ""', output_fields=["name", "template"])
        return {r["name"]: np.asarray(r["template"], dtype=np.float32) for r in sorted(rows, key=lambda r: r["name"])}

    def search(self, queries: np.ndarray, top_k: int = 5, by: SearchBy = "face") -> list[list[Match]]:
        queries = normalize(np.atleast_2d(queries))
        dim = self.dim
        if dim is None:
            raise EmptyGalleryError(f"{self.location}: the gallery is empty; enroll people first (rnnface enroll)")
        if queries.shape[1] != dim:
            raise GalleryError(f"query of dimension {queries.shape[1]}, the gallery holds {dim}")
        if by == "template":
            hits = self.client.search(self.people_collection, data=queries.tolist(), limit=top_k, anns_field="template", output_fields=["name"])
            return [[Match(h["entity"]["name"], float(h["distance"])) for h in row] for row in hits]
        hits = self.client.search(
            self.collection, data=queries.tolist(), limit=min(16384, top_k * _FACES_PER_PERSON), anns_field="vec", output_fields=["person", "source"]
        )
        out = []
        for row in hits:
            person_of = {int(h["id"]): h["entity"]["person"] for h in row}
            source_of = {int(h["id"]): h["entity"]["source"] for h in row}
            out.append(rank_people(np.array([h["distance"] for h in row]), np.array([h["id"] for h in row]), person_of, top_k, source_of))
        return out

    def close(self) -> None:
        self.client.close()
