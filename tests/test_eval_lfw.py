"""`rnnface eval lfw` end to end on a synthetic LFW-like cache: two identity-disjoint models, reports written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnface.lab.training.loop import train
from tests.conftest import run_cli
from tests.test_training import _tiny_config, write_cache


@pytest.mark.slow
def test_eval_lfw_identity_disjoint(tmp_path):
    cache = write_cache(tmp_path / "cache", people=12, per_person=4)
    # write_cache numbers images globally: Person_00 has images 0-3, Person_01 4-7, Person_02 8-11, ...
    pairs = tmp_path / "pairs.txt"
    lines = ["2\t2"]
    for a, b, c in (("Person_00", "Person_01", "Person_02"), ("Person_03", "Person_04", "Person_05")):
        ia, ib, ic = (4 * int(p[-2:]) for p in (a, b, c))
        lines += [
            f"{a}\t{ia}\t{ia + 1}",
            f"{b}\t{ib}\t{ib + 1}",
            f"{a}\t{ia + 2}\t{c}\t{ic}",
            f"{b}\t{ib + 2}\t{c}\t{ic + 1}",
        ]
    pairs.write_text("\n".join(lines) + "\n")
    a = train(_tiny_config(cache, tmp_path / "a", epochs=1, exclude_folds=(0,), pairs=str(pairs)), progress=False)
    b = train(_tiny_config(cache, tmp_path / "b", epochs=1, exclude_folds=(1,), pairs=str(pairs)), progress=False)
    out = tmp_path / "report"
    # A peer's embeddings, as its teacher pass caches them; it "finds no face" in one image.
    rng = np.random.default_rng(1)
    peer = np.repeat(rng.normal(size=(12, 8)), 4, axis=0) + rng.normal(0, 0.05, (48, 8))
    peer /= np.linalg.norm(peer, axis=1, keepdims=True)
    valid = np.ones(48, bool)
    valid[4 * 3 + 2] = False  # Person_03's third image, used in a mismatched pair of fold 1
    np.savez(cache / "teacher-face_recognition.npz", embeddings=peer.astype(np.float32), valid=valid)
    result = run_cli(
        "eval",
        "lfw",
        "-m",
        str(a),
        "-m",
        str(b),
        "--cache",
        str(cache),
        "--pairs",
        str(pairs),
        "--out",
        str(out),
        "--calibrate",
        str(a),
        "--peer",
        "face_recognition",
        "--also",
        f"again={a},{b}",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "lfw.json").read_text())["rows"]
    report = rows["rnnface"]
    assert report["pairs"] == 8 and report["model_of_fold"] == {"0": "a", "1": "b"}
    # a second group of identity-disjoint models in the same run gets its own row, by the same code
    assert (
        rows["again"]["accuracy_mean"] == report["accuracy_mean"]
        and rows["again"]["identification"] == report["identification"]
    )
    assert 0.0 <= report["accuracy_mean"] <= 1.0 and len(report["fold_accuracies"]) == 2
    # 1:N: each half's gallery holds its 3 people; probes are their other images (3 + 3 + 3 per half)
    assert report["identification"]["gallery_sizes"] == {"a": 3, "b": 3}
    assert report["identification"]["probes"] == 18
    ident = report["identification"]
    point = ident["operating_point"]  # every pair of images within each half (3 people x 4 images per half)
    assert point["impostor_pairs"] == 2 * (12 * 11 // 2 - 3 * 6) and point["genuine_pairs"] == 2 * 3 * 6
    assert ident["threshold"] == point["threshold"] and 0.0 <= point["tar"] <= 1.0
    assert 0.0 <= ident["strangers_rejected"] <= 1.0 and 0.0 <= ident["dir_at_threshold"] <= ident["rank1"]
    assert (out / "lfw_roc.png").stat().st_size > 1000
    assert "| rnnface |" in (out / "lfw.md").read_text() and "| face_recognition |" in (out / "lfw.md").read_text()
    # the peer separates its well-clustered people perfectly; its face-less pair is scored as rejected
    assert rows["face_recognition"]["pairs_without_face"] == 1
    assert rows["face_recognition"]["accuracy_mean"] == 1.0
    # the peer runs the same 1:N protocol over all folds' people (one gallery), at its own threshold
    assert rows["face_recognition"]["identification"]["gallery_sizes"] == {
        "face_recognition[0-0]": 3,
        "face_recognition[1-1]": 3,
    }
    assert rows["face_recognition"]["identification"]["rank1"] > 0.8
    from rnnface.models import load_checkpoint

    calibrated = load_checkpoint(a)  # the run's false-accept curve, from the same cross-person pairs
    assert calibrated.threshold is None and calibrated.calibration.impostor_pairs == point["impostor_pairs"]
    assert set(calibrated.calibration.measured) == {"strict", "balanced", "loose"}
    assert calibrated.meta["lfw_identity_disjoint"]["pairs"] == 8
    assert [s["entries"] for s in calibrated.meta["lfw_search"]] == [3, 3]  # each gallery's FPIR threshold, checked
    # One identity-disjoint model on the folds it left out
    d = train(_tiny_config(cache, tmp_path / "d", epochs=1, exclude_folds=(0, 1), pairs=str(pairs)), progress=False)
    result = run_cli(
        "eval", "lfw", "-m", str(d), "--folds", "0,1", "--cache", str(cache), "--pairs", str(pairs), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    one = json.loads((out / "lfw.json").read_text())
    assert one["folds"] == [0, 1] and one["rows"]["rnnface"]["pairs"] == 8
    assert one["rows"]["rnnface"]["identification"]["gallery_sizes"] == {"d": 6}
    result = run_cli(
        "eval", "lfw", "-m", str(b), "--folds", "1", "--cache", str(cache), "--pairs", str(pairs), "--out", str(out)
    )
    assert result.exit_code == 2 and "at least 2 folds" in result.output
    result = run_cli(
        "eval", "lfw", "-m", str(b), "--folds", "0,1", "--cache", str(cache), "--pairs", str(pairs), "--out", str(out)
    )
    assert result.exit_code == 2 and "fold 0 has no identity-disjoint model" in result.output
    result = run_cli("eval", "lfw", "-m", str(b), "--folds", "12", "--cache", str(cache), "--pairs", str(pairs))
    assert result.exit_code == 2 and "fold numbers 0-9" in result.output
    # A model trained on everyone cannot score any fold: the protocol refuses.
    c = train(_tiny_config(cache, tmp_path / "c", epochs=1), progress=False)
    result = run_cli("eval", "lfw", "-m", str(c), "--cache", str(cache), "--pairs", str(pairs), "--out", str(out))
    assert result.exit_code == 2 and "no identity-disjoint model" in result.output


def test_operating_point_counts_every_cross_person_pair():
    from rnnface.lab.evaluation.identification import operating_point

    # 3 people x 2 images on a line of angles: known cosines
    angles = np.array([0.0, 0.1, 1.0, 1.1, 2.0, 2.1])
    emb = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = np.array(["a", "a", "b", "b", "c", "c"])
    point = operating_point([(emb, labels)], far=1 / 12)
    assert point.impostor_pairs == 12 and point.genuine_pairs == 3
    # the highest impostor cosine is cos(0.9) (a1-b0 and b1-c0): at FAR 1/12 the threshold sits just above it
    scores = emb @ emb.T
    impostors = scores[labels[:, None] != labels[None, :]]
    assert (impostors < point.threshold).all() and abs(point.threshold - np.cos(0.9)) < 1e-6  # float32 scores
    assert point.tar == 1.0  # every same-person pair (cos 0.1) is accepted
    strict = operating_point([(emb, labels)], far=1e-6)  # fewer than one impostor allowed: above the highest one
    assert strict.threshold > np.cos(0.9)
