"""Operating points: named thresholds from a false-accept curve, 1:N thresholds set for a target FPIR at the
gallery's size, and the one rule that picks which threshold decides."""

from __future__ import annotations

import numpy as np
import pytest

from rnnface.errors import ModelError, ThresholdError
from rnnface.operating import POINTS, Calibration, far_for_fpir, parse_threshold, resolve


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(0.0, 0.12, 2_000_000), rng.normal(0.65, 0.12, 20_000)


@pytest.fixture(scope="module")
def calibration(scores) -> Calibration:
    return Calibration.from_scores(*scores, data="synthetic")


def test_parse_threshold_takes_names_and_numbers_and_names_the_choices():
    assert parse_threshold(None) is None
    assert parse_threshold(" Strict ") == "strict"
    assert parse_threshold("0.4") == pytest.approx(0.4)
    assert parse_threshold(-1) == -1.0
    for bad in ("medium", "1.5", "nan", True, "0.4.1"):
        with pytest.raises(ThresholdError, match="strict .*balanced .*loose"):
            parse_threshold(bad)


def test_each_named_point_accepts_the_share_of_impostors_it_is_named_for(calibration, scores):
    impostor, genuine = scores
    for name, far in POINTS.items():
        point = calibration.point(name)
        measured = float(np.mean(impostor >= point.value))
        assert measured <= far * 1.05, (name, measured)
        assert measured >= far * 0.8, (name, measured)  # interpolated between grid points, not far off
        assert calibration.measured[name]["lfw"]["far"] == pytest.approx(measured)
        assert calibration.measured[name]["lfw"]["tar"] == pytest.approx(float(np.mean(genuine >= point.value)))
    assert calibration.point("strict").value > calibration.point("balanced").value > calibration.point("loose").value


def test_far_at_inverts_threshold_at(calibration):
    for far in (3e-2, 1e-3, 2e-5):
        value, floor = calibration.threshold_at(far)
        assert not floor
        assert calibration.far_at(value) == pytest.approx(far, rel=0.05)
    assert calibration.far_at(1.0) == 0.0


def test_fpir_is_one_minus_the_chance_that_no_comparison_passes():
    assert far_for_fpir(0.01, 1) == pytest.approx(0.01)
    far = far_for_fpir(0.01, 1000)
    assert 1 - (1 - far) ** 1000 == pytest.approx(0.01)
    with pytest.raises(ModelError, match="FPIR"):
        far_for_fpir(0.0, 10)


def test_a_search_threshold_rises_with_the_gallery_and_holds_its_fpir(calibration, scores):
    impostor = scores[0]
    small, large = calibration.search(10), calibration.search(1000)
    assert large.value > small.value
    assert large.describe().startswith("FPIR 0.01 among 1000 gallery entries")
    rng = np.random.default_rng(1)
    # strangers against a gallery of 1000: their best score over 1000 impostor comparisons
    best = rng.choice(impostor, (4000, 1000)).max(axis=1)
    assert np.mean(best >= large.value) == pytest.approx(0.01, abs=0.006)


def test_a_search_past_the_curve_uses_its_strictest_threshold_and_says_so(calibration):
    beyond = calibration.search(10**9)
    assert beyond.floor and beyond.value == calibration.thresholds[-1]
    assert "strictest" in beyond.describe()


def test_resolve_is_the_one_rule(calibration):
    assert resolve(None, calibration, None).point == "balanced"
    assert resolve(None, calibration, None, comparisons=50).point == "search"
    assert resolve("strict", calibration, None, comparisons=50).point == "strict"
    given = resolve("0.5", calibration, None)
    assert (given.point, given.value) == ("given", 0.5) and given.far == pytest.approx(calibration.far_at(0.5))
    single = resolve(None, None, 0.42, comparisons=50)
    assert (single.point, single.value, single.far) == ("checkpoint", 0.42, None)
    with pytest.raises(ThresholdError, match="no calibrated operating points"):
        resolve("strict", None, 0.42)
    with pytest.raises(ModelError, match="no calibrated threshold"):
        resolve(None, None, None)


def test_a_calibration_survives_its_dict_and_refuses_a_malformed_one(calibration):
    again = Calibration.from_dict(calibration.to_dict())
    assert again == calibration
    raw = calibration.to_dict()
    for broken in (
        {**raw, "thresholds": raw["thresholds"][::-1]},
        {**raw, "fars": raw["fars"][:3]},
        {**raw, "thresholds": [2.0] * len(raw["fars"])},
        {k: v for k, v in raw.items() if k != "fars"},
        [1, 2],
    ):
        with pytest.raises(ModelError, match="calibration"):
            Calibration.from_dict(broken)


def test_a_checkpoint_keeps_its_calibration(tmp_path, calibration):
    from rnnface.models import create_model, load_checkpoint, save_checkpoint

    path = tmp_path / "c.pt"
    model = create_model("renet", embed_dim=32)
    save_checkpoint(path, model, "renet", calibration=calibration)
    loaded = load_checkpoint(path)
    assert loaded.calibration == calibration and loaded.threshold is None
    raw = calibration.to_dict()
    import torch

    payload = torch.load(path, weights_only=True)
    payload["calibration"] = {**raw, "thresholds": raw["thresholds"][::-1]}
    torch.save(payload, path)
    with pytest.raises(ModelError, match=r"c\.pt: malformed checkpoint \(its calibration curve"):
        load_checkpoint(path)
