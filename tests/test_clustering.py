"""Clustering faces nobody has named: the metrics, average linkage over the k-NN graph (batch and incremental),
the peers' harness, and `rnnface cluster` on LFW photos."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rnnface.clustering.linkage import Clustering, cluster_embeddings
from rnnface.clustering.metrics import score
from tests.conftest import run_cli


def people(n_people: int, seed: int = 0, dim: int = 32, spread: float = 0.9, most: int = 20):
    """Unit embeddings of `n_people` with 1-`most` photos each, and their person labels."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, most + 1, n_people)
    truth = np.repeat(np.arange(n_people), sizes)
    x = rng.standard_normal((n_people, dim))[truth] + spread * rng.standard_normal((len(truth), dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def brute_scores(truth, predicted):
    predicted = predicted.copy()
    alone = predicted == -1
    predicted[alone] = predicted.max() + 1 + np.arange(alone.sum())
    same_t = truth[:, None] == truth[None]
    same_p = predicted[:, None] == predicted[None]
    off = ~np.eye(len(truth), dtype=bool)
    tp = (same_t & same_p & off).sum()
    precision = np.mean([np.mean(truth[predicted == predicted[i]] == truth[i]) for i in range(len(truth))])
    recall = np.mean([np.mean(predicted[truth == truth[i]] == predicted[i]) for i in range(len(truth))])
    return tp / (same_p & off).sum(), tp / (same_t & off).sum(), precision, recall


def test_pairwise_and_bcubed_scores_match_their_definitions():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 30, 600)
    predicted = np.where(rng.random(600) < 0.7, truth, rng.integers(0, 40, 600))
    predicted[rng.random(600) < 0.1] = -1
    s = score(truth, predicted)
    pp, pr, bp, br = brute_scores(truth, predicted)
    assert (s.pairwise_precision, s.pairwise_recall) == pytest.approx((pp, pr))
    assert (s.bcubed_precision, s.bcubed_recall) == pytest.approx((bp, br))
    perfect = score(truth, truth)
    assert perfect.pairwise_f == perfect.bcubed_f == 1.0
    alone = score(truth, np.full(600, -1))
    assert alone.bcubed_precision == 1.0 and alone.pairwise_recall == 0.0 and alone.singletons == 600


@pytest.mark.parametrize("threshold", [0.2, 0.35, 0.5])
def test_average_linkage_over_a_full_graph_is_exact_average_linkage(threshold):
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_rand_score

    x, _ = people(40)
    ours = cluster_embeddings(x, threshold, k=len(x))
    theirs = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=1 - threshold
    ).fit_predict(x)
    assert adjusted_rand_score(ours, theirs) == 1.0


def test_groups_report_their_cohesion_nearest_group_and_representative():
    x, truth = people(25, seed=2)
    clustering = Clustering(0.3)
    clustering.add(x)
    groups = clustering.groups()
    assert sorted(i for g in groups for i in g.members) == list(range(len(x)))
    assert [g.size for g in groups] == sorted((g.size for g in groups), reverse=True)
    for g in groups[:5]:
        sims = x[g.members] @ x[g.members].T
        n = g.size
        assert g.cohesion == pytest.approx((sims.sum() - n) / (n * (n - 1)), abs=1e-4)
        assert g.cohesion >= 0.3 - 1e-6  # every merge kept the mean similarity at the threshold
        assert g.representative in g.members
        assert g.nearest < 0.3  # else the two would have merged
    assert score(truth, clustering.labels).pairwise_f > 0.9


def test_min_size_leaves_small_groups_alone():
    x, _ = people(30, seed=3)
    labels = cluster_embeddings(x, 0.3, min_size=3)
    sizes = np.bincount(labels[labels >= 0])
    assert sizes.min() >= 3 and (labels == -1).any()
    assert list(sizes) == sorted(sizes, reverse=True)  # numbered by size


