"""Runtimes as adapters: every registered runtime embeds the same faces as the PyTorch module (numpy in, numpy
out), the device picks onnxruntime's execution provider, and what cannot run on a device says so in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnface.errors import ModelError
from rnnface.models import load_checkpoint
from rnnface.recognition import runtimes
from rnnface.recognition.embedder import Embedder
from rnnface.settings import packaged_model


@pytest.fixture(scope="module")
def shipped():
    return load_checkpoint(packaged_model())


@pytest.mark.parametrize("name", runtimes._RUNTIMES.names())
def test_every_runtime_gives_the_torch_modules_embeddings(name, shipped):
    pixels = np.random.default_rng(0).uniform(-1, 1, (3, 3, shipped.input_size, shipped.input_size))
    pixels = pixels.astype(np.float32)
    with torch.inference_mode():
        want = shipped.model.eval()(torch.from_numpy(pixels)).numpy()
    got = runtimes.create_runtime(name, shipped, torch.device("cpu"))(pixels)
    assert got.shape == want.shape and got.dtype == np.float32
    cosines = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cosines.min() > (0.95 if name == "int8" else 0.9999), cosines


def test_the_device_picks_the_onnx_provider(monkeypatch):
    import onnxruntime as ort

    assert runtimes.onnx_providers(torch.device("cpu")) == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(ModelError, match="needs onnxruntime's CUDA provider .*has CPUExecutionProvider"):
        runtimes.onnx_providers(torch.device("cuda", 1))
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert runtimes.onnx_providers(torch.device("cuda", 1)) == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]


def test_int8_is_refused_off_the_cpu_and_an_unknown_runtime_is_one_error(shipped):
    with pytest.raises(ModelError, match="quantized for the CPU"):
        runtimes.create_runtime("int8", shipped, torch.device("cuda"))
    with pytest.raises(ModelError, match="unknown runtime 'tensorrt'"):
        runtimes.create_runtime("tensorrt", shipped, torch.device("cpu"))


def test_the_onnx_runtime_builds_no_torch_module_on_the_device(shipped):
    embedder = Embedder(shipped, runtime="onnx", flip=True)
    assert isinstance(embedder.run, runtimes.OnnxRuntime)
    crops = np.random.default_rng(1).integers(0, 255, (2, 112, 112, 3), dtype=np.uint8)
    out = embedder.embed_crops(crops)
    assert out.shape == (2, shipped.embed_dim) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
