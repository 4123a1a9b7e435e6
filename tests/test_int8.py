"""int8 inference (`--runtime int8`) and where the model runs (`--device`): the shipped model's FaceNet quantized from
the shipped activation ranges gives float32's embeddings on real faces; what cannot work says so in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnface.errors import ModelError
from rnnface.models import create_model, load_checkpoint, save_checkpoint
from rnnface.recognition.embedder import Embedder, resolve_device, resolve_runtime
from rnnface.settings import packaged_model
from tests.test_facenet_torch import crops  # noqa: F401  (the fixture: FaceNet crops of six LFW faces)

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.mark.lfw
def test_int8_embeds_real_faces_as_float32_does(crops):  # noqa: F811
    from rnnface.models.quantize import int8_onnx

    ckpt = load_checkpoint(packaged_model())
    float32 = Embedder(ckpt, runtime="onnx", flip=False).embed_crops(crops)
    int8 = Embedder(ckpt, runtime="int8", flip=False).embed_crops(crops)
    assert (float32 * int8).sum(1).min() >= 0.98
    graph = onnx.load(str(int8_onnx(ckpt))).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") > 40 and "GRU" in ops  # the CNN in int8, the recurrent head in float32
    assert not any(n.name.startswith(("/sweeps/", "/out/", "/base/")) and "Quant" in n.op_type for n in graph.node)


def test_int8_needs_a_pretrained_front_end_and_a_readable_ranges_file(tmp_path):
    from rnnface.models.quantize import int8_onnx

    path = tmp_path / "pixels.pt"
    save_checkpoint(path, create_model("renet", embed_dim=16, hidden=(8, 8)), "renet")
    with pytest.raises(ModelError, match="renet has none"):
        int8_onnx(load_checkpoint(path))
    bad = tmp_path / "ranges.json"
    bad.write_text(json.dumps({"ranges": {"x": "nonsense"}}))
    with pytest.raises(ModelError, match="not an rnnface int8 ranges file"):
        int8_onnx(load_checkpoint(packaged_model()), bad)
    with pytest.raises(ModelError, match="no int8 activation ranges"):
        int8_onnx(load_checkpoint(packaged_model()), tmp_path / "missing.json")


def test_devices_and_runtimes_are_checked():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="sees no GPU"):
            resolve_device("cuda")
    assert resolve_runtime("auto", torch.device("cuda")) == "torch"
    assert resolve_runtime("auto", torch.device("cpu")) == "onnx"
    with pytest.raises(ModelError, match="unknown runtime"):
        resolve_runtime("tensorrt", torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here (the CUDA path is checked on a GPU machine)")
def test_the_whole_model_runs_on_the_gpu(crops):  # noqa: F811
    ckpt = load_checkpoint(packaged_model())
    cpu = Embedder(ckpt, runtime="torch", flip=False).embed_crops(crops)
    gpu = Embedder(load_checkpoint(packaged_model()), device="cuda", flip=False).embed_crops(crops)
    assert np.asarray((cpu * gpu).sum(1)).min() >= 0.999
