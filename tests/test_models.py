"""Every registered backbone with every cell: forward + backward, unit-norm embeddings, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnface.errors import ModelError
from rnnface.models import (
    RNN_CELLS,
    create_model,
    list_models,
    load_checkpoint,
    recurrent_share,
    register_model,
    save_checkpoint,
)


def test_registry_lists_the_backbones():
    assert {"seed_rowlstm", "renet", "conv_birnn", "facenet_birnn", "mobilefacenet_birnn"} <= set(list_models())


#: Hybrid heads start exactly at the CNN's embedding (zero correction), where no gradient reaches the
#: sweeps yet; the plain (non-residual) head shows the gradient path.
TEST_ARGS = {n: {"residual": False} for n in ("facenet_birnn", "mobilefacenet_birnn", "fusion_birnn")}
HYBRIDS = set(TEST_ARGS)  # the models with a pretrained front-end
ONE_CNN = HYBRIDS - {"fusion_birnn"}


@pytest.mark.parametrize("cell", sorted(RNN_CELLS))
@pytest.mark.parametrize("name", list_models())
def test_forward_backward_unit_norm(name, cell):
    torch.manual_seed(0)
    model = create_model(name, cell=cell, embed_dim=48, **TEST_ARGS.get(name, {}))
    emb = model(model.example_input(3))  # pixels in, whatever the model is made of
    assert emb.shape == (3, 48)
    model.eval()
    with torch.no_grad():  # the same model from its front-end's outputs (a feature cache): the head alone
        assert model.embed_features(model.example_features(2)).shape == (2, 48)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    emb[:, 0].sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    rnn_grads = [p.grad.abs().sum() for m in model.modules() if isinstance(m, torch.nn.RNNBase) for p in m.parameters()]
    assert rnn_grads and all(g > 0 for g in rnn_grads)  # gradient reaches every recurrent layer
    if model.frontend.name == "pixels":
        assert recurrent_share(model) > 0.5  # the recurrence carries the pixel backbones


@pytest.mark.parametrize("name", sorted(ONE_CNN))
def test_residual_hybrid_starts_at_the_cnn_embedding(name):
    from rnnface.models.hybrid import PRETRAINED

    model = create_model(name).eval()
    x = model.example_features(4)
    dim = model.config.embed_dim
    with torch.no_grad():
        torch.testing.assert_close(model.embed_features(x), x["embedding"], atol=1e-6, rtol=0)
        pixels = model.example_input(2)  # pixels in [-1, 1]; both CNNs read (x - 127.5) / 128
        own = PRETRAINED[model.frontend.name]("cpu")(pixels * 127.5 / 128)["embedding"]
        torch.testing.assert_close(model(pixels), own, atol=1e-5, rtol=0)
    plain = create_model(name, hidden=())  # the average-pool head: no recurrent layer at all
    assert recurrent_share(plain) == 0.0 and plain.embed_features(x).shape == (4, dim)
    with pytest.raises(ValueError, match=f"{dim}-d"):
        create_model(name, embed_dim=128)
    with pytest.raises(ValueError, match="feature map"):
        create_model(name, map="embedding")


def test_the_fusion_head_starts_at_the_first_cnn_and_reads_one_crop_per_cnn():
    """Both CNNs' maps feed the head, each CNN on its own crop; it starts at MobileFaceNet's embedding, and a model
    that needs two crops says so instead of running on the pipeline's one."""
    from rnnface.errors import ModelError
    from rnnface.models.hybrid import PRETRAINED

    model = create_model("fusion_birnn").eval()
    x = model.example_features(4)
    assert set(x) == {"mobilefacenet.map7", "facenet.block17", "mobilefacenet.embedding", "facenet.embedding"}
    pixels = model.example_input(2)
    assert {k: v.shape[-1] for k, v in pixels.items()} == {"mobilefacenet": 112, "facenet": 160}
    with torch.no_grad():
        torch.testing.assert_close(model.embed_features(x), x["mobilefacenet.embedding"], atol=1e-6, rtol=0)
        own = PRETRAINED["mobilefacenet"]("cpu")(pixels["mobilefacenet"] * 127.5 / 128)["embedding"]
        torch.testing.assert_close(model(pixels), own, atol=1e-5, rtol=0)
        model.out.weight.normal_()  # as training leaves it: the branches count
        before = model.embed_features(x)
        x["facenet.block17"] = x["facenet.block17"] * 2  # the second CNN's map moves the embedding
        assert not torch.allclose(model.embed_features(x), before)
    with pytest.raises(ModelError, match="one crop per CNN"):
        model(pixels["mobilefacenet"])
    with pytest.raises(ValueError, match="feature maps"):
        create_model("fusion_birnn", maps=["mobilefacenet.embedding"])


