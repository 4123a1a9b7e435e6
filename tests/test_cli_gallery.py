"""Gallery commands end to end on real LFW photos with the shipped model (skipped without LFW)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rnnface.gallery import FaceRecord, open_gallery
from tests.conftest import assert_no_crash, run_gallery_cli

run = run_gallery_cli


@pytest.fixture
def photos(lfw_images: Path) -> dict[str, Path]:
    return {
        "bush1": lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg",
        "bush2": lfw_images / "George_W_Bush" / "George_W_Bush_0002.jpg",
        "serena": lfw_images / "Serena_Williams" / "Serena_Williams_0001.jpg",
        "powell": lfw_images / "Colin_Powell" / "Colin_Powell_0001.jpg",
    }


@pytest.fixture
def blank(tmp_path) -> Path:
    path = tmp_path / "blank.png"
    Image.new("RGB", (160, 120), (128, 128, 128)).save(path)
    return path


@pytest.fixture
def corrupt(tmp_path) -> Path:
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return path


def test_enroll_identify_draw_people_remove(photos, tmp_path, blank, corrupt):
    g = tmp_path / "g.db"
    result = run("enroll", "George_W_Bush", photos["bush1"], photos["bush2"], blank, corrupt, gallery=g)
    assert result.exit_code == 0, result.output
    assert "enrolled 2 face(s) of 1 person(s)" in result.output
    assert f"skipped {blank}: no face" in result.output and f"skipped {corrupt}: unreadable" in result.output
    assert run("enroll", "Serena_Williams", photos["serena"], gallery=g).exit_code == 0

    drawn = tmp_path / "who.png"
    result = run("identify", photos["bush1"], "--json", "--draw", drawn, gallery=g)
    assert result.exit_code == 0, result.output
    face = json.loads(result.output)["faces"][0]
    assert face["name"] == "George_W_Bush" and face["matches"][0]["similarity"] > 0.99
    assert [m["person"] for m in face["matches"]] == ["George_W_Bush", "Serena_Williams"]
    assert Image.open(drawn).size == (250, 250)
    result = run("identify", photos["powell"], gallery=g)  # a stranger
    assert result.exit_code == 0 and ": unknown  [" in result.output

    listing = json.loads(run("people", "--json", gallery=g).output)
    assert [(p["name"], p["faces"]) for p in listing["people"]] == [("George_W_Bush", 2), ("Serena_Williams", 1)]
    assert listing["model"].startswith("mobilefacenet_birnn")
    assert run("remove", "George_W_Bush", gallery=g).output.strip() == "removed George_W_Bush: 2 face(s)"
    with open_gallery(g) as gallery:
        assert [p.name for p in gallery.people()] == ["Serena_Williams"] and len(gallery) == 1
        assert all("George_W_Bush" not in f.source for f in gallery.faces())


def test_bad_input_is_a_clear_error_and_changes_nothing(photos, tmp_path, blank, corrupt):
    g = tmp_path / "g.db"
    for args in (("identify", photos["bush1"]), ("people",), ("remove", "Nobody"), ("export", tmp_path / "x.zip")):
        result = run(*args, gallery=g)  # a mistyped gallery path is an error, not a new empty gallery
        assert result.exit_code == 2 and "no gallery here" in result.output, (args, result.output)
    result = run("enroll", "Nobody", blank, corrupt, gallery=g)
    assert result.exit_code == 2 and "nothing enrolled for 'Nobody'" in result.output
    assert not list(tmp_path.glob("g.db*"))  # a refused enrollment and the reads left no file behind
    assert run("enroll", "Serena_Williams", photos["serena"], gallery=g).exit_code == 0
    before = run("people", "--json", gallery=g).output
    for args, message in [
        (("identify", blank), "no face detected"),
        (("identify", corrupt), "corrupt.jpg"),
        (("remove", "George_W_Bush"), "no person named 'George_W_Bush'"),
        (("import", corrupt), "not a readable rnnface gallery export"),
    ]:
        result = run(*args, gallery=g)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
    assert run("people", "--json", gallery=g).output == before

    Path(str(g) + ".faiss").write_bytes(b"corrupted index")  # derived data: rebuilt, not an error
    result = run("identify", photos["serena"], gallery=g)
    assert result.exit_code == 0 and "Serena_Williams" in result.output

    other = tmp_path / "other.db"
    with open_gallery(other) as gallery:
        gallery.enroll("someone", [FaceRecord(np.ones(256, np.float32))], "another-model@123")
    for args in (("identify", photos["serena"]), ("enroll", "Serena_Williams", photos["serena"])):
        result = run(*args, gallery=other)
        assert result.exit_code == 2 and "holds embeddings of model another-model@123" in result.output
    with open_gallery(other) as gallery:
        assert [p.name for p in gallery.people()] == ["someone"] and len(gallery) == 1


def test_enroll_dir_summary_export_import_and_reindex(lfw_images, tmp_path, blank):
    tree = tmp_path / "people"
    for person in ("Aaron_Eckhart", "Serena_Williams"):
        (tree / person).mkdir(parents=True)
        for src in sorted((lfw_images / person).iterdir())[:2]:
            (tree / person / src.name).symlink_to(src)
    (tree / "Ghost").mkdir()
    (tree / "Ghost" / "blank.png").symlink_to(blank)
    g = tmp_path / "g.db"
    result = run("enroll-dir", tree, "--keep-crops", "--json", gallery=g)
    assert result.exit_code == 2, result.output  # Ghost has no usable photo: refused, and the exit says so
    summary = json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])
    assert (summary["people"], summary["faces"]) == (2, 3)  # Aaron Eckhart has one photo
    assert summary["skipped"] == [{"image": str(tree / "Ghost" / "blank.png"), "reason": "no face"}]
    assert summary["refused"] == [{"folder": "Ghost", "reason": "no usable photo (all 1 skipped)"}]
    assert "error: 1 person folder(s) not enrolled" in result.output

    assert run("export", tmp_path / "g.zip", gallery=g).exit_code == 0
    # issue 31 §8: a character device (a node with /dev/null's numbers) takes the zip as a stream: no traceback
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pass  # not allowed to make device nodes here: the rest still runs
    else:
        to_device = run("export", null, gallery=g)
        assert to_device.exit_code == 0 and null.is_char_device(), to_device.output
    copy = tmp_path / "copy.db"
    assert (
        run("import", tmp_path / "g.zip", gallery=copy).output.strip()
        == f"imported 3 face(s) from {tmp_path / 'g.zip'}"
    )
    result = run("reindex", gallery=copy)
    assert result.exit_code == 0 and "re-embedded 3 face(s)" in result.output
    with (
        open_gallery(g) as a,
        open_gallery(copy) as b,
    ):  # same model: re-embedding from the kept crops reproduces the vectors
        for fa, fb in zip(a.faces(), b.faces()):
            assert fa.person == fb.person
            np.testing.assert_allclose(fa.embedding, fb.embedding, atol=1e-4)


@pytest.mark.slow
def test_kill_9_of_enroll_dir(lfw_images, tmp_path):
    tree = tmp_path / "people"
    people = sorted(p for p in lfw_images.iterdir() if p.is_dir())[:60]
    for person in people:
        (tree / person.name).mkdir(parents=True)
        first = sorted(person.iterdir())[0]
        (tree / person.name / first.name).symlink_to(first)
    g = tmp_path / "g.db"
    cmd = [sys.executable, "-m", "rnnface", "enroll-dir", str(tree), "--verbose", "--gallery", str(g)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    committed = []
    for line in proc.stdout:
        if line.startswith("committed "):
            committed.append(line.split()[1])
        if len(committed) == 8:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and len(committed) == 8
    with open_gallery(g) as gallery:
        stored = {p.name: p.faces for p in gallery.people()}
        assert set(committed) <= set(stored) and set(stored.values()) == {1}
        gallery.search(np.ones(gallery.dim, np.float32))
        assert len(gallery.derived.index) == len(gallery) == len(stored)
    # a rerun completes the job without duplicating what the killed run committed
    result = run("enroll-dir", tree, "--json", gallery=g)
    summary = json.loads(result.output[result.output.index("{\n") : result.output.rindex("}") + 1])
    unusable = {Path(s["image"]).parent.name for s in summary["skipped"]}  # one photo each: no face, or several
    assert result.exit_code == (2 if unusable else 0), result.output
    assert {r["folder"] for r in summary["refused"]} == unusable
    assert summary["already"] == len(stored) and summary["people"] == 60 - len(stored) - len(unusable)
    with open_gallery(g) as gallery:
        assert {p.name: p.faces for p in gallery.people()} == {p.name: 1 for p in people if p.name not in unusable}


def test_facade_enroll_and_identify(photos, tmp_path):
    import rnnface

    g = tmp_path / "facade.db"
    assert rnnface.enroll("Serena_Williams", [photos["serena"]], gallery=g).faces == 1
    faces = rnnface.identify(photos["serena"], gallery=g)
    assert [f.name for f in faces] == ["Serena_Williams"] and faces[0].matches[0].similarity > 0.99


@pytest.mark.parametrize("name", ["unknown", "UNKNOWN", "Ada\nLovelace", "Ada\tL", "Ada\u202eecalevoL"])
def test_cli_refuses_reserved_and_control_character_names(tmp_path, photos, name):
    """Reserved (`unknown`) and invisible or control characters in a name are refused: one would look like a rejection,
    the others break listings."""
    g = tmp_path / "g.db"
    result = run("enroll", name, photos["bush1"], gallery=g)
    assert result.exit_code == 2 and "invalid person name" in result.output, result.output
    assert not g.exists() or json.loads(run("people", "--json", gallery=g).output)["people"] == []


def test_cli_refuses_another_programs_sqlite_file_unchanged(tmp_path):
    """`rnnface people -g foreign.db` refuses another program's SQLite file and leaves it byte for byte as it was."""
    import hashlib
    import sqlite3

    path = tmp_path / "foreign.db"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'keep me');")
    db.commit()
    db.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for args in (("people",), ("remove", "Ada"), ("export", tmp_path / "out.zip")):
        result = run(*args, gallery=path)
        assert result.exit_code == 2 and "not an rnnface gallery" in result.output, (args, result.output)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_unreadable_photo_is_skipped_as_permission_denied(tmp_path, photos, monkeypatch):
    """An unreadable photo is skipped with its reason, one line, and the readable photos of `enroll` and `enroll-dir`
    are enrolled."""
    import shutil

    from rnnface.io import image as image_module

    locked = tmp_path / "locked.jpg"
    shutil.copy(photos["bush2"], locked)
    real_open = image_module.Image.open

    def guarded_open(fp, *args, **kwargs):
        if str(fp) == str(locked):
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(image_module.Image, "open", guarded_open)
    g = tmp_path / "g.db"
    result = run("enroll", "Bush", photos["bush1"], locked, "--json", gallery=g)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["faces"] == 1 and summary["skipped"] == [
        {"image": str(locked), "reason": "unreadable: permission denied (the file cannot be read)"}
    ]
    result = run("detect", locked, gallery=g)
    assert (
        result.exit_code == 2
        and result.output.strip() == f"error: {locked}: permission denied (the file cannot be read)"
    )


