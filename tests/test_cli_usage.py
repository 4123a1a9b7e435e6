"""What a new user of the command line meets: help text, --version, serve's options, reads that never create a
gallery, outputs that never create folders, still images given to `video`, a model without a threshold."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from rnnface import __version__
from tests.conftest import run_cli


def test_version_and_help_have_no_type_noise():
    assert run_cli("--version").output.strip() == f"rnnface {__version__}"
    for command in ("enroll", "identify", "video", "serve", "verify"):
        result = run_cli(command, "--help")
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output and "╭" not in result.output, result.output
    assert "/docs" in run_cli("serve", "--help").output


def test_serve_takes_gallery_model_and_key_options(monkeypatch, tmp_path, tiny_checkpoint):
    import uvicorn

    started = {}
    monkeypatch.setattr(os, "environ", dict(os.environ))  # what serve sets for its workers stays in this test
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.update(kwargs, env=dict(os.environ)))
    gallery = tmp_path / "g.db"
    result = run_cli("serve", "--gallery", gallery, "--model", tiny_checkpoint, "--api-key", "k3y", "--port", "8123")
    assert result.exit_code == 0, result.output
    assert f"gallery {gallery}" in result.output and "writes need X-API-Key" in result.output
    env = started["env"]
    assert (env["RNNFACE_GALLERY"], env["RNNFACE_MODEL"], env["RNNFACE_API_KEY"]) == (
        str(gallery),
        str(tiny_checkpoint),
        "k3y",
    )
    assert started["port"] == 8123 and started["limit_concurrency"] == 32  # RNNFACE_MAX_CONNECTIONS: more get 503


@pytest.mark.parametrize(
    "args",
    [("people",), ("remove", "Ada"), ("export", "out.zip"), ("reindex",)],
)
def test_reading_commands_never_create_a_gallery(tmp_path, args, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the default gallery lives under XDG_DATA_HOME, and does not exist yet
    result = run_cli(*args, env={"RNNFACE_GALLERY": None, "XDG_DATA_HOME": str(tmp_path / "data")})
    assert result.exit_code == 2 and "no gallery here" in result.output, result.output
    assert not (tmp_path / "data").exists() and not (tmp_path / "out.zip").exists()


def test_outputs_in_a_missing_folder_are_refused_and_no_folder_is_made(lfw_face, tmp_path):
    target = tmp_path / "nowhere" / "deeper" / "boxes.png"
    result = run_cli("detect", lfw_face, "--draw", target)
    assert result.exit_code == 2 and "does not exist" in result.output and len(result.output.splitlines()) == 1
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("kind", ["whole", "truncated"])
def test_video_refuses_a_still_image(lfw_face, tmp_path, kind):
    still = tmp_path / "photo.jpg"
    data = lfw_face.read_bytes()
    still.write_bytes(data if kind == "whole" else data[: len(data) // 2])
    result = run_cli("video", still, "--pooling", "mean", env={"XDG_DATA_HOME": str(tmp_path)})
    assert result.exit_code == 2, result.output
    assert "a still JPEG image, not a video" in result.output and len(result.output.strip().splitlines()) == 1


def test_video_with_a_model_without_a_threshold_is_a_clear_error(tmp_path, lfw_images):
    """A checkpoint with no calibrated threshold: `video` says to pass --threshold (it crashed with a TypeError when
    the rule that picks the threshold was written again, without its check, in the video code)."""
    import torch

    from rnnface.gallery import FaceRecord, open_gallery
    from rnnface.models import create_model, save_checkpoint
    from rnnface.models.checkpoint import load_checkpoint
    from rnnface.video.synthetic import Actor, write_video

    torch.manual_seed(0)
    model = create_model("conv_birnn", stem=(8, 16, 16), hidden=(16,), embed_dim=32)
    ckpt = tmp_path / "uncalibrated.pt"
    save_checkpoint(ckpt, model, "conv_birnn")  # no threshold
    g = tmp_path / "g.db"
    with open_gallery(g) as gallery:
        gallery.enroll("Someone", [FaceRecord(torch.randn(32).numpy())], load_checkpoint(ckpt).model_id)
    photo = np.asarray(Image.open(lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg"))
    clip = write_video(tmp_path / "clip.mp4", [Actor("bush", photo, 0, 1, (100, 100), (120, 100))], 1.0)
    result = run_cli("video", clip, "--model", ckpt, "--pooling", "mean", env={"RNNFACE_GALLERY": str(g)})
    assert result.exit_code == 2, result.output
    assert "no calibrated threshold" in result.output and "--threshold" in result.output
    ok = run_cli(
        "video", clip, "--model", ckpt, "--pooling", "mean", "--threshold", "0.5", env={"RNNFACE_GALLERY": str(g)}
    )
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize(
    ("peer", "message"),
    [("alone=nope", "unknown pretrained embedder 'nope'"), ("dlib=face_recognition", "not a front-end's own")],
)
def test_eval_backbones_refuses_a_peer_it_cannot_score_in_one_line(peer, message, tmp_path):
    result = run_cli("eval", "backbones", "--peer", peer, "--out", tmp_path)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())