@pytest.mark.parametrize("name", [n for n in list_models() if n not in HYBRIDS])
def test_input_size_is_configurable(name):
    model = create_model(name, img_size=96 if name == "conv_birnn" else 48)
    model.eval()
    size = model.config.img_size
    with torch.no_grad():
        assert model(torch.randn(2, 3, size, size)).shape == (2, model.config.embed_dim)


def test_unknown_and_duplicate_names_raise():
    with pytest.raises(KeyError, match="unknown model 'nope'.*conv_birnn"):
        create_model("nope")
    with pytest.raises(ValueError, match="already registered"):

        @register_model
        def renet(**kwargs):  # noqa: F811
            raise AssertionError

    with pytest.raises(ValueError, match="unknown cell"):
        create_model("renet", cell="transformer")
    with pytest.raises(TypeError):
        create_model("renet", no_such_arg=1)


def test_checkpoint_rebuilds_model_alone(tmp_path):
    torch.manual_seed(0)
    model = create_model("renet", cell="lstm", embed_dim=64, hidden=(16, 32))
    model.eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, "renet", threshold=0.42, meta={"data": "synthetic"})
    ckpt = load_checkpoint(path)
    assert ckpt.name == "renet" and ckpt.threshold == 0.42 and ckpt.meta == {"data": "synthetic"}
    assert ckpt.args["cell"] == "lstm" and ckpt.input_size == 64
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), ckpt.model(x).numpy(), atol=1e-6)


def test_bad_checkpoints_give_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ModelError, match="not an rnnface backbone checkpoint"):
        load_checkpoint(other)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"meta": None}, "meta must be a mapping"),
        ({"model_args": {"img_size": -5}}, "does not match its model"),
        ({"model_args": None}, "model_args and state_dict are required"),
        ({"threshold": "0.5"}, r"threshold must be a finite cosine similarity in \[-1, 1\], got '0.5'"),
        ({"threshold": float("nan")}, "got nan"),
        ({"threshold": 1.5}, "got 1.5"),
        ({"model": "nope"}, "unknown model 'nope'"),
    ],
)
def test_checkpoints_with_bad_metadata_are_one_line_model_errors(tmp_path, change, message):
    """Malformed metadata and thresholds (NaN, out of range) are one-line ModelErrors."""
    model = create_model("renet", embed_dim=16, hidden=(8, 8))
    path = tmp_path / "bad.pt"
    save_checkpoint(path, model, "renet", threshold=0.3)
    payload = torch.load(path, weights_only=True)
    for key, value in change.items():
        payload[key] = {**payload["model_args"], **value} if key == "model_args" and value is not None else value
    torch.save(payload, path)
    with pytest.raises(ModelError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_unreadable_checkpoint_message_is_one_line_without_torch_advice(tmp_path):
    """An unreadable checkpoint is one line that names the file, without torch's advice to load it unsafely."""

    import argparse

    path = tmp_path / "pickled.pt"  # a pickled object that a weights-only load refuses
    torch.save({"format": "rnnface-backbone/1", "obj": argparse.Namespace(a=1)}, path)
    with pytest.raises(ModelError, match="not a checkpoint rnnface can load safely") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("nan", "weights hold NaN or infinite values"),
        ("missing", "missing weights: head.fc.weight"),
        ("shape", r"wrong shapes: head.fc.weight \(\(16, 3\) stored, \(16, 128\) expected\)"),
        ("frontend", "unknown front-end 'vgg'"),
    ],
)
def test_damaged_weights_and_unknown_front_ends_are_refused_at_load(tmp_path, damage, message):
    """NaN weights (which made `verify` answer "different (similarity nan)"), weights that do not fit (the
    message cut at torch's colon) and a front-end nobody knows (a KeyError in every later command) are one-line
    errors naming the file, at load."""
    name, args = ("facenet_birnn", {}) if damage == "frontend" else ("renet", {"embed_dim": 16, "hidden": (8, 64)})
    model = create_model(name, **args)
    path = tmp_path / "bad.pt"
    save_checkpoint(path, model, name, threshold=0.3)
    payload = torch.load(path, weights_only=True)
    weights = payload["state_dict"]
    if damage == "nan":
        weights["head.fc.weight"][0, 0] = float("nan")
    elif damage == "missing":
        del weights["head.fc.weight"]
    elif damage == "shape":
        weights["head.fc.weight"] = torch.zeros(16, 3)
    else:
        payload["model_args"]["frontend"] = "vgg"
    torch.save(payload, path)
    with pytest.raises(ModelError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
