"""The SQLite gallery's derived index can never be trusted wrongly, and reading a gallery never harms it: restored
backups, removals in other processes, interrupted saves, readers without write access, odd dimensions, archives
built to exhaust memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnnface.errors import GalleryError
from rnnface.gallery import FaceRecord, open_gallery
from rnnface.gallery import index as gallery_index
from rnnface.gallery import sqlite as sqlite_module
from rnnface.gallery.records import new_faces
from rnnface.gallery.sync import DerivedIndex
from tests.gallery_worker import MODEL

DIM = 16


def faces_of(seed: int, n: int = 3, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(dim)
    out = centre + 0.2 * rng.standard_normal((n, dim))
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def enroll(g, name: str, faces: np.ndarray) -> None:
    g.enroll(name, [FaceRecord(f, f"{name}/{i}.jpg") for i, f in enumerate(faces)], MODEL)


def test_a_restored_database_is_not_searched_with_the_index_of_its_future(tmp_path):
    """Enroll A; back up the database alone; enroll B; restore the backup; enroll C: the index saved after B has the
    same generation, highest id and count as the restored database plus C, and must not be trusted."""
    path = tmp_path / "g.db"
    a, b, c = faces_of(1), faces_of(2), faces_of(3)
    with open_gallery(path) as g:
        enroll(g, "A", a)
    shutil.copy(path, tmp_path / "backup.db")  # people back up the database: the index is derived data
    with open_gallery(path) as g:
        enroll(g, "B", b)
        assert g.search(b[0], top_k=1)[0][0].person == "B"
    shutil.copy(tmp_path / "backup.db", path)
    with open_gallery(path) as g:
        enroll(g, "C", c)
    with open_gallery(path) as g:
        assert [p.name for p in g.people()] == ["A", "C"]
        assert g.search(c[0], top_k=1)[0][0].person == "C"
        assert all(m.person != "C" or m.similarity < 0.99 for m in g.search(b[0], top_k=2)[0])
        assert g.search(b[0], top_k=1)[0][0].similarity < 0.99  # B is gone: nobody matches B's face exactly


def test_a_removal_marks_faces_removed_and_other_processes_load_the_saved_index(tmp_path, monkeypatch):
    monkeypatch.setattr(gallery_index, "EXACT_LIMIT", 20)
    monkeypatch.setattr(gallery_index, "MIN_TRAINED", 20)
    path = tmp_path / "g.db"
    people = {f"p{i:02d}": faces_of(i) for i in range(12)}
    with open_gallery(path) as g:
        for name, faces in people.items():
            enroll(g, name, faces)
        g.search(people["p00"][0])
        assert g.derived.index.kind == "pq"
    builds = []
    real_build = DerivedIndex._build
    monkeypatch.setattr(DerivedIndex, "_build", lambda self, *a: builds.append(1) or real_build(self, *a))
    with open_gallery(path) as reader, open_gallery(path) as writer:
        assert reader.search(people["p03"][1], top_k=1)[0][0].person == "p03"  # loads the saved index
        writer.remove("p03")  # marks its faces removed: no rebuild
        assert all(m.person != "p03" for m in writer.search(people["p03"][1], top_k=5)[0])
        assert all(m.person != "p03" for m in reader.search(people["p03"][1], top_k=5)[0])  # the other one learns too
        assert reader.search(people["p07"][2], top_k=1)[0][0].person == "p07"
    assert builds == []
    with open_gallery(path) as g:  # a later process loads the file saved after the removal, and rebuilds nothing
        assert g.search(people["p07"][0], top_k=1)[0][0].person == "p07" and len(g.derived.index) == len(g) == 33
    assert builds == []


@pytest.mark.parametrize("dim", [100, 300, 97])
def test_the_pq_index_takes_any_dimension(tmp_path, monkeypatch, dim):
    monkeypatch.setattr(gallery_index, "EXACT_LIMIT", 20)
    monkeypatch.setattr(gallery_index, "MIN_TRAINED", 20)
    with open_gallery(tmp_path / "g.db") as g:
        people = {f"p{i:02d}": faces_of(i, dim=dim) for i in range(10)}
        for name, faces in people.items():
            enroll(g, name, faces)
        assert g.search(people["p04"][2], top_k=1)[0][0].person == "p04" and g.derived.index.kind == "pq"


def test_interrupted_index_saves_leave_no_temporary_files_for_good(tmp_path):
    path = tmp_path / "g.db"
    with open_gallery(path) as g:
        enroll(g, "A", faces_of(1))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f"g.db.faiss.{dead.stdout.strip()}-0123456789ab.tmp"  # a save by a process since killed
    leftover.write_bytes(b"x" * 1000)
    in_progress = tmp_path / f"g.db.faiss.{os.getpid()}-ba9876543210.tmp"  # a save this process is making
    in_progress.write_bytes(b"y")
    with open_gallery(path) as g:
        g.search(faces_of(1)[0])
    assert not leftover.exists() and in_progress.exists()


def test_a_reader_without_write_access_creates_nothing_beside_the_gallery(tmp_path, monkeypatch):
    """A reader who may not write the gallery (or its folder) reads it without leaving -wal/-shm files, which would be
    theirs and lock the owner out; a gallery in a read-only folder answers reads."""
    path = tmp_path / "g.db"
    with open_gallery(path) as g:
        enroll(g, "A", faces_of(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.db", "g.db.faiss"]
    real_access = os.access
    monkeypatch.setattr(sqlite_module.os, "access", lambda p, mode: False if mode & os.W_OK else real_access(p, mode))
    with open_gallery(path, create=False) as g:
        assert [p.name for p in g.people()] == ["A"] and g.search(faces_of(1)[0], top_k=1)[0][0].person == "A"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.db", "g.db.faiss"]
    monkeypatch.undo()
    with open_gallery(path) as g:  # the owner's gallery is as it was
        enroll(g, "B", faces_of(2))
        assert len(g) == 6


def _archive(path: Path, manifest: object, members: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", manifest if isinstance(manifest, (bytes, str)) else json.dumps(manifest))
        for name, data in (members or {}).items():
            zf.writestr(name, data)
    return path


def test_archives_built_to_exhaust_memory_are_refused_from_their_manifest(tmp_path):
    face = {"person": "A", "source": "", "box": None, "crop": False, "cues": None}
    huge = {"format": "rnnface-gallery-export/1", "model": "m", "dim": 65536, "templates": [], "faces": [face] * 4096}
    many = {**huge, "dim": 4096, "faces": [face] * 70_000}
    nested = "[" * 100_000 + "]" * 100_000
    with open_gallery(tmp_path / "g.db") as g:
        for name, manifest, message in [
            ("huge.zip", huge, "'dim' be a size of 1-4096"),
            ("many.zip", many, "more than an archive may hold"),
            ("nested.zip", nested, "nested too deeply"),
        ]:
            with pytest.raises(GalleryError, match=message):
                g.import_file(_archive(tmp_path / name, manifest))
    assert not (tmp_path / "g.db").exists()  # nothing was stored (the gallery was never even made)


@pytest.mark.slow
def test_repeated_faces_are_found_in_linear_time():
    """The duplicate check compares each face only with those sharing a hash bucket: 200,000 faces of one person,
    a copy of each among them, are deduplicated in seconds (a check of every pair, copying the kept faces at each
    step, would outlast the test's time limit by hours)."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((100_000, 32)).astype(np.float32)
    faces = [FaceRecord(e) for e in np.concatenate([base, base * 1.0000001])]
    kept = new_faces(faces)
    assert len(kept) == 100_000 and all(k is f for k, f in zip(kept, faces))


def test_import_messages_name_the_archive_and_never_echo_a_huge_name(tmp_path):
    face = {"person": "x" * 5000, "source": "", "box": None, "crop": False, "cues": None}
    manifest = {"format": "rnnface-gallery-export/1", "model": "m", "dim": 4, "templates": [], "faces": [face]}
    archive = _archive(tmp_path / "long.zip", manifest)
    with open_gallery(tmp_path / "g.db") as g, pytest.raises(GalleryError) as info:
        g.import_file(archive)
    message = str(info.value)
    assert str(archive) in message and "(5,000 characters)" in message and len(message) < 400
    with open_gallery(tmp_path / "h.db") as g:  # another dimension: said, naming the archive
        enroll(g, "A", faces_of(1))
    dims = {
        "format": "rnnface-gallery-export/1",
        "model": MODEL,
        "dim": 4,
        "templates": [],
        "faces": [{**face, "person": "B"}],
    }
    import io as _io

    buf = _io.BytesIO()
    np.save(buf, np.ones((1, 4), np.float32))
    archive = _archive(tmp_path / "dims.zip", dims, {"embeddings.npy": buf.getvalue()})
    with open_gallery(tmp_path / "h.db") as g, pytest.raises(GalleryError, match=rf"{archive}: the archive holds 4-d"):
        g.import_file(archive)
