"""The liveness peers (MiniFASNet, FaceAntiSpoofing.tflite) run as their authors ran them, and presentation sets
are scored per judge with no face counted as not live."""

from __future__ import annotations

import numpy as np
import pytest

from rnnface.errors import DataError, ModelError
from rnnface.lab.evaluation.liveness_peers import Verdict, create_peer, list_peers
from rnnface.lab.evaluation.presentations import PresentationSet, folder_set, judge_sets
from rnnface.liveness.minifasnet import context_box


def test_the_context_box_is_silent_faces_crop():
    # a 480x640 photo, face box (x, y, w, h) = (106, 147, 208, 214): 2.7x is capped by the width (479 / 208),
    # centred at (210, 254), and pushed right by 29.5 px to start at the left edge
    assert context_box(480, 640, (106, 147, 208, 214), 2.7) == (0, 7, 479, 500)
    # a small box well inside is scaled about its centre
    assert context_box(1000, 1000, (450, 450, 100, 100), 4.0) == (300, 300, 700, 700)
    # a box at the bottom-right corner is shifted back inside
    left, top, right, bottom = context_box(300, 300, (250, 250, 40, 40), 2.7)
    assert (right, bottom) == (299, 299) and right - left == pytest.approx(108, abs=1)


def test_the_minifasnet_onnx_files_hold_its_published_weights(shared_models):
    """The ONNX exports (a third party's) are the .pth weights with each batch norm folded into its convolution."""
    import onnx
    import torch
    from onnx import numpy_helper

    pairs = [
        ("2.7_80x80_MiniFASNetV2.pth", "MiniFASNetV2_2.7_80x80.onnx"),
        ("4_0_0_80x80_MiniFASNetV1SE.pth", "MiniFASNetV1SE_4.0_80x80.onnx"),
    ]
    for pth, exported in pairs:
        state = torch.load(shared_models / pth, map_location="cpu", weights_only=True)
        state = {k.removeprefix("module."): v.double().numpy() for k, v in state.items()}
        graph = onnx.load(shared_models / exported).graph
        inits = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in graph.initializer}
        convs = [inits[n.input[1]] for n in graph.node if n.op_type == "Conv"]
        compared = 0
        for key, weight in state.items():
            bn = key.removesuffix("conv.weight") + "bn."
            if not key.endswith("conv.weight") or bn + "weight" not in state:
                continue
            folded = weight * (state[bn + "weight"] / np.sqrt(state[bn + "running_var"] + 1e-5))[:, None, None, None]
            worst = min(np.abs(c - folded).max() / np.abs(folded).max() for c in convs if c.shape == folded.shape)
            assert worst < 1e-5, (exported, key, worst)
            compared += 1
        assert compared == 49


def test_every_peer_judges_a_photo_with_a_face_and_none_without(shared_models, lfw_face):
    from rnnface.io import load_image

    photo = load_image(lfw_face)
    for name in list_peers():
        peer = create_peer(name, shared_models)
        try:
            verdict = peer.judge([photo])
        except ModelError as exc:  # the TFLite interpreter is an extra
            pytest.skip(str(exc))
        assert isinstance(verdict, Verdict) and np.isfinite(verdict.score)
        assert verdict.live == (verdict.score >= peer.threshold)
        assert peer.judge([np.full((240, 320, 3), 128, np.uint8)]) is None, name

    from rnnface.detection import create_detector
    from rnnface.liveness.minifasnet import MiniFASNetRunner

    probabilities, embedding = MiniFASNetRunner(shared_models).run(photo, create_detector("yunet").detect(photo)[0])
    assert probabilities.sum() == pytest.approx(1.0) and embedding.shape == (256,)


def test_a_peer_whose_file_is_missing_says_where_it_looked(tmp_path, lfw_face):
    from rnnface.io import load_image

    with pytest.raises(ModelError, match="MiniFASNetV2_2.7_80x80.onnx is not in"):
        create_peer("minifasnet", tmp_path).judge([load_image(lfw_face)])


class _Judge:
    """Scores a presentation by its first frame's mean; no face when that is 0; live at 100 and above."""

    def __init__(self, name: str) -> None:
        self.name = name

    def judge(self, frames):
        value = float(frames[0].mean())
        return None if value == 0 else Verdict(value, value >= 100)


def _frames(value: int):
    return lambda: [np.full((4, 4, 3), value, np.uint8)]


def test_a_set_is_scored_per_judge_and_no_face_counts_as_not_live():
    live = [_frames(v) for v in (150, 120, 90, 0)]  # 90: rejected; 0: no face, so rejected too
    attack = [_frames(v) for v in (20, 110, 0)]  # 110: accepted; 0: no face, rightly not accepted
    (row,) = judge_sets([PresentationSet("toy", live, attack)], [_Judge("toy judge")])
    assert (row.live, row.attacks, row.no_face_live, row.no_face_attacks) == (4, 3, 1, 1)
    assert row.bpcer == pytest.approx(2 / 4) and row.apcer == pytest.approx(1 / 3)
    assert row.hter == pytest.approx((2 / 4 + 1 / 3) / 2)


def test_a_presentation_folder_needs_live_and_attack(tmp_path):
    import cv2

    (tmp_path / "live").mkdir()
    with pytest.raises(DataError, match="attack/ is missing"):
        folder_set(tmp_path)
    (tmp_path / "attack" / "print").mkdir(parents=True)
    with pytest.raises(DataError, match="no photos or video files"):
        folder_set(tmp_path)
    cv2.imwrite(str(tmp_path / "live" / "a.png"), np.full((8, 8, 3), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "attack" / "print" / "b.png"), np.full((8, 8, 3), 50, np.uint8))
    found = folder_set(tmp_path, "mine")
    assert (found.name, len(found.live), len(found.attack)) == ("mine", 1, 1)
    assert found.attack[0]()[0].shape == (8, 8, 3)
    for i in range(9):
        cv2.imwrite(str(tmp_path / "live" / f"c{i}.png"), np.full((8, 8, 3), i, np.uint8))
    spread = folder_set(tmp_path, most=3).live  # a.png, c0..c8: the first, the middle and the last
    assert [int(f()[0][0, 0, 0]) for f in spread] == [200, 3, 8]
