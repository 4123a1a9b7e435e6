"""Milvus galleries as people use them: one process after another on Milvus Lite, names in every script,
collections dropped or made by someone else, and no library tracebacks before our one-line errors."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from rnnface.errors import GalleryError, UnknownPersonError
from rnnface.gallery import FaceRecord, open_gallery
from tests.gallery_worker import MODEL

pymilvus = pytest.importorskip("pymilvus")

DIM = 16
NAMES = ["Zoë", "顔認識", "😀 Smile", 'O"Brien \\ back', "Ｗｉｄｅ", "é" * 256]


def faces_of(seed: int, n: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = rng.standard_normal(DIM) + 0.2 * rng.standard_normal((n, DIM))
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(params=["milvus-lite", "milvus-server"])
def milvus(request, tmp_path) -> str:
    if request.param == "milvus-server":
        return request.getfixturevalue("milvus_server").location()
    return f"milvus:{tmp_path / 'milvus.db'}"


@pytest.mark.slow
def test_milvus_lite_works_from_one_process_to_the_next(tmp_path):
    """The second command on a Milvus Lite file found its collection released (`call load() before search`)."""
    location = f"milvus:{tmp_path / 'm.db'}"
    script = (
        "import sys, numpy as np\n"
        "from rnnface.gallery import FaceRecord, open_gallery\n"
        "rng = np.random.default_rng(int(sys.argv[2]))\n"
        "v = rng.standard_normal(16).astype(np.float32)\n"
        "with open_gallery(sys.argv[1]) as g:\n"
        "    if sys.argv[3] == 'enroll': g.enroll('P' + sys.argv[2], [FaceRecord(v)], 'test-model')\n"
        "    else: print(g.search(v, top_k=1)[0][0].person, [p.name for p in g.people()], g.templates().keys())\n"
    )
    for seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", script, location, seed, "enroll"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    found = subprocess.run([sys.executable, "-c", script, location, "2", "search"], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("P2 ['P1', 'P2']"), found.stdout


def test_names_in_any_script_enroll_list_search_and_delete(milvus):
    with open_gallery(milvus) as g:
        for i, name in enumerate(NAMES):
            g.enroll(name, [FaceRecord(f) for f in faces_of(i)], MODEL)
        assert sorted(p.name for p in g.people()) == sorted(NAMES)
        for i, name in enumerate(NAMES):
            assert g.search(faces_of(i)[1], top_k=1)[0][0].person == name
            assert len(list(g.faces(name))) == 2
            assert g.search(faces_of(i)[0], top_k=1, by="template")[0][0].person == name
        for name in NAMES:
            assert g.remove(name) == 2
        assert g.people() == [] and len(g) == 0


def test_a_dropped_faces_collection_is_reported_and_its_templates_are_deletable(milvus):
    with open_gallery(milvus) as g:
        g.enroll("A", [FaceRecord(f) for f in faces_of(1)], MODEL)
        g.enroll("B", [FaceRecord(f) for f in faces_of(2)], MODEL)
        g.client.drop_collection(g.collection)  # as an administrator might, outside rnnface
    with open_gallery(milvus) as g:
        with pytest.raises(GalleryError, match="half-missing gallery.*'A', 'B'"):
            g.people()
        with pytest.raises(GalleryError, match="half-missing"):
            g.search(faces_of(1)[0], by="template")  # never names someone people does not list
        assert g.remove("A") == 0 and g.remove("B") == 0  # the templates left without faces go too
        with pytest.raises(UnknownPersonError):
            g.remove("A")
        assert g.people() == []


def test_a_foreign_collection_under_our_name_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "m.db"
    client = pymilvus.MilvusClient(str(path))
    client.create_collection("faces", dimension=8)
    client.insert("faces", [{"id": 1, "vector": [0.1] * 8}])
    with pytest.raises(GalleryError, match="'faces' is not an rnnface collection.*left unchanged"):
        open_gallery(f"milvus:{path}")
    assert client.query("faces", filter="id >= 0", output_fields=["id"]) == [{"id": 1}]
    client.close()


def test_no_library_traceback_is_logged_before_our_error(tmp_path, caplog):
    location = f"milvus:{tmp_path / 'm.db'}"
    with caplog.at_level(logging.DEBUG), open_gallery(location) as g:
        g.enroll("A", [FaceRecord(f) for f in faces_of(1)], MODEL)
        with pytest.raises(GalleryError):
            g.enroll("B", [FaceRecord(np.ones(DIM + 1, np.float32))], MODEL)
        with pytest.raises(UnknownPersonError):
            g.remove("nobody")
    noisy = [r for r in caplog.records if r.name.startswith(("pymilvus", "grpc")) and r.levelno >= logging.ERROR]
    assert not noisy, [r.getMessage()[:200] for r in noisy]
