"""Training on several face sets for pose: one person across sets, folds held out in every set, caches with
different numbers of views, and profile photos that learn their person's frontal target."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnface.alignment import CROPS
from rnnface.lab.data.cfp import person_key
from rnnface.lab.data.features import FrontendFeatures
from rnnface.lab.data.people import fold_keys, person_keys, profiles
from rnnface.lab.data.prepare import FaceCache
from rnnface.lab.training.data import FeatureInputs, build_train_set
from rnnface.lab.training.loop import frontal_means
from tests.test_hybrid import write_features
from tests.test_training import write_cache


def _renamed(root: Path, names: list[str]) -> FaceCache:
    """The cache at `root` with its people renamed `names[i]` in order (a second set's labels)."""
    with open(root / "index.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    people = sorted({r[1] for r in rows[1:]}, key=lambda p: int(p.split("_")[1]))
    rename = dict(zip(people, names))
    for r in rows[1:]:
        r[0], r[1] = r[0].replace(r[1], rename[r[1]]), rename[r[1]]
    with open(root / "index.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return FaceCache.open(root)


def test_person_keys_match_names_across_sets():
    assert person_key("George_W_Bush") == person_key("George W. Bush") == "georgewbush"
    assert person_key("José María Aznar") == person_key("Jose_Maria_Aznar")


def test_one_person_in_two_caches_is_one_class_and_held_out_everywhere(tmp_path):
    a = write_cache(tmp_path / "a", people=3, per_person=2, size=16, crop=dict(vars(CROPS["facenet"])))
    b = write_cache(tmp_path / "b", people=3, per_person=2, size=16, crop=dict(vars(CROPS["facenet"])))
    first = _renamed(a, ["Ann_Lee", "Bo_Chan", "Cy_Dee"])
    second = _renamed(b, ["Ann Lee", "Di Eve", "Ed Fox"])  # Ann Lee is in both sets
    data = build_train_set([first, second], set(), 1)
    assert data.people == ["annlee", "bochan", "cydee", "dieve", "edfox"]
    ann = data.people.index("annlee")
    assert sorted(data.source[data.labels == ann].tolist()) == [0, 0, 1, 1]
    assert set(data.names) == {"Ann_Lee", "Bo_Chan", "Cy_Dee", "Ann Lee", "Di Eve", "Ed Fox"}
    held = build_train_set([first, second], {"annlee"}, 1)
    assert "annlee" not in held.people and len(held.labels) == 8
    assert list(person_keys(second)[:2]) == ["annlee", "annlee"]
    assert not profiles(first).any()


def test_feature_inputs_draw_only_the_views_each_cache_has(tmp_path):
    crop = dict(vars(CROPS["facenet"]))
    caches = []
    for name, views in (("three", 3), ("one", 1)):
        root = write_cache(tmp_path / name, people=2, per_person=4, size=16, crop=crop)
        write_features(root, views=views, seed=views)
        caches.append(FaceCache.open(root))
    rows = [np.arange(8), np.arange(8)]
    sources = [(FrontendFeatures.open(c), r) for c, r in zip(caches, rows)]
    inputs = FeatureInputs(sources, ("block17", "embedding"), augment=True, seed=0)
    assert inputs.arrays["embedding"].shape == (16, 3, 512)
    second = FrontendFeatures.open(caches[1]).arrays["embedding"]
    for _ in range(5):  # the one-view cache's faces always come as view 0
        got = inputs(np.arange(8, 16), torch.device("cpu"))["embedding"]
        np.testing.assert_allclose(got.numpy(), np.asarray(second[:, 0]), atol=1e-6)
    seen = {tuple(inputs(np.arange(8), torch.device("cpu"))["embedding"][0, :3].tolist()) for _ in range(30)}
    assert len(seen) == 3  # the three-view cache's: all three


def test_profile_rows_learn_their_person_s_mean_frontal_target():
    targets = np.array([[1.0, 0], [0, 1.0], [5, 5], [2, 0], [9, 9]], np.float32)
    valid = np.array([True, True, True, True, True])
    labels = np.array([0, 0, 0, 1, 1])
    profile = np.array([False, False, True, False, True])
    got, ok = frontal_means(targets, valid, labels, profile)
    np.testing.assert_allclose(got[2], [0.5, 0.5])  # the mean of person 0's two frontal targets
    np.testing.assert_allclose(got[4], [2, 0])
    np.testing.assert_allclose(got[[0, 1, 3]], targets[[0, 1, 3]])  # frontal rows keep their own
    lone = frontal_means(targets, valid, labels, np.array([False, False, False, True, True]))
    assert not lone[1][3:].any()  # a person with no frontal photo has no target for their profiles


def test_cfp_folds_are_splits_and_people_are_named(cfp_root, tmp_path):
    from rnnface.lab.data.cfp import names, read_protocol

    images = cfp_root / "Data" / "Images"
    root = tmp_path / "cache"
    root.mkdir()
    np.save(root / "faces.npy", np.zeros((2, 160, 160, 3), np.uint8))
    (root / "index.csv").write_text(
        "path,person,status,score,faces,box\n001/frontal/01.jpg,001,ok,1,1,\n001/profile/01.jpg,001,ok,1,1,\n"
    )
    (root / "meta.json").write_text(json.dumps({"version": 2, "data": str(images), "images": 2, "counts": {}}))
    cache = FaceCache.open(root)
    assert list(person_keys(cache)) == [person_key(names(cfp_root)["001"])] * 2
    assert profiles(cache).tolist() == [False, True]
    first = fold_keys(cache, (0,))
    split_one = {
        path.split("/")[0] for pair in read_protocol(cfp_root, "FP") if pair.split == 0 for path in (pair.a, pair.b)
    }
    assert first == {person_key(names(cfp_root)[i]) for i in split_one}
    assert first and not first & fold_keys(cache, (1,))  # identity-disjoint splits


def test_cfp_rows_score_each_split_with_a_model_that_never_saw_its_people(cfp_root, tmp_path):
    from rnnface.lab.data.cfp import names
    from rnnface.lab.evaluation.cfp import disjoint_method, split_people
    from rnnface.lab.evaluation.lfw import DisjointnessError
    from rnnface.models import create_model, save_checkpoint

    root = tmp_path / "cache"
    root.mkdir()
    np.save(root / "faces.npy", np.zeros((1, 160, 160, 3), np.uint8))
    (root / "index.csv").write_text("path,person,status,score,faces,box\n001/frontal/01.jpg,001,ok,1,1,\n")
    images = cfp_root / "Data" / "Images"
    (root / "meta.json").write_text(json.dumps({"version": 2, "data": str(images), "images": 1, "counts": {}}))
    cache = FaceCache.open(root)
    split = split_people(cfp_root)["001"]
    seen_it = person_key(names(cfp_root)["001"])
    paths = {}
    for label, keys in (("clean", []), ("saw", [seen_it])):
        paths[label] = tmp_path / f"{label}.pt"
        meta = {"exclude_folds": [split], "train_keys": keys}
        save_checkpoint(paths[label], create_model("facenet_birnn"), "facenet_birnn", meta=meta)
    method = disjoint_method("clean", [paths["clean"]], cache, cfp_root, {split})
    assert method.embeddings.shape == (1, 512)
    with pytest.raises(DisjointnessError, match="trained on CFP person 001"):
        disjoint_method("saw", [paths["saw"]], cache, cfp_root, {split})
    other = (split + 1) % 10
    with pytest.raises(DisjointnessError, match=f"fold {other} has no identity-disjoint model"):
        disjoint_method("clean", [paths["clean"]], cache, cfp_root, {other})
