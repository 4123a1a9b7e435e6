"""Galleries: the same behaviour from every backend, and the SQLite + FAISS store's durability under crashes and
concurrency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnface.errors import EmptyGalleryError, GalleryError, GalleryUnavailableError, UnknownFaceError
from rnnface.gallery import FaceRecord, open_gallery
from rnnface.gallery import index as gallery_index
from tests.gallery_worker import DIM, FACES, MODEL, embeddings_of

WORKER = Path(__file__).with_name("gallery_worker.py")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(params=["sqlite", "milvus-lite", "milvus-server"])
def location(request, tmp_path) -> str:
    """Every backend: SQLite + FAISS, Milvus Lite in a file, and a real Milvus server (a fresh collection per test)."""
    if request.param == "sqlite":
        return str(tmp_path / "gallery.db")
    pytest.importorskip("pymilvus")
    if request.param == "milvus-server":
        return request.getfixturevalue("milvus_server").location()
    return f"milvus:{tmp_path / 'milvus.db'}"


def people_faces(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Three faces per person, scattered around a person-specific centre (as photos of one face are)."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((n, 1, DIM)))
    return {
        f"person_{i:02d}": unit(centres[i] + 0.3 * rng.standard_normal((3, DIM))).astype(np.float32) for i in range(n)
    }


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()  # a kept crop


def enroll_all(gallery, people: dict[str, np.ndarray], crops: bool = False) -> None:
    for name, faces in people.items():
        gallery.enroll(
            name,
            [FaceRecord(f, f"{name}/{j}.jpg", (1, 2, 3, 4), PNG if crops else None) for j, f in enumerate(faces)],
            MODEL,
        )


def test_enroll_search_remove_round_trip(location):
    people = people_faces(12)
    with open_gallery(location) as g:
        enroll_all(g, people)
        assert len(g) == 36 and g.model_id == MODEL and g.dim == DIM
        assert [p.name for p in g.people()] == sorted(people) and all(p.faces == 3 for p in g.people())
        probes = unit(np.stack([f[1] for f in people.values()]) + 0.05)
        for by in ("face", "template"):
            results = g.search(probes, top_k=3, by=by)
            assert [r[0].person for r in results] == list(people), by
            assert all(len(r) == 3 and len({m.person for m in r}) == 3 for r in results)  # distinct people
            assert all(r[0].similarity >= r[1].similarity >= r[2].similarity for r in results)
        assert g.search(people["person_03"][0], top_k=1)[0][0].similarity == pytest.approx(1.0, abs=1e-5)
        assert g.remove("person_03") == 3
        assert "person_03" not in [p.name for p in g.people()]
        assert not list(g.faces("person_03"))
        for by in ("face", "template"):
            assert g.search(people["person_03"], top_k=11, by=by)[0][0].person != "person_03"
            assert all(m.person != "person_03" for m in g.search(people["person_03"][0], top_k=11, by=by)[0])
    with open_gallery(location) as g:  # persisted
        assert len(g) == 33 and g.search(people["person_04"][2], top_k=1)[0][0].person == "person_04"


def test_refuses_to_mix_models_and_changes_nothing(location):
    with open_gallery(location) as g:
        enroll_all(g, people_faces(2))
        with pytest.raises(GalleryError, match="holds embeddings of model test-model.*model in use is other"):
            g.enroll("intruder", [FaceRecord(np.ones(DIM, np.float32))], "other")
        with pytest.raises(GalleryError, match="dimension 8"):
            g.enroll("person_00", [FaceRecord(np.ones(8, np.float32))], MODEL)
        assert len(g) == 6 and [p.name for p in g.people()] == ["person_00", "person_01"]


def test_bad_requests_are_clear_errors(location):
    with open_gallery(location) as g:
        with pytest.raises(GalleryError, match="empty"):
            g.search(np.ones(DIM, np.float32))
        with pytest.raises(GalleryError, match="no person named 'nobody'"):
            g.remove("nobody")
        for bad in ("", " padded", "x" * 300):
            with pytest.raises(GalleryError, match="invalid person name"):
                g.enroll(bad, [FaceRecord(np.ones(DIM, np.float32))], MODEL)
        with pytest.raises(GalleryError, match="invalid embedding"):
            g.enroll("nan", [FaceRecord(np.full(DIM, np.nan, np.float32))], MODEL)
        assert len(g) == 0 and g.people() == []


def test_names_with_quotes_are_data_not_syntax(location):
    name = 'O\'Brien "the" \\ man'
    faces = people_faces(1)["person_00"]
    with open_gallery(location) as g:
        g.enroll(name, [FaceRecord(f) for f in faces], MODEL)
        g.enroll("other", [FaceRecord(-faces[0])], MODEL)
        assert g.search(faces[0], top_k=1)[0][0].person == name
        assert g.remove(name) == 3
        assert [p.name for p in g.people()] == ["other"]


def test_export_import_between_backends(tmp_path, location):
    people = people_faces(5)
    with open_gallery(location) as g:
        enroll_all(g, people, crops=True)
        assert g.export(tmp_path / "export.zip") == 15
    with open_gallery(tmp_path / "copy.db") as copy:
        assert copy.import_file(tmp_path / "export.zip") == 15
        assert [(p.name, p.faces, p.crops_kept) for p in copy.people()] == [(n, 3, 3) for n in sorted(people)]
        stored = {f.source: f for f in copy.faces()}
        assert stored["person_02/1.jpg"].crop_png == PNG and stored["person_02/1.jpg"].box == (1, 2, 3, 4)
        # the SQLite gallery stores half precision: the same direction to within 1e-6 of cosine
        assert float(stored["person_02/1.jpg"].embedding @ people["person_02"][1]) >= 1 - 1e-6
    with open_gallery(tmp_path / "other.db") as other:
        other.enroll("x", [FaceRecord(np.ones(DIM, np.float32))], "another-model")
        with pytest.raises(
            GalleryError, match="the archive holds embeddings of model test-model, and .* another-model"
        ):
            other.import_file(tmp_path / "export.zip")
        assert len(other) == 1
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with (
        open_gallery(tmp_path / "third.db") as g,
        pytest.raises(GalleryError, match="not a readable rnnface gallery export"),
    ):
        g.import_file(tmp_path / "junk.zip")


def test_reindex_swaps_the_embedding_space(location):
    people = people_faces(3)
    with open_gallery(location) as g:
        enroll_all(g, people)
        stored = list(g.faces())
        flipped = {f.id: -f.embedding[::2] for f in stored}  # a "new model" of another dimension
        g.replace_embeddings("model-2", flipped)
        assert g.model_id == "model-2" and g.dim == DIM // 2 and len(g) == 9
        probe = -people["person_01"][0][::2]
        assert g.search(probe, top_k=1)[0][0].person == "person_01"
        assert g.search(probe, top_k=1, by="template")[0][0].person == "person_01"


# -- SQLite + FAISS specifics -------------------------------------------------------------------


def test_corrupt_missing_and_stale_index_files_are_rebuilt(tmp_path):
    path = tmp_path / "g.db"
    people = people_faces(6)
    with open_gallery(path) as g:
        enroll_all(g, dict(list(people.items())[:4]))
    index_file = Path(str(path) + ".faiss")
    assert index_file.is_file()
    with open_gallery(path) as g:  # another process adds people; this file is now behind
        enroll_all(g, dict(list(people.items())[4:]))
        saved = index_file.read_bytes()
    index_file.write_bytes(saved[: len(saved) // 2])  # truncated
    for damage in ("truncated", "garbage", "missing"):
        if damage == "garbage":
            index_file.write_bytes(b"RNNFACE-FAISS/1\n" + os.urandom(400))
        if damage == "missing":
            index_file.unlink()
        with open_gallery(path) as g:
            assert g.search(people["person_05"][0], top_k=1)[0][0].person == "person_05", damage
            assert len(g.derived.index) == len(g) == 18
        assert gallery_index.FaceIndex.load(index_file)[1].count == 18  # rewritten sound


def test_an_older_index_file_catches_up_and_never_outlives_a_removal(tmp_path):
    path = tmp_path / "g.db"
    people = people_faces(4)
    with open_gallery(path) as g:
        enroll_all(g, dict(list(people.items())[:2]))
    old = Path(str(path) + ".faiss").read_bytes()
    with open_gallery(path) as g:
        enroll_all(g, dict(list(people.items())[2:]))
        g.remove("person_00")
    Path(str(path) + ".faiss").write_bytes(old)  # an index from before the removal, still holding person_00
    with open_gallery(path) as g:
        hits = g.search(people["person_00"][0], top_k=10)[0]
        assert "person_00" not in [m.person for m in hits] and len(g.derived.index) == len(g) == 9


def test_a_reader_sees_other_writers(tmp_path):
    path = tmp_path / "g.db"
    people = people_faces(3)
    with open_gallery(path) as reader, open_gallery(path) as writer:
        enroll_all(writer, {"person_00": people["person_00"]})
        assert reader.search(people["person_00"][0], top_k=1)[0][0].person == "person_00"
        enroll_all(writer, {"person_01": people["person_01"]})
        assert reader.search(people["person_01"][0], top_k=1)[0][0].person == "person_01"
        writer.remove("person_00")
        assert all(m.person != "person_00" for m in reader.search(people["person_00"][0], top_k=5)[0])


def test_index_kind_switches_to_pq_above_the_exact_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(gallery_index, "EXACT_LIMIT", 20)
    monkeypatch.setattr(gallery_index, "MIN_TRAINED", 20)
    people = people_faces(10)
    with open_gallery(tmp_path / "g.db") as g:
        enroll_all(g, dict(list(people.items())[:5]))
        g.search(people["person_00"][0])
        assert g.derived.index.kind == "flat"
        enroll_all(g, dict(list(people.items())[5:]))
        hit = g.search(people["person_07"][2], top_k=1)[0][0]
        assert hit.person == "person_07"
        assert hit.similarity == pytest.approx(1.0, abs=1e-5)  # re-ranked: exact similarities
        assert g.derived.index.kind == "pq" and len(g.derived.index) == 30
    with open_gallery(tmp_path / "g.db") as g:  # the saved PQ index loads and answers alike
        assert g.search(people["person_03"][1], top_k=1)[0][0].person == "person_03" and g.derived.index.kind == "pq"
    for kind in gallery_index.KINDS:
        with open_gallery(tmp_path / f"{kind}.db", index=kind) as g:
            enroll_all(g, people)
            assert g.search(people["person_05"][0], top_k=1)[0][0].person == "person_05"
            assert g.derived.index.kind == kind


def test_not_a_gallery_file(tmp_path):
    path = tmp_path / "random.db"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(GalleryError, match="not an rnnface gallery"):
        open_gallery(path)
    with pytest.raises(GalleryError, match="unknown gallery backend 'redis'"):
        open_gallery("redis://localhost/x")


def _foreign_files(tmp_path: Path) -> dict[str, Path]:
    import sqlite3

    files = {}
    for kind, script in {
        "unrelated table": "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); "
        "INSERT INTO invoices VALUES (1, 9.5);",
        "meta of another shape": "CREATE TABLE meta (k TEXT, v TEXT, extra INT); CREATE TABLE people (x); "
        "CREATE TABLE faces (y);",
        "schema 0": "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); CREATE TABLE people (x); "
        "CREATE TABLE faces (y); INSERT INTO meta VALUES ('schema', '0'), ('uid', 'u');",
    }.items():
        path = tmp_path / f"{kind.replace(' ', '-')}.db"
        db = sqlite3.connect(path)
        db.executescript(script)
        db.commit()
        db.close()
        files[kind] = path
    return files


def test_foreign_sqlite_files_are_refused_byte_for_byte_unchanged(tmp_path):
    """Another program's SQLite file is refused before anything is written: no tables, no WAL switch, no side files."""
    import hashlib

    for kind, path in _foreign_files(tmp_path).items():
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        with pytest.raises(GalleryError, match="left unchanged"):
            open_gallery(path)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before, kind
        beside = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(path.name))
        assert beside == [path.name], kind  # no -wal, -shm, .faiss
    empty = tmp_path / "empty.db"
    empty.touch()  # a new, empty file is ours to fill
    with open_gallery(empty) as g:
        g.enroll("Ada", [FaceRecord(unit(np.ones(DIM)).astype(np.float32))], MODEL)
    with open_gallery(empty) as g:
        assert [p.name for p in g.people()] == ["Ada"]