def test_enroll_dir_goes_on_past_an_invalid_folder_name(tmp_path, lfw_images):
    """A folder whose name is not a valid person name is listed as refused, the others are enrolled, and the exit is
    2."""
    import shutil

    root = tmp_path / "people"
    for folder, person in (
        ("Aaron_Eckhart", "Aaron_Eckhart"),
        ("Bad_Name ", "George_W_Bush"),
        ("Serena_Williams", "Serena_Williams"),
    ):
        (root / folder).mkdir(parents=True)
        shutil.copy(lfw_images / person / f"{person}_0001.jpg", root / folder / "1.jpg")
    g = tmp_path / "g.db"
    result = run("enroll-dir", root, "--json", gallery=g)
    assert result.exit_code == 2, result.output
    start, end = result.output.index("{\n"), result.output.rindex("}") + 1  # the JSON, around the progress bar
    summary = json.loads(result.output[start:end])
    assert summary["people"] == 2 and [r["folder"] for r in summary["refused"]] == ["Bad_Name "]
    assert [p["name"] for p in json.loads(run("people", "--json", gallery=g).output)["people"]] == [
        "Aaron_Eckhart",
        "Serena_Williams",
    ]


def test_output_paths_are_checked_before_the_work_and_leave_no_temp_files(tmp_path, photos):
    """Outputs that cannot be written (a directory, a missing folder, a file where a folder must be, an unknown
    picture suffix) are one-line errors before any work, and leave no temporary files; no folder is created."""
    g = tmp_path / "g.db"
    assert run("enroll", "Bush", photos["bush1"], gallery=g).exit_code == 0
    folder = tmp_path / "folder"
    folder.mkdir()
    cases = [
        (("export", folder), "is a directory"),
        (("export", tmp_path / "f.txt" / "out.zip"), "is a file, not a folder"),
        (("detect", photos["bush1"], "--draw", folder), "is a directory"),
        (("detect", photos["bush1"], "--draw", tmp_path / "boxes.xyz"), "unknown suffix"),
        (("video", tmp_path / "none.mp4", "--out-json", folder), "is a directory"),
        (("detect", photos["bush1"], "--draw", tmp_path / "missing" / "dir" / "x.png"), "the folder"),
        (("identify", photos["bush1"], "--draw", tmp_path / "missing" / "x.png"), "does not exist"),
    ]
    (tmp_path / "f.txt").write_text("a file")
    for args, message in cases:
        result = run(*args, gallery=g)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    result = run("enroll", "Bush", photos["bush1"], gallery=tmp_path / "f.txt" / "g.db")
    assert result.exit_code == 2 and "is a file, not a folder" in result.output, result.output
    assert not (tmp_path / "missing").exists()
    index_dir = tmp_path / "h.db.faiss"
    index_dir.mkdir()
    result = run("people", gallery=tmp_path / "h.db")
    assert result.exit_code == 2 and "where the gallery keeps its index file" in result.output
    assert not list(tmp_path.rglob("*.tmp"))


