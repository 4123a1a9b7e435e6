"""CFP's official protocol as read, and `eval cfp`'s scoring on it, with embeddings whose answers are known
(skipped without the CFP data)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rnnface.errors import DataError
from rnnface.lab.data.cfp import PROTOCOLS, cfp_images, check_root, lfw_people, read_protocol
from rnnface.lab.evaluation.cfp import Method, cross_person_scores, run_cfp
from tests.conftest import run_cli

pytestmark = pytest.mark.lfw


@pytest.fixture(scope="module")
def cache(cfp_root):
    """What scoring reads of a face cache: every photo's path and person, in cache order."""
    rows = [SimpleNamespace(path=r.path, person=r.person, status="ok") for r in cfp_images(cfp_root)]
    return SimpleNamespace(rows=rows)


def _person_codes(cache, noise: float, seed: int = 0) -> np.ndarray:
    """Unit embeddings that are each person's own direction plus `noise`: a perfect recognizer at noise 0."""
    people = sorted({r.person for r in cache.rows})
    index = {p: i for i, p in enumerate(people)}
    codes = np.zeros((len(cache.rows), len(people)), np.float32)
    codes[np.arange(len(cache.rows)), [index[r.person] for r in cache.rows]] = 1
    codes += np.random.default_rng(seed).normal(0, noise, codes.shape).astype(np.float32)
    return codes / np.linalg.norm(codes, axis=1, keepdims=True)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_protocol_is_ten_identity_disjoint_splits_of_350_and_350_pairs(cfp_root, protocol):
    pairs = read_protocol(cfp_root, protocol)
    images = cfp_root / "Data" / "Images"
    assert len(pairs) == 7000
    for split in range(10):
        mine = [p for p in pairs if p.split == split]
        assert sum(p.same for p in mine) == 350 and sum(not p.same for p in mine) == 350
    people_of = {s: {x.split("/")[0] for p in pairs if p.split == s for x in (p.a, p.b)} for s in range(10)}
    assert all(not (people_of[s] & people_of[t]) for s in range(10) for t in range(s + 1, 10))
    second = "frontal" if protocol == "FF" else "profile"
    assert all(p.a.split("/")[1] == "frontal" and p.b.split("/")[1] == second for p in pairs)
    assert all((p.a.split("/")[0] == p.b.split("/")[0]) == p.same for p in pairs)
    assert all((images / p.a).is_file() and (images / p.b).is_file() for p in pairs[::97])


def test_a_folder_that_is_not_cfp_and_an_unknown_protocol_are_clear_errors(cfp_root, tmp_path):
    with pytest.raises(DataError, match="cfpw.io"):
        check_root(tmp_path)
    with pytest.raises(DataError, match="FF"):
        read_protocol(cfp_root, "PP")
    result = run_cli("eval", "cfp", "--cfp", tmp_path, "--out", tmp_path)
    assert result.exit_code == 2 and "cfpw.io" in result.output


def test_the_people_in_lfw_are_found_by_name_whatever_the_case_and_accents(cfp_root, lfw_images):
    overlap = lfw_people(cfp_root, lfw_images)
    assert len(overlap) == 176
    assert all((lfw_images / folder).is_dir() for folder in overlap.values())


def test_scoring_tells_a_perfect_recognizer_from_a_random_one(cfp_root, lfw_images, cache):
    perfect = Method("perfect", _person_codes(cache, 0.0), np.zeros(len(cache.rows), bool))
    random = Method("random", _person_codes(cache, 100.0), np.zeros(len(cache.rows), bool))
    run = run_cfp(cfp_root, cache, [perfect, random], lfw_images, disjoint={"perfect"})
    for protocol in PROTOCOLS:
        rows = run.reports[protocol]
        assert rows["perfect"].accuracy_mean == 1.0 and rows["perfect"].auc == 1.0
        assert abs(rows["random"].accuracy_mean - 0.5) < 0.05
        assert set(rows) == {"perfect", "perfect, no LFW people", "random"}
        assert rows["perfect, no LFW people"].pairs == run.pairs_without_lfw[protocol] < 7000


def test_cross_person_scores_take_every_pair_of_the_people_left(cache):
    method = Method("perfect", _person_codes(cache, 0.0), np.zeros(len(cache.rows), bool))
    leave_out = {f"{i:03d}" for i in range(1, 101)}  # 100 people set aside, 400 left
    impostor, genuine = cross_person_scores(method, cache, "FF", leave_out)
    assert len(genuine) == 400 * (10 * 9 // 2) and len(impostor) == (4000 * 3999 // 2) - len(genuine)
    impostor, genuine = cross_person_scores(method, cache, "FP", leave_out)
    assert len(genuine) == 400 * 10 * 4 and len(impostor) == 4000 * 1600 - len(genuine)
    assert np.all(genuine == pytest.approx(1.0)) and np.all(np.abs(impostor) < 1e-6)
