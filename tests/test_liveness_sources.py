"""Training the liveness detector across sources: front-ends, augmentation, frame-vector caches, balanced sampling
and the cross-source protocol (a held-out source never trains the model that is tested on it)."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest
import torch

from rnnface.detection import Face
from rnnface.io.paths import OutputError
from rnnface.lab.evaluation.crosssource import PEER, Variant, cross_source, markdown
from rnnface.lab.evaluation.presentations import PresentationSet
from rnnface.lab.training.liveness import LivenessTrainConfig, StatSet, draw_weights, sample_windows
from rnnface.lab.training.liveness_augment import photometric
from rnnface.lab.training.liveness_vectors import cached_vectors
from rnnface.liveness.frontends import frame_features, frontend, frontend_dim, list_frontends
from rnnface.liveness.model import LivenessConfig, LivenessNet, load_liveness, save_liveness


def _face_photo() -> tuple[np.ndarray, Face]:
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, size=(240, 200, 3), dtype=np.uint8)
    landmarks = np.array([[80, 100], [120, 100], [100, 120], [85, 140], [115, 140]], dtype=np.float32)
    return photo, Face(box=(60.0, 70.0, 140.0, 170.0), score=0.9, landmarks=landmarks)


@pytest.mark.parametrize("name", list_frontends())
def test_every_front_end_gives_its_dimension_of_finite_features(name):
    photo, face = _face_photo()
    crop = photo[100:164, 70:134].mean(axis=2).astype(np.uint8)
    out = frontend(name).features(photo, face, crop)
    assert out.shape == (frontend(name).dim,) and out.dtype == np.float32 and np.isfinite(out).all()
    joined = frame_features(list_frontends(), photo, face, crop)
    assert joined.shape == (frontend_dim(list_frontends()),)


def test_crop_front_ends_score_a_batch_as_they_score_each_crop():
    photo, face = _face_photo()
    crops = np.stack([photo[100:164, 70 + k : 134 + k].mean(axis=2).astype(np.uint8) for k in (0, 7, 13)])
    config = LivenessConfig(cell="none", frontends=("texture", "lbp"))
    assert config.reads_crops_only and not LivenessConfig(frontends=("texture", "geometry")).reads_crops_only
    batch = LivenessNet(config).stats(torch.from_numpy(crops).float().div(255.0)[:, None])
    each = np.stack([frame_features(config.frontends, photo, face, c) for c in crops])
    assert batch.shape == (3, 256) and np.allclose(batch.numpy(), each, atol=1e-5)
    lbp = each[:, 128:]
    # 12 histograms a crop (LBP(8,1) whole and in 9 cells: 10 bins; LBP(8,2): 10; LBP(16,2): 18), each a distribution
    sizes = [10] * 11 + [18]
    bounds = np.cumsum([0] + sizes)
    assert all(np.allclose(lbp[:, a:b].sum(1), 1.0) for a, b in zip(bounds[:-1], bounds[1:]))
    smooth = np.full((64, 64), 128, np.uint8)  # a flat patch is all one uniform pattern
    assert frontend("lbp").features(photo, face, smooth).max() == 1.0


def test_the_shipped_minifasnet_is_the_published_export(shared_models):
    weights = resources.files("rnnface.weights")
    for name in ("MiniFASNetV2_2.7_80x80.onnx", "MiniFASNetV1SE_4.0_80x80.onnx"):
        shipped = hashlib.sha256(weights.joinpath(name).read_bytes()).hexdigest()
        assert shipped == hashlib.sha256((shared_models / name).read_bytes()).hexdigest(), name
    assert "Apache License" in weights.joinpath("LICENSE-minifasnet.txt").read_text()


def test_a_two_front_end_checkpoint_rebuilds_alone(tmp_path):
    config = LivenessConfig(cell="gru", frontends=("texture", "minifasnet"))
    net = LivenessNet(config).eval()
    save_liveness(tmp_path / "m.pt", net, {1: 0.5, 8: 0.4}, {"note": "test"})
    loaded = load_liveness(tmp_path / "m.pt")
    assert loaded.config.frontends == ("texture", "minifasnet") and not loaded.config.reads_crops_only
    x = torch.randn(2, 3, 387)
    assert torch.allclose(loaded.net.integrate(x), net.integrate(x))


def test_photometric_augmentation_keeps_the_frame_and_changes_its_look():
    photo, _ = _face_photo()
    a = photometric(photo, np.random.default_rng(1))
    b = photometric(photo, np.random.default_rng(1))
    assert a.shape == photo.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    assert np.abs(a.astype(int) - photo).mean() > 1.0


def _synthetic(sessions=("A", "B", "C"), n=30, dim=387, seed=0) -> StatSet:
    """Captures of 1-3 frames; live frames are larger in the first 16 columns (texture's) in every session."""
    rng = np.random.default_rng(seed)
    lengths, live, names, rows, peer = [], [], [], [], []
    for s in sessions:
        for i in range(n):
            is_live = i % 2 == 0
            k = int(rng.integers(1, 4))
            x = rng.normal(size=(k, dim)).astype(np.float32)
            x[:, :16] += 2.0 if is_live else -2.0
            rows.append(x)
            peer.extend([0.5 if is_live else -0.5] * k)
            lengths.append(k)
            live.append(is_live)
            names.append(s)
    lengths = np.array(lengths)
    return StatSet(
        torch.from_numpy(np.concatenate(rows)),
        np.concatenate([[0], np.cumsum(lengths)[:-1]]),
        lengths,
        np.array(live),
        np.array(names),
        None,
        np.array(peer),
    )


def test_stat_sets_subset_join_and_take_columns_consistently():
    data = _synthetic()
    part = data.subset(data.sessions == "B")
    assert part.lengths.sum() == len(part.stats) == len(part.peer)
    first_b = int(np.flatnonzero(data.sessions == "B")[0])
    assert torch.equal(part.capture(0), data.capture(first_b))
    joined = StatSet.join([data.subset(data.sessions == "A"), part])
    assert len(joined.lengths) == 60 and torch.equal(joined.capture(30), part.capture(0))
    assert joined.columns(np.arange(128)).stats.shape == (len(joined.stats), 128)


def test_balanced_sampling_draws_each_session_alike():
    data = _synthetic(n=20)
    data = StatSet.join([data] + [data.subset(data.sessions == "A")] * 9)  # session A ten times the others
    idx, _ = sample_windows(data, 6000, 1, np.random.default_rng(0), draw_weights(data, balance_sessions=True))
    frame_session = np.repeat(data.sessions, data.lengths)
    share = np.mean(frame_session[idx[:, 0]] == "A")
    assert 0.25 < share < 0.42  # a third, where frame-weighted draws would give about 0.83
    idx, _ = sample_windows(data, 6000, 1, np.random.default_rng(0))
    assert np.mean(frame_session[idx[:, 0]] == "A") > 0.75


def test_cross_source_holds_each_source_out_and_scores_the_peer_on_the_same_faces():
    data = _synthetic()
    config = LivenessTrainConfig(model=LivenessConfig(cell="none"), steps=60, frames_per_step=64)
    joined = ("texture", "minifasnet")
    variants = [Variant("both", joined), Variant("minifasnet only", ("minifasnet",))]
    rows = cross_source(data, joined, variants, config, ["A", "B", "C"])
    assert [r.set for r in rows] == ["A"] * 3 + ["B"] * 3 + ["C"] * 3
    by = {(r.set, r.judge): r for r in rows}
    for s in "ABC":
        assert by[s, PEER].hter == 0.0 and by[s, "both"].hter < 0.1  # the first columns (texture) separate
        assert by[s, "minifasnet only"].hter > 0.2  # without it, noise
        assert by[s, "both"].live == 15 and by[s, "both"].attacks == 15
    table = markdown(rows, [PEER, "both", "minifasnet only"])
    assert "mean over 3 held-out sources" in table and "worst held-out source" in table


def test_a_source_in_one_class_only_is_not_scored_and_a_presentation_without_a_face_is_rejected():
    data = _synthetic()
    config = LivenessTrainConfig(model=LivenessConfig(cell="none"), steps=30, frames_per_step=64)
    joined = ("texture", "minifasnet")
    variants = [Variant("v", joined)]
    one_class = data.subset(~((data.sessions == "C") & ~data.live))
    assert cross_source(one_class, joined, variants, config, ["C"]) == []
    faceless = np.ones(len(data.lengths), bool)
    faceless[np.flatnonzero(data.sessions == "C")[0]] = False  # C's first live presentation: no face found
    lengths = np.where(faceless, data.lengths, 0)
    frames = np.repeat(faceless, data.lengths)
    data = StatSet(
        data.stats[torch.from_numpy(frames)],
        np.concatenate([[0], np.cumsum(lengths)[:-1]]),
        lengths,
        data.live,
        data.sessions,
        None,
        data.peer[frames],
    )
    rows = cross_source(data, joined, variants, config, ["C"])
    assert [r.no_face_live + r.no_face_attacks for r in rows] == [1, 1] and all(r.bpcer >= 1 / 15 for r in rows)


def test_a_vector_cache_is_reused_and_a_foreign_file_is_never_overwritten(tmp_path, lfw_face, monkeypatch):
    from rnnface.io import load_image

    photo = load_image(lfw_face)
    calls = []

    def load():
        calls.append(1)
        return [photo]

    sets = [(PresentationSet("s", [load], [load]), 0)]
    first = cached_vectors(tmp_path, sets, ["minifasnet"])
    seen = len(calls)
    again = cached_vectors(tmp_path, sets, ["minifasnet"])
    assert len(calls) == seen and torch.equal(first.stats, again.stats)
    assert list(first.lengths) == [1, 1] and first.stats.shape == (2, 259) and np.isfinite(first.peer).all()
    assert list(first.sessions) == list(again.sessions)
    (cached,) = tmp_path.glob("*.npz")
    cached.write_bytes(b"not a cache")  # the file at that name is no longer ours
    with pytest.raises(OutputError, match="not a frame-vector cache"):
        cached_vectors(tmp_path, sets, ["minifasnet"])
    assert cached.read_bytes() == b"not a cache"
    other = cached_vectors(tmp_path, sets, ["texture"])  # other inputs: another file
    assert other.stats.shape == (2, 128) and len(list(tmp_path.glob("*.npz"))) == 2
    import rnnface.lab.training.liveness_vectors as vectors

    monkeypatch.setattr(vectors, "NUAA_EYES", ((16.0, 20.0), (50.5, 20.0)))  # crops cut elsewhere: another file
    moved = cached_vectors(tmp_path, sets, ["texture"])
    assert len(list(tmp_path.glob("*.npz"))) == 3 and not torch.equal(moved.stats, other.stats)


def test_one_photo_at_two_sizes_is_a_still_and_a_moved_face_is_not():
    """The still rule compares one region of every frame (relative to the frame's size), not crops that follow
    each frame's landmarks: the same picture resized does not change, a face that moves does."""
    import cv2

    from rnnface.liveness.check import STILL_CHANGE, frame_change, thumbnail

    photo, face = _face_photo()
    photo = cv2.normalize(cv2.GaussianBlur(photo, (0, 0), 3), None, 0, 255, cv2.NORM_MINMAX)  # a picture, not noise
    box = np.asarray(face.box) / np.array([200, 240, 200, 240])
    big = cv2.resize(photo, (400, 480), interpolation=cv2.INTER_CUBIC)
    assert frame_change([thumbnail(photo), thumbnail(big)] * 4, np.stack([box] * 8)) < STILL_CHANGE
    moved = [thumbnail(np.roll(photo, 3 * i, axis=1)) for i in range(8)]
    assert frame_change(moved, np.stack([box] * 8)) > 5 * STILL_CHANGE


def test_a_photo_replayed_without_motion_is_never_live(lfw_images):
    """issue 32: static replays (one photo repeated exactly, or with a camera's sensor noise and JPEG on every
    frame) are refused by the shipped checker, whatever their texture scores."""
    from rnnface.lab.evaluation.liveness_peers import CheckerJudge
    from rnnface.lab.evaluation.presentations import judge_stills
    from rnnface.liveness.check import LivenessChecker

    rows = judge_stills(lfw_images, [CheckerJudge("ours", LivenessChecker())], people=12)
    assert {r.kind for r in rows} == {"identical frames", "near-identical frames (noise, JPEG)"}
    assert all(r.judged >= 8 and r.accepted == 0 for r in rows), rows