def test_faces_added_later_join_their_groups_or_found_new_ones():
    x, truth = people(30, seed=4)
    old = truth < 20
    clustering = Clustering(0.3)
    first = clustering.add(x[old])
    before = {g.id: set(g.members) for g in clustering.groups()}
    later = clustering.add(x[~old])
    assert len(clustering) == len(x)
    # a new person's photos form groups of their own; the earlier groups keep every face they had
    assert not set(later) & set(first)
    for members in before.values():
        assert len({int(clustering.labels[i]) for i in members}) == 1
    batch = cluster_embeddings(np.concatenate([x[old], x[~old]]), 0.3)
    labels = np.concatenate([first, later])
    assert score(np.concatenate([truth[old], truth[~old]]), labels).pairwise_f == pytest.approx(
        score(np.concatenate([truth[old], truth[~old]]), batch).pairwise_f, abs=0.02
    )
    # one more photo of an existing person joins that person's group
    person = int(truth[old][0])
    extra = x[truth == person].mean(axis=0, keepdims=True)
    assert clustering.add(extra)[0] == clustering.labels[np.flatnonzero(old)[0]]


def test_pooled_evidence_lets_large_groups_merge_where_single_faces_would_not():
    from rnnface.clustering.linkage import Pooling, background_cosine

    pooling = Pooling(rho=0.5, background=0.1)
    assert pooling.single_pair(np.array([0.4]), np.array([1]))[0] == pytest.approx(0.4)  # one pair: as it is
    # 40 pairs whose mean is 0.4 tell as much as one pair at 0.1 + 0.3 / sqrt(0.5 + 0.5 / 40)
    assert pooling.single_pair(np.array([0.4]), np.array([40]))[0] == pytest.approx(0.1 + 0.3 / np.sqrt(0.5125))
    assert Pooling().single_pair(np.array([0.4]), np.array([40]))[0] == 0.4  # rho 1: plain average linkage
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 64))
    # one person: 10 front photos and 4 profile ones, the two views about 0.35 alike
    x = np.concatenate([a + 0.35 * rng.standard_normal((10, 64)), (0.6 * a + b) + 0.35 * rng.standard_normal((4, 64))])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    plain = cluster_embeddings(x, 0.6)
    pooled = cluster_embeddings(x, 0.6, pooling=Pooling(0.3, background_cosine(rng.standard_normal((500, 64)))))
    pair = cluster_embeddings(x[[0, 10]], 0.6, pooling=Pooling(0.3, 0.0))
    assert pair[0] != pair[1]  # one front and one profile photo alone: not enough
    assert len(set(plain[:10])) == 1 and len(set(plain[10:])) == 1 and plain[0] != plain[10]
    assert len(set(pooled)) == 1  # the two views' groups are one person once their whole evidence counts
    assert abs(background_cosine(rng.standard_normal((2000, 64)))) < 0.01


def test_add_refuses_another_dimension():
    clustering = Clustering(0.3)
    clustering.add(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match="dimension 3"):
        clustering.add(np.eye(3, dtype=np.float32))


@pytest.mark.slow
def test_the_harness_chooses_each_sets_setting_on_the_other_set():
    from rnnface.lab.evaluation.clustering import RHOS, Faces, evaluate, markdown

    sets = []
    for name, seed in (("A", 5), ("B", 6)):
        x, truth = people(30, seed=seed)
        sets.append(Faces(name, {"synthetic": x}, truth, len(truth)))
    results, runs = evaluate(sets, ["rnnface", "connected components of the k-NN graph"])
    assert len(results) == 4
    for r in results:
        other = "B" if r.chosen.dataset == "A" else "A"
        tuned = max((s for s in runs if s.dataset == other and s.method == r.chosen.method), key=lambda s: s.objective)
        if r.chosen.method == "rnnface":  # (rho, threshold): the same rho, the nearest threshold
            assert r.chosen.setting[0] == tuned.setting[0]
            assert abs(r.chosen.setting[1] - tuned.setting[1]) <= 0.05
        else:
            assert abs(r.chosen.setting - tuned.setting) <= 0.05
        assert r.ceiling.objective >= r.chosen.objective
    assert {s.setting[0] for s in runs if s.method == "rnnface"} == set(RHOS)
    table = markdown(results, sets)
    assert "| synthetic | rnnface | rho " in table and "**A**" in table