def _worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _assert_consistent(path: Path, committed: list[str]) -> None:
    with open_gallery(path) as g:
        stored = {p.name: p.faces for p in g.people()}
        assert set(committed) <= set(stored), "a reported enrollment is missing"
        assert all(n == FACES for n in stored.values()), f"half-present enrollment: {stored}"
        for name in committed:
            assert g.search(embeddings_of(name)[1], top_k=1)[0][0].person == name
        assert len(g.derived.index) == len(g) == FACES * len(stored)


@pytest.mark.slow
def test_kill_9_during_bulk_enrollment_keeps_every_reported_commit(tmp_path):
    path = tmp_path / "g.db"
    proc = _worker("enroll", str(path), "killed_", "100000", "7")  # also saves its index file every 7 people
    committed = []
    for line in proc.stdout:
        committed.append(line.split()[1])
        if len(committed) == 40:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    _assert_consistent(path, committed)
    with open_gallery(path) as g:  # and the gallery goes on working
        g.enroll("after", [FaceRecord(e) for e in embeddings_of("after")], MODEL)
    _assert_consistent(path, committed + ["after"])


@pytest.mark.slow
def test_two_writers_and_a_reader_at_once(tmp_path):
    path = tmp_path / "g.db"
    open_gallery(path).close()
    procs = [
        _worker("enroll", str(path), "a_", "150"),
        _worker("enroll", str(path), "b_", "150"),
        _worker("search", str(path), "200"),
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    committed = [line.split()[1] for out, _ in outputs[:2] for line in out.splitlines()]
    assert len(committed) == 300
    assert int(outputs[2][0].split()[1]) > 0
    _assert_consistent(path, committed)


def test_templates_can_come_from_another_pooling(location):
    people = people_faces(3)
    with open_gallery(location) as g:
        enroll_all(g, people)
        target = people["person_02"][0]
        g.set_template("person_00", target)  # e.g. the recurrent aggregator's pooling
        hits = g.search(target, top_k=2, by="template")[0]
        assert {m.person for m in hits} == {"person_00", "person_02"} and hits[0].similarity == pytest.approx(
            1.0, abs=1e-5
        )
        with pytest.raises(GalleryError, match="no person named 'ghost'"):
            g.set_template("ghost", target)


def test_cues_are_stored_and_exported(location, tmp_path):
    cues = np.array([0.9, 0.5, 0.7], np.float32)
    with open_gallery(location) as g:
        g.enroll("a", [FaceRecord(np.ones(DIM, np.float32), cues=cues)], MODEL)
        np.testing.assert_allclose(next(g.faces("a")).cues, cues, atol=1e-5)
        g.export(tmp_path / "e.zip")
    with open_gallery(tmp_path / "copy.db") as copy:
        copy.import_file(tmp_path / "e.zip")
        np.testing.assert_allclose(next(copy.faces("a")).cues, cues, atol=1e-5)


@pytest.mark.parametrize("target", ["sqlite", "milvus-lite"])
def test_export_import_keeps_templates_bit_identical(tmp_path, location, target):
    """Templates (e.g. the aggregator's) survive export and import bit for bit, between any two backends."""
    people = people_faces(4)
    rng = np.random.default_rng(5)
    pooled = {name: unit(rng.standard_normal(DIM)).astype(np.float32) for name in people}  # not the mean of the faces
    with open_gallery(location) as g:
        enroll_all(g, people)
        for name, template in pooled.items():
            g.set_template(name, template)
        before = g.templates()
        g.export(tmp_path / "export.zip")
    if target == "milvus-lite":
        pytest.importorskip("pymilvus")
        copy_location = f"milvus:{tmp_path / 'copy-milvus.db'}"
    else:
        copy_location = str(tmp_path / "copy.db")
    with open_gallery(copy_location) as copy:
        copy.import_file(tmp_path / "export.zip")
        after = copy.templates()
    assert sorted(after) == sorted(before)
    for name in before:
        if target == "sqlite" and location.startswith("milvus"):
            # a SQLite gallery keeps half precision: a float32 template from Milvus arrives rounded to it
            np.testing.assert_allclose(after[name], before[name], atol=1e-3)
        else:
            assert after[name].tobytes() == before[name].tobytes(), name
        np.testing.assert_allclose(after[name], pooled[name], atol=1e-3)


@pytest.mark.slow
def test_search_while_another_writer_empties_and_refills_the_gallery(tmp_path):
    """A search racing a writer that empties and refills the gallery sees one state or the other, never a crash."""
    import threading

    path = tmp_path / "g.db"
    face = people_faces(1)["person_00"]
    with open_gallery(path) as g:
        g.enroll("person_00", [FaceRecord(f) for f in face], MODEL)
    errors, searches, cycles, stop = [], [0, 0], [0], threading.Event()

    def writer():  # empties and refills the gallery until the reader has searched enough, and at least 20 times
        with open_gallery(path) as g:
            while not (stop.is_set() and cycles[0] >= 20):
                g.remove("person_00")
                g.enroll("person_00", [FaceRecord(f) for f in face], MODEL)
                cycles[0] += 1

    def reader():  # searches while the writer runs: 50 searches that found someone, however long they take
        with open_gallery(path) as g:
            while searches[0] < 50 and not errors:
                try:
                    hits = g.search(face[0], top_k=1)
                    assert hits[0] == [] or hits[0][0].person == "person_00"
                    searches[0] += 1
                except EmptyGalleryError:
                    searches[1] += 1
                except Exception as exc:  # anything else is the defect
                    errors.append(f"{type(exc).__name__}: {exc}")
        stop.set()

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert searches[0] == 50 and cycles[0] >= 20, (searches, cycles)


def _rewrite(export: Path, out: Path, change) -> Path:
    """A copy of an export archive with `change(members)` applied to its {name: bytes}."""
    import json
    import zipfile

    with zipfile.ZipFile(export) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(members["manifest.json"])
    replaced = change(members, manifest)  # bytes: a whole new manifest.json
    members["manifest.json"] = replaced if isinstance(replaced, bytes) else json.dumps(manifest).encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def _npy(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


MALFORMED = {
    "missing person": lambda m, j: j["faces"][0].pop("person"),
    "faces of the wrong type": lambda m, j: j.__setitem__("faces", [7] * len(j["faces"])),
    "manifest a list": lambda m, j: b"[1, 2]",
    "cues not numbers": lambda m, j: j["faces"][0].__setitem__("cues", ["a", "b", "c"]),
    "box of 3 values": lambda m, j: j["faces"][0].__setitem__("box", [1, 2, 3]),
    "null source": lambda m, j: j["faces"][0].__setitem__("source", None),
    "null model": lambda m, j: j.__setitem__("model", None),
    "name with a newline": lambda m, j: j["faces"][0].__setitem__("person", "a\nb"),
    "embeddings of another shape": lambda m, j: m.__setitem__("embeddings.npy", _npy(np.zeros((2, 3), np.float32))),
    "NaN embedding": lambda m, j: m.__setitem__(
        "embeddings.npy", _npy(np.full((len(j["faces"]), DIM), np.nan, np.float32))
    ),
    "undecodable crop": lambda m, j: m.__setitem__("crops/0.png", b"not a png"),
    "64 MB array in a small zip": lambda m, j: m.__setitem__(
        "embeddings.npy", _npy(np.zeros((len(j["faces"]), 2**24 // len(j["faces"])), np.float32))
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_export_archives_are_refused_and_change_nothing(tmp_path, case):
    """Malformed archives are one clear error each, are refused before they are decoded past their manifest, and
    change nothing."""
    people = people_faces(2)
    with open_gallery(tmp_path / "g.db") as g:
        enroll_all(g, people, crops=True)
        g.export(tmp_path / "export.zip")

    bad = _rewrite(tmp_path / "export.zip", tmp_path / "bad.zip", MALFORMED[case])
    with open_gallery(tmp_path / "other.db") as other:
        other.enroll("x", [FaceRecord(unit(np.ones(DIM)).astype(np.float32))], MODEL)
        with pytest.raises(GalleryError, match="rnnface gallery export"):
            other.import_file(bad)
        assert [(p.name, p.faces) for p in other.people()] == [("x", 1)]


def test_enrolling_and_importing_again_add_nothing(tmp_path, location):
    """Enrolling the same photos again and importing the same export again add nothing: one face per (person,
    image content)."""
    people = people_faces(3)
    with open_gallery(location) as g:
        enroll_all(g, people, crops=True)
        again = [FaceRecord(people["person_00"][0] * 1.0000001)]  # the same image again
        assert g.enroll("person_00", again, MODEL) == []
        twice = [FaceRecord(people["person_01"][0]), FaceRecord(people["person_01"][0])]
        assert g.enroll("newcomer", twice, MODEL) and len(list(g.faces("newcomer"))) == 1  # repeated within one call
        assert len(g) == 10
        g.export(tmp_path / "export.zip")
    with open_gallery(tmp_path / "copy.db") as copy:
        assert copy.import_file(tmp_path / "export.zip") == 10
        assert copy.import_file(tmp_path / "export.zip") == 0
        assert len(copy) == 10 and [p.faces for p in copy.people()] == [1, 3, 3, 3]


# -- a real Milvus server: what a server adds ---------------------------------------------------


def test_server_search_right_after_each_enroll_finds_the_face(milvus_server):
    people = people_faces(5)
    with open_gallery(milvus_server.location()) as g:
        for n, (name, faces) in enumerate(people.items(), 1):
            g.enroll(name, [FaceRecord(f) for f in faces], MODEL)
            assert g.search(faces[1], top_k=1)[0][0].person == name  # no wait and no flush between write and read
            assert len(g) == 3 * n and g.templates().keys() == set(list(people)[:n])
        g.remove("person_02")
        assert all(m.person != "person_02" for m in g.search(people["person_02"][0], top_k=5)[0])


def test_an_enrollment_cut_off_between_its_writes_is_repaired_by_running_it_again(milvus_server, monkeypatch):
    faces = people_faces(2)
    with open_gallery(milvus_server.location()) as g:
        enroll_all(g, {"person_00": faces["person_00"]})

        def server_gone(*args, **kwargs):
            raise GalleryUnavailableError("the Milvus server cannot be reached (test)")

        monkeypatch.setattr(g.client, "upsert", server_gone)  # the faces are written, the template write fails
        with pytest.raises(GalleryUnavailableError):
            g.enroll("person_01", [FaceRecord(f) for f in faces["person_01"]], MODEL)
        monkeypatch.undo()
        assert "person_01" not in g.templates()
        g.enroll("person_01", [FaceRecord(f) for f in faces["person_01"]], MODEL)  # the same request again
        assert len(g) == 6 and g.templates().keys() == {"person_00", "person_01"}
        assert g.search(faces["person_01"][0], top_k=1, by="template")[0][0].person == "person_01"


def test_a_server_that_goes_away_is_a_clear_error_and_the_gallery_reconnects(milvus_server, tmp_path):
    """The server cut off mid-run (its port closed and every connection dropped, through a proxy): every call is
    a clear GalleryUnavailableError; once it is reachable again the same gallery object carries on."""
    from tests.milvus_server import free_port

    people = people_faces(4)
    proxy = milvus_server.proxy()
    try:
        with open_gallery(proxy.location()) as g:
            enroll_all(g, dict(list(people.items())[:3]))
            proxy.stop()
            try:
                for call in (
                    lambda: g.enroll("person_03", [FaceRecord(f) for f in people["person_03"]], MODEL),
                    lambda: g.search(people["person_00"][0]),
                    lambda: g.people(),
                    lambda: g.remove("person_00"),
                ):
                    with pytest.raises(GalleryUnavailableError, match="Milvus server cannot be reached"):
                        call()
            finally:
                proxy.start()  # reachable again on the same port
            assert [p.name for p in g.people()] == [
                "person_00",
                "person_01",
                "person_02",
            ]  # the failed enrollment left nothing
            assert g.search(people["person_01"][2], top_k=1)[0][0].person == "person_01"
            enroll_all(g, {"person_03": people["person_03"]})
            assert len(g) == 12 and g.search(people["person_03"][0], top_k=1)[0][0].person == "person_03"
    finally:
        proxy.stop()
    assert not list(tmp_path.iterdir())  # nothing was written on our side
    with pytest.raises(GalleryUnavailableError, match="cannot be reached"):
        open_gallery(f"milvus://127.0.0.1:{free_port()}/faces")


def test_two_galleries_in_one_process_save_the_index_without_colliding(tmp_path):
    """Two open galleries of one file in one process (threads of a server) saving the index at the same time
    wrote the same temporary file (named by process id): one rename found it gone (FileNotFoundError)."""
    import threading

    path = tmp_path / "g.db"
    with open_gallery(path) as g:
        enroll_all(g, people_faces(3))
    barrier, errors = threading.Barrier(8), []

    def save():
        try:
            with open_gallery(path) as g:
                g.search(people_faces(1)["person_00"][0])  # loads the index: it will be saved on close
                g.derived.dirty = True
                barrier.wait()
        except Exception as exc:  # noqa: BLE001 - any error is the defect
            errors.append(f"{type(exc).__name__}: {exc}")

    for _ in range(20):
        threads = [threading.Thread(target=save) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert not errors, errors[:3]
    assert not list(tmp_path.glob("*.tmp"))
    with open_gallery(path) as g:
        assert g.search(people_faces(3)["person_02"][1], top_k=1)[0][0].person == "person_02"


def test_faces_move_and_go_one_by_one_by_id(location):
    people = people_faces(3)
    with open_gallery(location) as g:
        enroll_all(g, people)
        ids = {p: [f.id for f in g.faces(p)] for p in people}
        assert g.move_faces([ids["person_00"][0]], "unknown #1") == 1  # a new group of one
        assert {p.name: p.faces for p in g.people()} == {
            "person_00": 2,
            "person_01": 3,
            "person_02": 3,
            "unknown #1": 1,
        }
        assert g.search(people["person_00"][0], top_k=1)[0][0].person == "unknown #1"
        assert g.search(people["person_00"][0], top_k=1, by="template")[0][0].person == "unknown #1"
        assert g.search(people["person_00"][1], top_k=1, by="template")[0][0].person == "person_00"
        assert g.move_faces(ids["person_01"], "person_02") == 3  # a person emptied by a move is gone
        assert {p.name: p.faces for p in g.people()} == {"person_00": 2, "person_02": 6, "unknown #1": 1}
        assert g.search(people["person_01"][2], top_k=1, by="template")[0][0].person == "person_02"
        before = {f.id: f.person for f in g.faces()}
        for bad in ([ids["person_00"][1], 10**9], [10**9]):
            with pytest.raises(UnknownFaceError, match="no stored face with id 1000000000"):
                g.remove_faces(bad)
            with pytest.raises(UnknownFaceError, match="no stored face with id 1000000000"):
                g.move_faces(bad, "Bob")
        assert {f.id: f.person for f in g.faces()} == before  # nothing moved or deleted
        with pytest.raises(GalleryError, match="invalid person name"):
            g.move_faces([ids["person_00"][1]], "unknown")
        assert g.remove_faces(ids["person_00"][1:]) == 2
        assert {p.name for p in g.people()} == {"person_02", "unknown #1"} and len(g) == 7
        g.remove_faces([f.id for f in g.faces()])
        assert len(g) == 0 and g.people() == [] and g.model_id is None


def test_rename_moves_every_face_to_a_new_or_existing_person(location):
    people = people_faces(4)
    with open_gallery(location) as g:
        enroll_all(g, people)
        assert g.rename("person_00", "Alice") == 3
        assert [p.name for p in g.people()] == ["Alice", "person_01", "person_02", "person_03"]
        assert g.search(people["person_00"][1], top_k=1)[0][0].person == "Alice"
        assert g.rename("person_01", "Alice") == 3  # joins an existing person
        assert {p.name: p.faces for p in g.people()}["Alice"] == 6
        assert g.search(people["person_01"][0], top_k=1, by="template")[0][0].person == "Alice"
        with pytest.raises(GalleryError, match="no person named 'nobody'"):
            g.rename("nobody", "Bob")
        with pytest.raises(GalleryError, match="invalid person name"):
            g.rename("person_02", "unknown")
        assert len(g) == 12 and {p.name for p in g.people()} == {"Alice", "person_02", "person_03"}


# -- moving a gallery to another model ----------------------------------------------------------


@pytest.fixture(scope="module")
def light_model(tmp_path_factory) -> Path:
    """A MobileFaceNet hybrid with no correction learnt yet (MobileFaceNet's own embedding): another model."""
    from rnnface.models import create_model, save_checkpoint

    path = tmp_path_factory.mktemp("light") / "light.pt"
    save_checkpoint(path, create_model("mobilefacenet_birnn"), "mobilefacenet_birnn", threshold=0.3)
    return path


def test_a_gallery_of_the_previous_model_says_so_and_reindex_moves_it(location, lfw_images, tmp_path, light_model):
    from rnnface.errors import ModelMismatchError
    from rnnface.gallery.enroll import face_record, reindex
    from rnnface.recognition.pipeline import FacePipeline

    photos = {}
    for person in ("Aaron_Eckhart", "Serena_Williams", "Colin_Powell"):
        photos[person] = tmp_path / f"{person}.jpg"
        photos[person].write_bytes(sorted((lfw_images / person).iterdir())[0].read_bytes())
    old = FacePipeline(model="facenet-hybrid")
    new = FacePipeline(model=light_model)
    with open_gallery(location) as g:
        for person, path in photos.items():
            g.enroll(person, [face_record(old, path, source=str(path))], old.model_id)
    with open_gallery(location) as g:
        with pytest.raises(ModelMismatchError, match="reindex") as info:
            g.check_model(new.model_id)
        assert "\n" not in str(info.value) and old.model_id in str(info.value)
        photos["Colin_Powell"].unlink()  # one photo gone: nothing moves
        with pytest.raises(GalleryError, match="1 of 3 faces") as info:
            reindex(g, new)
        assert "\n" not in str(info.value) and g.model_id == old.model_id and len(g) == 3
        g.remove("Colin_Powell")
        assert reindex(g, new) == 2  # no kept crops: from the photos the faces were enrolled from
        assert g.model_id == new.model_id
        query = new.face_embedding(photos["Serena_Williams"])[0]
        assert g.search(query, top_k=1)[0][0].person == "Serena_Williams"


def test_two_processes_splitting_faces_never_share_a_group_number(tmp_path):
    """issue 31 §7: `split-face` in two processes at once: each split founds its own group (the number was picked
    outside the write, so two writers gave one `unknown #k` to two strangers)."""
    location = str(tmp_path / "g.db")
    rng = np.random.default_rng(3)
    with open_gallery(location) as g:
        (ids,) = g.enroll_many(
            [("Crowd", [FaceRecord(e, f"{i}.jpg") for i, e in enumerate(rng.standard_normal((81, DIM)))])], MODEL
        )
    halves = [ids[1::2], ids[2::2]]  # the first face stays with Crowd
    workers = [_worker("split", location, ",".join(map(str, half))) for half in halves]
    for w in workers:
        out, _ = w.communicate(timeout=600)
        assert w.returncode == 0 and out.strip().startswith("split"), out
    with open_gallery(location) as g:
        groups = {p.name: p.faces for p in g.people() if p.unnamed}
    assert len(groups) == 80 and set(groups.values()) == {1}, sorted(groups.items())[:5]
    assert sorted(int(n.split("#")[1]) for n in groups) == list(range(1, 81))


def test_an_archives_unnamed_groups_are_renumbered_on_import(tmp_path):
    """issue 31 §7: the archive's `unknown #1` and the gallery's own are two strangers: importing gives the
    archive's groups numbers of their own; importing it again adds nothing."""
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2, 3, DIM)).astype(np.float32)
    with open_gallery(str(tmp_path / "source.db")) as source:
        source.enroll_many([("unknown #1", [FaceRecord(e, f"a{i}.jpg") for i, e in enumerate(a)])], MODEL)
        source.export(tmp_path / "a.zip")
    with open_gallery(str(tmp_path / "g.db")) as g:
        g.enroll_many([("unknown #1", [FaceRecord(e, f"b{i}.jpg") for i, e in enumerate(b)])], MODEL)
        assert g.import_file(tmp_path / "a.zip") == 3
        assert g.import_file(tmp_path / "a.zip") == 0  # again: the same faces, already in their group
        groups = {p.name: p.faces for p in g.people()}
        assert groups == {"unknown #1": 3, "unknown #2": 3}
        assert {f.source for f in g.faces("unknown #2")} == {"a0.jpg", "a1.jpg", "a2.jpg"}
