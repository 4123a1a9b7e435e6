"""Folders and many photos in one call: detect, embed, verify (two folders, a pairs file) and identify, with
--csv / --json rows, one model load, and a bad photo reported in its row while the others go on."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def folder(lfw_images, tmp_path_factory) -> Path:
    """Three LFW photos (two of one person) in a folder and a subfolder, and a file that is not an image."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for src, dst in (
        (lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg", root / "bush1.jpg"),
        (lfw_images / "George_W_Bush" / "George_W_Bush_0002.jpg", root / "sub" / "bush2.jpg"),
        (lfw_images / "Serena_Williams" / "Serena_Williams_0001.jpg", root / "serena.jpg"),
    ):
        dst.symlink_to(src)
    return root


@pytest.fixture()
def broken(folder, tmp_path) -> Path:
    """The folder's photos plus a truncated JPEG."""
    root = tmp_path / "with-broken"
    root.mkdir()
    for photo in folder.rglob("*.jpg"):
        (root / photo.name).symlink_to(photo.resolve())
    (root / "cut.jpg").write_bytes((folder / "bush1.jpg").read_bytes()[:1500])
    return root


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_detect_takes_a_folder_all_levels_down_and_prints_csv(folder):
    result = run_cli("detect", folder, "--csv")
    assert result.exit_code == 0, result.output
    rows = _csv(result.output)
    assert [Path(r["image"]).name for r in rows] == ["bush1.jpg", "serena.jpg", "bush2.jpg"]
    assert all(float(r["score"]) > 0.9 and r["face"] == "0" for r in rows)


def test_detect_json_is_one_object_for_one_photo_and_a_list_for_a_folder(folder):
    one = json.loads(run_cli("detect", folder / "bush1.jpg", "--json").output)
    many = json.loads(run_cli("detect", folder, "--json").output)
    assert isinstance(one, dict) and isinstance(many, list) and len(many) == 3
    assert many[0] == one


def test_a_bad_photo_in_a_batch_is_its_row_and_the_exit_status_says_so(broken):
    result = run_cli("detect", broken, "--csv")
    assert result.exit_code == 2
    rows = _csv(result.output[: result.output.index("error: 1 of 4")])
    bad = [r for r in rows if r["error"]]
    assert [Path(r["image"]).name for r in bad] == ["cut.jpg"] and "corrupt or truncated" in bad[0]["error"]
    assert len([r for r in rows if not r["error"]]) == 3  # the others were processed
    text = run_cli("detect", broken)
    assert text.exit_code == 2 and re.search(r"^error: \S*cut\.jpg: \w", text.output, re.M)  # the README's form
    assert "serena.jpg: 1 face(s)" in text.output and "cut.jpg: error" not in text.output


def test_embed_of_a_folder_saves_every_face_in_printed_order(folder, tiny_checkpoint, tmp_path):
    out = tmp_path / "all.npy"
    result = run_cli("embed", folder, "--model", tiny_checkpoint, "--csv", "--out", out)
    assert result.exit_code == 0, result.output
    rows = _csv(result.output)
    saved = np.load(out)
    assert saved.shape == (3, 32)
    np.testing.assert_allclose(saved[1], [float(v) for v in rows[1]["embedding"].split()], atol=1e-5)


def test_verify_a_pairs_file(folder, tmp_path):
    pairs = tmp_path / "pairs.txt"
    root = folder.resolve()
    pairs.write_text(
        f"# a comment\n{root}/bush1.jpg\t{root}/sub/bush2.jpg\n{root / 'bush1.jpg'},{root / 'serena.jpg'}\n"
    )
    result = run_cli("verify", "--pairs", pairs, "--csv")
    assert result.exit_code == 0, result.output
    rows = _csv(result.output)
    assert [r["same"] for r in rows] == ["True", "False"]
    assert {r["point"] for r in rows} == {rows[0]["point"]} and float(rows[0]["threshold"]) > 0