def test_cli_reads_a_read_only_gallery_and_says_read_only_on_writes(tmp_path, photos, monkeypatch):
    """A read-only gallery answers reads, and writes say it is read-only."""
    import os

    from rnnface.gallery import sqlite as sqlite_module

    g = tmp_path / "g.db"
    assert run("enroll", "Bush", photos["bush1"], gallery=g).exit_code == 0
    real_access = os.access
    monkeypatch.setattr(sqlite_module.os, "access", lambda p, mode: False if mode & os.W_OK else real_access(p, mode))
    listing = run("people", "--json", gallery=g)
    assert listing.exit_code == 0 and [p["name"] for p in json.loads(listing.output)["people"]] == ["Bush"]
    for args in (("enroll", "Serena", photos["serena"]), ("remove", "Bush")):
        result = run(*args, gallery=g)
        assert result.exit_code == 2 and "read-only" in result.output, result.output


def test_an_unreachable_milvus_server_is_one_line_and_a_non_zero_exit(tmp_path):
    pytest.importorskip("pymilvus")
    from tests.milvus_server import free_port

    result = run_gallery_cli("people", gallery=f"milvus://127.0.0.1:{free_port()}/faces")
    assert result.exit_code != 0 and "Milvus server cannot be reached" in result.output
    assert not list(tmp_path.iterdir())


