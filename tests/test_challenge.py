"""The directed head-turn challenge on real turns: CFP photos of one person, frontal and in profile to each side,
made into clips that show the turns a challenge asks for (or others), through the service; and `eval challenge`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import run_cli

#: CFP person 001's profile photos by the side they turned to, their own (read off the photos by eye: in 01 and 04
#: the nose points to the image's right).
SIDES = {"left": ["01.jpg", "04.jpg"], "right": ["02.jpg", "03.jpg"]}
CANVAS = (600, 480)  # every frame of a clip is one size: each photo is pasted on a grey canvas


def framed(path: Path) -> np.ndarray:
    """The photo at `path` (RGB) pasted in the middle of a grey canvas."""
    photo = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    canvas = np.full((*CANVAS, 3), 128, np.uint8)
    h, w = photo.shape[:2]
    top, left = (CANVAS[0] - h) // 2, (CANVAS[1] - w) // 2
    canvas[top : top + h, left : left + w] = photo
    return canvas


def turning(cfp_root: Path, turns: list[str]) -> list[np.ndarray]:
    """Frames of person 001: at rest, then each turn (its side's two profiles, each held two frames) and back."""
    person = cfp_root / "Data" / "Images" / "001"
    paths = [person / "frontal" / "01.jpg"]
    for i, turn in enumerate(turns):
        paths += [person / "profile" / name for name in SIDES[turn] for _ in range(2)]
        paths.append(person / "frontal" / f"{i + 2:02d}.jpg")
    return [framed(p) for p in paths]


def uploads(frames: list[np.ndarray]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("frames", (f"f{i}.jpg", cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes(), "image/jpeg"))
        for i, f in enumerate(frames)
    ]


def test_a_clip_of_the_turns_asked_passes_the_challenge_and_a_replay_of_it_passes_only_its_own(cfp_root, tmp_path):
    pytest.importorskip("fastapi", reason="the service extra is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from rnnface.service import create_app
    from rnnface.settings import Settings

    c = TestClient(create_app(Settings(api_key="k", gallery=str(tmp_path / "g.db"), request_timeout_s=600)))
    issued = c.post("/api/v1/challenge").json()
    clip = uploads(turning(cfp_root, issued["turns"]))
    answer = c.post("/api/v1/liveness", data={"challenge_token": issued["token"]}, files=clip)
    assert answer.status_code == 200, answer.text
    turn = answer.json()["challenge"]
    assert turn["passed"] and turn["seen"] == issued["turns"] and "as asked" in turn["reason"], turn
    other = next(t for t in (c.post("/api/v1/challenge").json() for _ in range(60)) if t["turns"] != issued["turns"])
    replayed = c.post("/api/v1/liveness", data={"challenge_token": other["token"]}, files=clip).json()["challenge"]
    assert not replayed["passed"] and replayed["seen"] == issued["turns"] and replayed["asked"] == other["turns"]
    assert "not the turns asked" in replayed["reason"]


def test_eval_challenge_reports_live_turns_passing_and_replays_at_most_at_chance(cfp_root, tmp_path):
    result = run_cli("eval", "challenge", "--cfp", cfp_root, "--people", 6, "--frames", 8, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "challenge.json").read_text())
    rows = report["rows"]
    assert report["people"] == 6 and (tmp_path / "challenge.md").read_text().count("\n| ") == len(rows) + 2
    live = {r["turns"]: r for r in rows if r["should_pass"]}
    assert set(live) == {1, 2} and all(r["clips"] >= 6 and r["passed"] >= 0.8 for r in live.values())
    replays = [r for r in rows if not r["should_pass"] and r["turns"]]
    assert len(replays) == 4  # recorded live turns and printed photos, 1 and 2 turns
    for r in replays:  # a clip shows one sequence of turns, so it passes one challenge of its length at most
        assert r["passed"] <= 0.5 ** r["turns"] + 1e-9, r
    anyturn = next(r for r in rows if not r["should_pass"] and not r["turns"] and r["name"].startswith("replay: those"))
    assert anyturn["passed"] >= 0.8  # the check it replaces lets those replays through


def test_the_cli_judges_a_clip_against_the_turns_given(cfp_root, tmp_path):
    from tests.clips import write_video

    clip = write_video(turning(cfp_root, ["right", "left"]), tmp_path / "turns.avi")
    asked = run_cli("liveness", clip, "--turns", "right,left", "--every", "1", "--json")
    turn = json.loads(asked.output)["challenge"]
    assert turn["passed"] and turn["asked"] == turn["seen"] == ["right", "left"], asked.output
    wrong = run_cli("liveness", clip, "--turns", "left, right", "--every", "1")
    assert (
        wrong.exit_code == 1 and "head turns: not as asked: not the turns asked: asked left, then right" in wrong.output
    )
    anyturn = run_cli("liveness", clip, "--challenge", "--every", "1")
    assert "head turn: seen" in anyturn.output, anyturn.output
    bad = run_cli("liveness", clip, "--turns", "left,up")
    assert bad.exit_code == 2 and "a turn is left or right, got 'up'" in bad.output
    off = run_cli("authenticate", "Someone", clip, "--turns", "left", "--no-challenge")
    assert off.exit_code == 2 and "--no-challenge turns off" in off.output


def test_the_camera_prompts_a_look_then_each_turn_in_order_as_its_frames_come(cfp_root, tmp_path):
    from rnnface.cli.liveness import _prompts
    from rnnface.liveness.clip import read_clip
    from tests.clips import write_video

    prompts = _prompts(("left", "right"), 32)
    assert len(prompts) == 32 and prompts[:4] == ["Look at the camera"] * 4
    assert prompts[4:18] == ["Turn your head slowly to your left, and back"] * 14
    assert set(prompts[18:]) == {"Turn your head slowly to your right, and back"}
    assert set(_prompts(True, 8)[1:]) == {"Turn your head slowly to one side, and back"}
    heard: list[int] = []
    clip = write_video(turning(cfp_root, ["left"]), tmp_path / "turn.avi")
    assert len(read_clip(clip, 1, 4, heard.append)) == 4 and heard == [0, 1, 2, 3]