def test_a_pairs_file_names_its_bad_line(tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("a.jpg b.jpg\nonly-one.jpg\n")
    result = run_cli("verify", "--pairs", pairs)
    assert result.exit_code == 2 and "pairs.txt, line 2: expected two image paths, got 1 field(s)" in result.output


def test_verify_a_photo_against_a_folder_embeds_each_photo_once(folder):
    result = run_cli("verify", folder / "bush1.jpg", folder, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [Path(r["image_b"]).name for r in rows] == ["serena.jpg", "bush2.jpg"]  # not bush1 against itself
    assert [r["same"] for r in rows] == [False, True]


def test_verify_refuses_both_photos_and_a_pairs_file(folder, tmp_path):
    pairs = tmp_path / "p.txt"
    pairs.write_text("a b\n")
    result = run_cli("verify", folder / "bush1.jpg", folder / "serena.jpg", "--pairs", pairs)
    assert result.exit_code == 2 and "not both" in result.output


def test_identify_a_folder_prints_one_row_per_face_and_the_threshold_once(folder, tmp_path, lfw_images):
    g = tmp_path / "g.db"
    bush = sorted((lfw_images / "George_W_Bush").iterdir())[5:8]
    assert run_cli("enroll", "George_W_Bush", *bush, env={"RNNFACE_GALLERY": str(g)}).exit_code == 0
    result = run_cli("identify", folder, "--csv", env={"RNNFACE_GALLERY": str(g)})
    assert result.exit_code == 0, result.output
    rows = _csv(result.output)
    names = {Path(r["image"]).name: r["name"] for r in rows}
    assert names == {"bush1.jpg": "George_W_Bush", "bush2.jpg": "George_W_Bush", "serena.jpg": "unknown"}
    text = run_cli("identify", folder, env={"RNNFACE_GALLERY": str(g)})
    assert text.output.count("threshold") == 1 and "serena.jpg: 1 face(s)" in text.output


def test_no_detect_takes_the_photo_as_the_face(tmp_path, tiny_checkpoint):
    crop = tmp_path / "crop.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (192, 168, 3), dtype=np.uint8)).save(crop)
    assert run_cli("embed", crop, "--model", tiny_checkpoint).exit_code == 2  # noise: no face detected
    result = run_cli("embed", crop, "--model", tiny_checkpoint, "--no-detect", "--json")
    assert result.exit_code == 0, result.output
    (face,) = json.loads(result.output)["faces"]
    assert face["box"] == [0.0, 0.0, 168.0, 192.0]


def test_min_score_and_min_face_drop_faces(folder):
    found = json.loads(run_cli("detect", folder / "bush1.jpg", "--json").output)["faces"]
    side = min(found[0]["box"][2] - found[0]["box"][0], found[0]["box"][3] - found[0]["box"][1])
    strict = json.loads(run_cli("detect", folder / "bush1.jpg", "--json", "--min-face", int(side) + 2).output)
    assert found and strict["faces"] == []
    assert json.loads(run_cli("detect", folder / "bush1.jpg", "--json", "--min-score", "1.0").output)["faces"] == []


def test_help_states_the_detection_defaults():
    from rnnface.detection import DEFAULT_DETECTOR, DetectionSettings, create_detector

    text = run_cli("detect", "--help").output
    min_score = create_detector(DEFAULT_DETECTOR).min_score  # the backend's own (DetectionSettings leaves it None)
    assert f"(default {min_score}," in text and f"(default {DetectionSettings().min_face})" in text


def test_identify_a_batch_lists_a_photo_with_no_face_and_the_runners_up(folder, tmp_path, lfw_images):
    """issue 31 §9, §20: a photo with no face is an `error` row in CSV and JSON and a line in text, and the exit
    status is 2; CSV rows carry the runners-up as text and JSON do."""
    g = tmp_path / "g.db"
    env = {"RNNFACE_GALLERY": str(g)}
    for person in ("George_W_Bush", "Serena_Williams", "Colin_Powell"):
        photos = sorted((lfw_images / person).iterdir())[5:7]
        assert run_cli("enroll", person, *photos, env=env).exit_code == 0
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "bush1.jpg").symlink_to((folder / "bush1.jpg").resolve())
    Image.new("RGB", (200, 160), (90, 140, 200)).save(batch / "sky.png")  # no face
    csv_run = run_cli("identify", batch, "--csv", env=env)
    assert csv_run.exit_code == 2, csv_run.output
    rows = {Path(r["image"]).name: r for r in _csv(csv_run.stdout)}
    assert rows["sky.png"]["error"].endswith("no face detected") and rows["sky.png"]["name"] == ""
    bush = rows["bush1.jpg"]
    assert bush["name"] == "George_W_Bush" and bush["match_2"] in ("Serena_Williams", "Colin_Powell")
    assert float(bush["similarity"]) > float(bush["similarity_2"]) >= float(bush["similarity_3"])
    as_json = run_cli("identify", batch, "--json", env=env)
    assert as_json.exit_code == 2
    assert [r.get("error", "").endswith("no face detected") for r in json.loads(as_json.stdout)] == [False, True]
    text = run_cli("identify", batch, env=env)
    assert text.exit_code == 2 and re.search(r"^error: \S*sky\.png: no face", text.output, re.M)
    assert "1 of 2 photo(s)" in text.output
