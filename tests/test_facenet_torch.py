"""FaceNet as a PyTorch module, its weights read from the installed graph: the same outputs as OpenCV running the
graph itself, on real faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnface.detection import DEFAULT_DETECTOR, create_detector
from rnnface.io import load_image
from rnnface.models.facenet_weights import graph_weights, torch_facenet
from rnnface.models.inception_resnet_v1 import OUTPUTS, InceptionResnetV1
from rnnface.pretrained.facenet import FaceNet, to_blob


@pytest.fixture(scope="module")
def crops(lfw_images) -> np.ndarray:
    """FaceNet crops of six LFW faces (MTCNN box, FaceNet's training crop)."""
    detector = create_detector(DEFAULT_DETECTOR)
    cut = FaceNet.crop
    paths = sorted(lfw_images.glob("*/*.jpg"))[::2200][:6]
    out = []
    for path in paths:
        image = load_image(path)
        out.append(cut.crop(image, detector.detect(image)[0].box, None).image)
    return np.stack(out)


@pytest.mark.lfw
def test_the_torch_network_gives_opencv_s_outputs_on_real_faces(crops, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    reference = FaceNet(OUTPUTS)(crops)
    model = torch_facenet()
    assert list(tmp_path.joinpath("rnnface").glob("facenet-*.pt")), "derived weights are kept in the user cache"
    with torch.inference_mode():
        got = model(torch.from_numpy(to_blob(crops)), OUTPUTS)
    for name in OUTPUTS:
        a, b = reference[name].reshape(len(crops), -1), got[name].numpy().reshape(len(crops), -1)
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cosine.min() >= 0.9999, name
    assert torch_facenet().state_dict().keys() == model.state_dict().keys()  # the second load reads the cache


def test_every_weight_of_the_graph_lands_in_the_network():
    state = graph_weights()
    model = InceptionResnetV1()
    expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(state) == expected
    assert sum(k.endswith(".weight") and v.ndim == 4 for k, v in state.items()) == 132  # every convolution
    for key, value in state.items():
        assert tuple(model.state_dict()[key].shape) == value.shape, key


def test_a_damaged_cache_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    torch_facenet()
    (cached,) = tmp_path.joinpath("rnnface").glob("facenet-*.pt")
    cached.write_bytes(b"not a checkpoint")
    model = torch_facenet()
    assert cached.stat().st_size > 1_000_000
    assert torch.isfinite(model.Conv2d_1a_3x3.weight).all()


def test_facenet_costs_1_42_gmacs_a_face():
    """The count `rnnface bench facenet` divides by: every convolution and the bottleneck of one 160 x 160 face."""
    from rnnface.lab.benchmarks.facenet_runtimes import facenet_macs

    assert facenet_macs() == pytest.approx(1.42e9, rel=0.01)


@pytest.mark.lfw
def test_onnxruntime_runs_facenet_in_batches_with_opencv_s_outputs(crops):
    from rnnface.pretrained.facenet import SHARED_OUTPUTS, OnnxFaceNet

    reference = FaceNet(SHARED_OUTPUTS)(crops)
    got = OnnxFaceNet(SHARED_OUTPUTS)(crops)
    for name in SHARED_OUTPUTS:
        a, b = reference[name].reshape(len(crops), -1), got[name].reshape(len(crops), -1)
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cosine.min() >= 0.9999, name
        assert got[name].shape == reference[name].shape


def test_the_facenet_runtime_is_a_setting(monkeypatch):
    from rnnface.pretrained.facenet import OnnxFaceNet, shared_facenet

    shared_facenet.cache_clear()
    try:
        monkeypatch.setenv("RNNFACE_FACENET_RUNTIME", "opencv")
        assert type(shared_facenet()) is FaceNet
        shared_facenet.cache_clear()
        monkeypatch.setenv("RNNFACE_FACENET_RUNTIME", "onnx")
        assert type(shared_facenet()) is OnnxFaceNet
    finally:
        shared_facenet.cache_clear()


@pytest.mark.slow
def test_a_damaged_onnx_file_in_the_cache_is_built_again(tmp_path, monkeypatch):
    from rnnface.pretrained.facenet import OnnxFaceNet, facenet_onnx

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = facenet_onnx()
    path.write_bytes(b"\0" * 2_000_000)  # the size of something, the contents of nothing
    net = OnnxFaceNet(("embedding",))
    crop = np.zeros((1, 160, 160, 3), np.uint8)
    assert net(crop)["embedding"].shape == (1, 512)
    assert path.stat().st_size > 50_000_000


@pytest.mark.lfw
def test_the_shipped_model_is_one_network_from_pixels_and_one_onnx_file_onnxruntime_runs_alone(crops):
    """Pixels in, embedding out: PyTorch's whole model (its own FaceNet), and the exported file run by a bare
    onnxruntime session, both give what OpenCV's FaceNet outputs fed to the head give, on real faces."""
    import onnxruntime as ort

    from rnnface.models import load_checkpoint
    from rnnface.models.onnx import export_onnx
    from rnnface.models.preprocess import to_model_input
    from rnnface.settings import resolve_model

    ckpt = load_checkpoint(resolve_model("facenet-hybrid"))  # the FaceNet hybrid, shipped beside the default
    opencv = FaceNet(ckpt.model.inputs)(crops)
    with torch.inference_mode():
        reference = ckpt.model.embed_features({k: torch.from_numpy(v) for k, v in opencv.items()}).numpy()
        pixels = to_model_input(crops, ckpt.input_size)
        whole = ckpt.model(pixels).numpy()
    session = ort.InferenceSession(export_onnx(ckpt), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"]
    (alone,) = session.run(["embedding"], {"pixels": pixels.numpy()})
    for got in (whole, alone):
        assert (got * reference).sum(1).min() >= 0.9999