def test_enroll_dir_reports_what_lies_outside_the_layout(lfw_images, tmp_path):
    """Images at the root and folders inside a person's folder are reported as ignored, an empty person folder
    as refused (and the exit status says so): nothing is skipped silently."""
    tree = tmp_path / "people"
    (tree / "Serena_Williams" / "2003").mkdir(parents=True)
    (tree / "Empty").mkdir()
    serena = sorted((lfw_images / "Serena_Williams").iterdir())
    (tree / "Serena_Williams" / serena[0].name).symlink_to(serena[0])
    (tree / "Serena_Williams" / "2003" / serena[1].name).symlink_to(serena[1])
    (tree / "stray.jpg").symlink_to(serena[2])
    result = run("enroll-dir", tree, gallery=tmp_path / "g.db")
    assert result.exit_code == 2, result.output
    assert "ignored stray.jpg: an image outside any person's folder" in result.output
    assert "ignored Serena_Williams/2003: a folder inside a person's folder" in result.output
    assert "refused folder 'Empty': no images in this folder" in result.output
    assert "enrolled 1 face(s) of 1 person(s)" in result.output


def test_enroll_dir_with_no_person_folders_is_an_error(lfw_images, tmp_path):
    """issue 31 §19: photos lying directly in the folder (no ROOT/<Person>/) enroll nothing: exit 2 with why."""
    flat = tmp_path / "flat"
    flat.mkdir()
    for photo in sorted((lfw_images / "Serena_Williams").iterdir())[:2]:
        (flat / photo.name).symlink_to(photo)
    result = run("enroll-dir", flat, gallery=tmp_path / "g.db")
    assert result.exit_code == 2, result.output
    assert "nothing enrolled from" in result.output and "no person folders" in result.output
    again = run("enroll-dir", flat, "--json", gallery=tmp_path / "g.db")
    assert again.exit_code == 2


def test_thresholds_lists_the_operating_points_and_search_thresholds(calibrated_model):
    result = run("thresholds", "--model", calibrated_model, "--sizes", "1,100,1000000000", gallery=Path("unused"))
    assert result.exit_code == 0, result.output
    assert "| strict | FAR 1e-04 |" in result.output and "| LFW FAR | LFW TAR |" in result.output.replace(" |", " |")
    assert "1,000,000,000 entries" in result.output and "past the calibration's strictest" in result.output
    # issue 31 §15: each point says what it does in 1:1 and in 1:N, with the share of strangers a search names
    loose = next(line for line in result.output.splitlines() if line.startswith("| loose | 1:1 where"))
    rates = [float(cell.strip().rstrip("%")) for cell in loose.split("|")[3:-1]]
    assert "never to name people in a search" in loose and rates == sorted(rates) and rates[0] > 5
    assert_no_crash(run("thresholds", gallery=Path("unused")))  # the shipped model, calibrated or not


def test_identify_says_which_threshold_named_the_faces(photos, tmp_path, calibrated_model):
    g = tmp_path / "g.db"
    assert run("enroll", "Bush", photos["bush1"], "--model", calibrated_model, gallery=g).exit_code == 0
    result = run("identify", photos["bush2"], "--model", calibrated_model, gallery=g)
    assert result.exit_code == 0, result.output
    assert "FPIR 0.01 among 1 gallery entries" in result.output
    strict = run("identify", photos["bush2"], "--model", calibrated_model, "--threshold", "strict", gallery=g)
    assert "threshold" in strict.output and "strict (FAR 1.0e-4)" in strict.output
