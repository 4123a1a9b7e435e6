"""ONNX export: every registered backbone with every recurrent cell runs in onnxruntime as in PyTorch on real faces."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnface.detection import DEFAULT_DETECTOR, create_detector
from rnnface.io import load_image
from rnnface.models import RNN_CELLS, create_model, list_models, load_checkpoint, save_checkpoint
from rnnface.models.onnx import export_onnx
from rnnface.operating import VERIFY_DEFAULT, Calibration
from rnnface.recognition.embedder import Embedder
from rnnface.settings import packaged_model
from tests.conftest import assert_no_crash

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

PHOTOS = [
    "George_W_Bush/George_W_Bush_0001.jpg",
    "George_W_Bush/George_W_Bush_0002.jpg",
    "Serena_Williams/Serena_Williams_0001.jpg",
    "Colin_Powell/Colin_Powell_0001.jpg",
    "Tony_Blair/Tony_Blair_0001.jpg",
    "Aaron_Eckhart/Aaron_Eckhart_0001.jpg",
]


@pytest.fixture(scope="module")
def real_faces(lfw_images):
    """(image, detected face) of six LFW photos, cut later as each model's crop says."""
    detector = create_detector(DEFAULT_DETECTOR)
    out = []
    for name in PHOTOS:
        image = load_image(lfw_images / name)
        out.append((image, detector.detect(image)[0]))
    return out


def _crops(checkpoint, faces) -> np.ndarray:
    spec = checkpoint.crop
    return np.stack([spec.crop(image, face.box, face.landmarks).image for image, face in faces])


def _checkpoint(name: str, cell: str, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, cell=cell)
    if hasattr(
        model, "base"
    ):  # a fresh hybrid head starts at exactly FaceNet's embedding: give its recurrent path weight
        model.out.reset_parameters()
    path = tmp_path / f"{name}-{cell}.pt"
    save_checkpoint(path, model, name, threshold=0.5)
    return load_checkpoint(path)


@pytest.fixture
def model_cache(tmp_path, monkeypatch):
    """Exported ONNX files of these throwaway models go to a temporary folder, not the user's cache."""
    import rnnface.models.onnx

    monkeypatch.setattr(rnnface.models.onnx, "user_cache_dir", lambda: tmp_path / "cache")


@pytest.mark.parametrize("cell", list(RNN_CELLS))
@pytest.mark.parametrize("name", [n for n in list_models() if create_model(n).reads_one_crop])
def test_onnxruntime_embeds_real_faces_as_pytorch_does(name, cell, tmp_path, real_faces, model_cache):
    ckpt = _checkpoint(name, cell, tmp_path)
    crops = _crops(ckpt, real_faces)
    reference = Embedder(ckpt).embed_crops(crops)
    onnx_embedder = Embedder(ckpt, runtime="onnx")
    got = onnx_embedder.embed_crops(crops)
    cosines = (reference * got).sum(1)
    assert cosines.min() >= 0.9999, cosines
    one = np.concatenate(
        [onnx_embedder.embed_crops(c[None]) for c in crops]
    )  # dynamic batch: one at a time = all at once
    assert (one * got).sum(1).min() >= 0.9999
    ops = {n.op_type for n in onnx.load_from_string(export_onnx(ckpt)).graph.node}
    assert {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}[
        cell
    ] in ops  # recurrent layers as ONNX recurrent ops, not unrolled
    assert "PRelu" not in ops  # written as per-channel convolutions, which onnxruntime runs 3x faster


def test_export_onnx_cli_writes_the_shipped_model_with_its_metadata(tmp_path, real_faces):
    from typer.testing import CliRunner

    from rnnface.cli import app
    from rnnface.models.onnx import OnnxModel

    shipped = packaged_model()
    if shipped is None:
        pytest.skip("no shipped model")
    out = tmp_path / "default.onnx"
    result = CliRunner().invoke(app, ["export-onnx", str(shipped), str(out)])
    assert result.exit_code == 0, result.output
    assert "lowest cosine 1.0000" in result.output and "facenet front-end inside" in result.output
    ckpt = load_checkpoint(shipped)
    session = OnnxModel(out)  # the file alone: a deployer's view
    assert session.meta["rnnface.model_id"] == ckpt.model_id
    if ckpt.calibration is not None:  # verify's default point, and every point, travel with the file
        verify = ckpt.calibration.point(VERIFY_DEFAULT)
        assert float(session.meta["rnnface.threshold"]) == pytest.approx(verify.value)
        assert session.meta["rnnface.operating_point"] == verify.describe()
        assert Calibration.from_dict(json.loads(session.meta["rnnface.calibration"])) == ckpt.calibration
    else:
        assert float(session.meta["rnnface.threshold"]) == pytest.approx(ckpt.threshold)
    assert json.loads(session.meta["rnnface.inputs"]) == session.inputs == ["pixels"]
    # the whole model from the file, on real faces, gives the shipped model's embeddings
    from rnnface.models.preprocess import to_model_input

    crops = _crops(ckpt, real_faces)
    got = session(to_model_input(crops, ckpt.input_size)).numpy()
    assert (got * Embedder(ckpt, flip=False).embed_crops(crops)).sum(1).min() >= 0.9999
    for bad in (tmp_path / "missing.pt", out):  # not a checkpoint: one line, non-zero exit, nothing written
        result = CliRunner().invoke(app, ["export-onnx", str(bad), str(tmp_path / "x.onnx")])
        assert_no_crash(result)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow
def test_a_hybrid_exports_in_a_process_that_has_not_loaded_its_front_end_yet(tmp_path, model_cache):
    """The shared FaceNet loads lazily; loading must not happen inside the exporter's trace."""
    from rnnface.models.facenet_weights import pretrained_facenet

    ckpt = _checkpoint("facenet_birnn", "gru", tmp_path)
    pretrained_facenet.cache_clear()
    data = export_onnx(ckpt)
    assert {n.op_type for n in onnx.load_from_string(data).graph.node} >= {"Conv", "GRU"}


def test_export_onnx_never_replaces_a_file_that_is_not_an_onnx_file(tmp_path):
    from typer.testing import CliRunner

    from rnnface.cli import app

    shipped = packaged_model()
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(shipped.read_bytes())
    for out, args in ((keep, []), (ckpt, []), (tmp_path / "x.onnx", ["--opset", "99"])):
        result = CliRunner().invoke(app, ["export-onnx", str(ckpt), str(out), *args])
        assert_no_crash(result)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert keep.read_text() == "mine" and ckpt.read_bytes() == shipped.read_bytes()
    assert not (tmp_path / "x.onnx").exists()