@pytest.fixture(scope="module")
def photos(lfw_images, tmp_path_factory):
    """Photos of three LFW people in one flat folder, plus a file that is not an image."""
    folder = tmp_path_factory.mktemp("photos")
    for person, count in (("Colin_Powell", 5), ("Aaron_Peirsol", 4), ("Serena_Williams", 4)):
        for n in range(1, count + 1):
            shutil.copy(lfw_images / person / f"{person}_{n:04d}.jpg", folder)
    (folder / "notes.jpg").write_text("not a photo")
    return folder


def test_cluster_groups_photos_by_person_and_draws_a_sheet_per_group(photos, tmp_path):
    result = run_cli("cluster", photos, "--threshold", "balanced", "--sheets", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    named = [{m["image"].rsplit("/", 1)[1].rsplit("_", 1)[0] for m in g["members"]} for g in report["groups"]]
    assert len(named) == 3 and all(len(n) == 1 for n in named)  # one person a group
    assert sorted(g["size"] for g in report["groups"]) == [4, 4, 5]
    for g in report["groups"]:
        assert all(m["doubtful"] == (m["fit"] < report["threshold"]) for m in g["members"])
    assert [s["image"].rsplit("/", 1)[1] for s in report["skipped"]] == ["notes.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["group-0.png", "group-1.png", "group-2.png"]
    from PIL import Image

    assert Image.open(tmp_path / "group-0.png").size[0] > 5 * 96


def test_cluster_text_and_csv(photos):
    text = run_cli("cluster", photos, "--threshold", "balanced")
    assert text.exit_code == 0 and "3 group(s) of 2+" in text.stdout and "skipped" in text.stdout
    assert "evidence pooled (rho 0.7)" in text.stdout  # the shipped model is calibrated: its background is known
    rows = run_cli("cluster", photos, "--threshold", "balanced", "--csv").stdout.splitlines()
    assert rows[0] == "image,x1,y1,x2,y2,group,size,cohesion" and len(rows) == 1 + 13


def test_cluster_bad_input_is_one_clear_line(photos, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in (
        ((empty,), "no images in this folder"),
        ((photos, "--sheets", photos / "notes.jpg"), "cannot make this folder"),
        ((photos, "--threshold", "sloppy"), "sloppy"),
        ((tmp_path / "missing.jpg",), "no such file"),
        ((photos / "notes.jpg",), "none of the 1 photo(s) could be read (first: "),
        ((photos / "notes.jpg", "--keep", "--gallery", tmp_path / "g.db"), "could be read"),
    ):
        result = run_cli("cluster", *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert not (tmp_path / "g.db").exists()  # nothing was written


def test_kept_groups_grow_with_new_photos_and_become_people_when_named(photos, lfw_images, tmp_path):
    gallery = tmp_path / "g.db"
    sheets = tmp_path / "sheets" / "new"  # made when missing
    first = run_cli(
        "cluster", photos, "--threshold", "balanced", "--keep", "--gallery", gallery, "--json", "--sheets", sheets
    )
    assert first.exit_code == 0, first.output
    placed = json.loads(first.stdout)["faces"]
    # issue 31 §12: a kept group's sheet is named as the gallery names the group, so naming it names those faces
    assert sorted(p.name for p in sheets.iterdir()) == ["unknown-1.png", "unknown-2.png", "unknown-3.png"]
    assert [s["image"].rsplit("/", 1)[1] for s in json.loads(first.stdout)["skipped"]] == ["notes.jpg"]
    groups = {}
    for face in placed:
        groups.setdefault(face["group"], set()).add(face["image"].rsplit("/", 1)[1].rsplit("_", 1)[0])
    assert sorted(groups) == ["unknown #1", "unknown #2", "unknown #3"] and all(len(v) == 1 for v in groups.values())
    powell = next(g for g, who in groups.items() if who == {"Colin_Powell"})
    more = tmp_path / "more"
    more.mkdir()
    for n in (6, 7, 8):
        shutil.copy(lfw_images / "Colin_Powell" / f"Colin_Powell_{n:04d}.jpg", more)
    shutil.copy(lfw_images / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg", more)
    second = json.loads(
        run_cli("cluster", more, "--threshold", "balanced", "--keep", "--gallery", gallery, "--json").stdout
    )["faces"]
    joined = {f["image"].rsplit("/", 1)[1]: f for f in second}
    assert all(joined[f"Colin_Powell_{n:04d}.jpg"]["group"] == powell for n in (6, 7, 8))
    assert joined["Aaron_Eckhart_0001.jpg"] == {**joined["Aaron_Eckhart_0001.jpg"], "group": None, "stored": False}
    identified = json.loads(
        run_cli(
            "identify", lfw_images / "Colin_Powell" / "Colin_Powell_0009.jpg", "--gallery", gallery, "--json"
        ).stdout
    )
    assert identified["faces"][0]["name"] == powell  # identify answers the unnamed group
    named = run_cli("name-cluster", powell.split("#")[1], "Colin Powell", "--gallery", gallery)
    assert named.exit_code == 0 and "moved 8 face(s) into Colin Powell" in named.stdout
    listed = json.loads(run_cli("people", "--gallery", gallery, "--json").stdout)["people"]
    assert {p["name"]: p["unnamed"] for p in listed} == {
        "Colin Powell": False,
        **{g: True for g in groups if g != powell},
    }
    # a person joins the groups again: new photos of them are reported, not stored
    third = json.loads(
        run_cli("cluster", more, "--threshold", "balanced", "--keep", "--gallery", gallery, "--json").stdout
    )
    assert {f["group"] for f in third["faces"] if "Powell" in f["image"]} == {"Colin Powell"}
    assert not any(f["stored"] for f in third["faces"] if "Powell" in f["image"])
    others = sorted(g for g in groups if g != powell)
    merged = run_cli("name-cluster", others[0], others[1].split("#")[1], "--gallery", gallery)  # into another group
    assert merged.exit_code == 0 and [
        p["name"] for p in json.loads(run_cli("people", "--gallery", gallery, "--json").stdout)["people"]
    ] == ["Colin Powell", others[1]]
    # a face that is someone else is split off into a group of its own
    listed = run_cli("people", "--gallery", gallery, "--faces", "Colin Powell", "--json")
    stored = json.loads(listed.stdout)["faces"]
    assert len(stored) == 8 and all("Colin_Powell" in f["source"] for f in stored)
    text = run_cli("people", "--gallery", gallery, "--faces", "Colin Powell").stdout
    assert text.startswith(f"{stored[0]['face_id']}\t") and len(text.splitlines()) == 8
    new_group = f"unknown #{int(others[1].split('#')[1]) + 1}"
    split = run_cli("split-face", str(stored[0]["face_id"]), "--gallery", gallery)
    assert split.exit_code == 0, split.output
    assert f"moved from Colin Powell to a new group of its own: {new_group}" in split.stdout
    after = {
        p["name"]: p["faces"] for p in json.loads(run_cli("people", "--gallery", gallery, "--json").stdout)["people"]
    }
    assert after["Colin Powell"] == 7 and after[new_group] == 1
    for args, message in (
        ((str(stored[0]["face_id"]),), "the only face of"),
        (("999999",), "no stored face with id 999999"),
        (("abc",), "Invalid value"),
    ):
        result = run_cli("split-face", *args, "--gallery", gallery)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert {
        p["name"]: p["faces"] for p in json.loads(run_cli("people", "--gallery", gallery, "--json").stdout)["people"]
    } == after


def test_kept_groups_read_only_the_groups_near_the_new_faces_and_place_them_as_the_whole_gallery_would(tmp_path):
    from rnnface.clustering.photos import FoundFace
    from rnnface.clustering.store import keep_groups, neighbourhood
    from rnnface.detection import Face
    from rnnface.gallery import FaceRecord, open_gallery
    from rnnface.operating import Threshold

    x, truth = people(300, seed=3, spread=0.8, most=6)
    stored, new = truth < 290, truth >= 280  # people 280-289 have old and new photos; 290-299 only new ones
    new &= np.random.default_rng(0).random(len(truth)) < 0.6
    stored &= ~new
    threshold = Threshold(0.45, "given")
    with open_gallery(tmp_path / "g.db") as g:
        g.enroll_many(
            [
                (f"unknown #{p + 1}", [FaceRecord(e, f"{p}.jpg") for e in x[stored & (truth == p)]])
                for p in np.unique(truth[stored])
            ],
            "m",
        )
        faces = [
            FoundFace(f"{i}.jpg", Face(np.array([0, 0, 9, 9.0]), 1.0, np.zeros((5, 2))), x[i])
            for i in np.flatnonzero(new)
        ]
        near = neighbourhood(g, x[new], k=8)
        assert 0 < len({f.person for f in near}) < len(g.people())  # a few groups are read, not the whole gallery
        whole = Clustering(threshold.value, k=8)  # what seeding every stored face gives
        ids = whole.seed(x[stored], np.array([f"unknown #{p + 1}" for p in truth[stored]]))
        name_of = {v: k for k, v in ids.items()}
        expected = [name_of.get(grp) for grp in whole.add(x[new]).tolist()]
        placed = keep_groups(g, "m", faces, threshold, min_size=2, k=8)
    joined = [p.group if p.group in name_of.values() else None for p in placed]
    assert joined == expected and any(expected) and not all(expected)


def test_unnamed_group_names_are_reserved_for_clustering(lfw_face, tmp_path):
    gallery = tmp_path / "g.db"
    for name in ("unknown #3", "Unknown #3", "unknown#3", "ｕｎｋｎｏｗｎ #3", "unkn\u03bfwn #5", "unkn\u043ewn #1"):
        result = run_cli("enroll", name, lfw_face, "--gallery", gallery)
        assert result.exit_code == 2 and "reserved" in result.output, (name, result.output)
    assert not gallery.exists()
    for args, message in (
        (("name-cluster", "7", "Bob"), "no person named 'unknown #7'"),
        (("name-cluster", "Bob", "Alice"), "not an unnamed group"),
    ):
        run_cli("enroll", "Someone", lfw_face, "--gallery", gallery)
        result = run_cli(*args, "--gallery", gallery)
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_the_python_api_groups_paths_and_arrays(photos):
    import rnnface
    from rnnface.io import load_image

    paths = sorted(p for p in photos.iterdir() if p.name != "notes.jpg")
    result = rnnface.cluster([*paths[:-1], load_image(paths[-1])], threshold="balanced")
    assert sorted(g.size for g in result.groups) == [4, 4, 5] and not result.alone
    assert result.faces[-1].source == f"image {len(paths) - 1}"
    assert "cluster" in rnnface.__all__


def test_the_scale_benchmark_draws_sets_shaped_like_the_real_one():
    from rnnface.lab.benchmarks.clustering import draw_faces, run_cluster_bench
    from rnnface.lab.benchmarks.population import fit_population

    x, truth = people(60, seed=7, most=6)
    population = fit_population(x, truth)
    drawn, labels = draw_faces(population, np.bincount(truth), 500)
    assert drawn.shape == (500, x.shape[1]) and np.allclose(np.linalg.norm(drawn, axis=1), 1, atol=1e-5)
    assert 1 <= np.bincount(labels).max() <= 6
    report = run_cluster_bench(x, truth, 0.3, sizes=(300,))
    assert [(r["faces"], r["method"]) for r in report["rows"]] == [
        (300, "rnnface"),
        (300, "connected components of the k-NN graph"),
    ]
    assert all(r["seconds"] >= 0 and 0 <= r["pairwise_f"] <= 1 for r in report["rows"])
