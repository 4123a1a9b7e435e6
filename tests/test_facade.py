"""The Python facade matches the CLI: detection choices, faces found earlier, face choices in verify, a threshold
by name in identify, and a video API."""

from __future__ import annotations

import numpy as np
import pytest

import rnnface
from rnnface.detection import face_at
from rnnface.errors import GalleryError


def test_embed_takes_faces_found_earlier(lfw_face):
    faces = rnnface.detect(lfw_face)
    again = rnnface.embed(lfw_face, faces=faces)
    np.testing.assert_allclose(again, rnnface.embed(lfw_face), atol=1e-5)
    boxes = rnnface.embed(lfw_face, faces=[faces[0].box.tolist()])  # a plain box: its typical landmarks
    assert float(boxes[0] @ again[0]) > 0.95  # measured 0.977: the template crop from typical, not found, landmarks
    assert rnnface.embed(lfw_face, faces=[]).shape == (0, 192)


def test_detect_and_embed_take_the_cli_s_detection_choices(lfw_face):
    assert rnnface.detect(lfw_face, min_face=4000) == []
    whole = rnnface.embed(np.zeros((192, 168, 3), np.uint8) + 128, detect=False)
    assert whole.shape == (1, 192)


def test_verify_takes_face_choices(lfw_images, tmp_path):
    from PIL import Image

    a = np.asarray(Image.open(lfw_images / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"))
    b = np.asarray(Image.open(lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg").resize((160, 160)))
    canvas = np.full((300, 450, 3), 128, np.uint8)
    canvas[25:275, :250], canvas[70:230, 280:440] = a, b
    bush = lfw_images / "George_W_Bush" / "George_W_Bush_0002.jpg"
    largest = rnnface.verify(canvas, bush)
    second = rnnface.verify(canvas, bush, face_a=1)
    assert (largest.face_a, second.face_a) == (0, 1) and second.similarity > largest.similarity
    assert largest.threshold.point in ("balanced", "checkpoint")


def test_identify_takes_a_threshold_by_name_or_number(photos_dir, tmp_path):
    g = tmp_path / "g.db"
    rnnface.enroll("Bush", [photos_dir["bush1"]], gallery=g)
    (face,) = rnnface.identify(photos_dir["bush2"], gallery=g, threshold=0.99)
    assert face.name == "unknown" and face.threshold.point == "given"
    (face,) = rnnface.identify(photos_dir["bush2"], gallery=g, threshold=-1)
    assert face.name == "Bush"


def test_process_video_names_tracks_from_a_gallery(lfw_images, tmp_path):
    from rnnface.io import load_image
    from rnnface.video.synthetic import Actor, write_video

    people = ["George_W_Bush", "Serena_Williams"]
    photos = {p: sorted((lfw_images / p).iterdir()) for p in people}
    clip = tmp_path / "clip.mp4"
    actors = [
        Actor(p, load_image(photos[p][0]), 0.0, 2.0, (60 + 300 * i, 150), (80 + 300 * i, 150))
        for i, p in enumerate(people)
    ]
    write_video(clip, actors, 2.0)
    g = tmp_path / "g.db"
    rnnface.enroll("George_W_Bush", photos["George_W_Bush"][1:4], gallery=g)
    report = rnnface.process_video(clip, gallery=g, every=3)
    names = sorted(t.person for t in report.tracks)
    assert names == ["George_W_Bush", "unknown #1"] and report.threshold is not None
    assert report.to_dict()["operating_point"]["threshold"] == pytest.approx(report.threshold.value, abs=1e-4)
    # without gallery=, the configured one ($RNNFACE_GALLERY), as enroll and identify use; stopping early on
    # purpose (max_frames) is not a truncated file
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RNNFACE_GALLERY", str(g))
        again = rnnface.process_video(clip, every=3, max_frames=30)
    assert sorted(t.person for t in again.tracks) == ["George_W_Bush", "unknown #1"]
    assert again.frames == 30 and not again.truncated
    with pytest.MonkeyPatch.context() as env:  # a configured gallery that is not there is an error, not "unknown"
        env.setenv("RNNFACE_GALLERY", str(tmp_path / "mistyped.db"))
        with pytest.raises(GalleryError, match="no gallery here"):
            rnnface.process_video(clip, max_frames=5)


@pytest.fixture()
def photos_dir(lfw_images):
    return {
        "bush1": lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg",
        "bush2": lfw_images / "George_W_Bush" / "George_W_Bush_0002.jpg",
    }


def test_face_at_gives_a_box_its_typical_landmarks():
    face = face_at((10, 20, 110, 140))
    assert face.landmarks.shape == (5, 2) and face.landmarks[0, 0] < face.landmarks[1, 0]
