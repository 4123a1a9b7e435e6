"""Video: synthetic clips of LFW faces (known who-is-where-when) through `rnnface video`; bad inputs; the aggregator."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from rnnface.aggregation import AggregatorConfig, RecurrentAggregator, load_aggregator, mean_pool, save_aggregator
from rnnface.aggregation.pooling import mean_pool_cues
from rnnface.io import load_image
from rnnface.video.synthetic import Actor, write_video
from tests.conftest import run_cli, run_gallery_cli

run = run_gallery_cli


def run_without_gallery(*args, home: Path):
    """`rnnface` with no gallery asked for and none at the default place (under `home`) yet."""
    return run_cli(*args, env={"RNNFACE_GALLERY": None, "XDG_DATA_HOME": str(home)})


@pytest.fixture
def clip(lfw_images: Path, tmp_path: Path) -> Path:
    def photo(person: str, n: int) -> np.ndarray:
        return load_image(lfw_images / person / f"{person}_{n:04d}.jpg")

    actors = [
        Actor("George_W_Bush", photo("George_W_Bush", 5), 0.0, 3.0, (20, 40), (200, 60)),
        Actor("Serena_Williams", photo("Serena_Williams", 3), 1.0, 4.0, (450, 300), (300, 250)),
        Actor("Colin_Powell", photo("Colin_Powell", 2), 0.5, 3.5, (400, 20), (460, 100)),  # not enrolled
    ]
    return write_video(tmp_path / "clip.mp4", actors, seconds=4.0)


def test_video_tracks_identities_and_outputs(clip, lfw_images, tmp_path):
    g = tmp_path / "g.db"
    bush = [lfw_images / "George_W_Bush" / f"George_W_Bush_000{i}.jpg" for i in (5, 6)]
    assert run("enroll", "George_W_Bush", *bush, gallery=g).exit_code == 0
    assert (
        run(
            "enroll", "Serena_Williams", lfw_images / "Serena_Williams" / "Serena_Williams_0003.jpg", gallery=g
        ).exit_code
        == 0
    )
    out = tmp_path / "out"
    out.mkdir()
    result = run(
        "video",
        clip,
        "--out-json",
        out / "t.json",
        "--out-video",
        out / "a.mp4",
        "--timeline",
        out / "t.png",
        "--pooling",
        "mean",
        gallery=g,
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "t.json").read_text())
    assert report["frames"] == 100 and report["detect_every"] == 3 and not report["truncated"]
    tracks = {t["person"]: t for t in report["tracks"]}
    assert sorted(tracks) == ["George_W_Bush", "Serena_Williams", "unknown #1"], report["tracks"]
    assert len(report["tracks"]) == 3  # one track per actor: none split, none merged
    assert tracks["George_W_Bush"]["first_time"] < 0.2 and 2.7 < tracks["George_W_Bush"]["last_time"] <= 3.0
    assert 0.9 < tracks["Serena_Williams"]["first_time"] < 1.3 and tracks["Serena_Williams"]["last_time"] > 3.7
    # ~26 detection steps on screen; a face continuing its track is re-embedded every 2nd step (--reembed 2)
    assert tracks["George_W_Bush"]["confidence"] > 0.9 and 12 <= tracks["George_W_Bush"]["frames_used"] <= 14
    annotated = cv2.VideoCapture(str(out / "a.mp4"))
    assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == 100 and int(annotated.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640
    assert cv2.imread(str(out / "t.png")).shape[0] > 100
    assert "track 1: George_W_Bush" in result.output


def test_video_without_faces_says_so(tmp_path):
    clip = write_video(tmp_path / "empty.mp4", [], seconds=1.0)
    result = run_without_gallery("video", clip, "--pooling", "mean", home=tmp_path)  # tracks would all be unknown
    assert result.exit_code == 0 and "no face tracks found" in result.output
    mistyped = run("video", clip, gallery=tmp_path / "g.db")  # a gallery asked for must be there
    assert mistyped.exit_code == 2 and "no gallery here" in mistyped.output


def test_bad_videos_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    for args, message in [
        ((junk,), "cannot open this file"),
        ((tmp_path / "missing.mp4",), "file not found"),
        (("rtsp://127.0.0.1:9/nothing",), "cannot open this stream"),
    ]:
        result = run_without_gallery("video", *args, "--pooling", "mean", home=tmp_path)
        assert result.exit_code == 2 and message in result.output, result.output


def test_truncated_video_is_reported(tmp_path, lfw_images):
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(50):
        writer.write(np.full((240, 320, 3), i * 5, np.uint8))
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    result = run_without_gallery("video", cut, "--pooling", "mean", home=tmp_path)
    assert result.exit_code == 2 and "ended early" in result.output, result.output


def test_aggregator_starts_as_mean_pooling_and_round_trips(tmp_path):
    agg = RecurrentAggregator(AggregatorConfig(embed_dim=16, hidden=8))
    emb = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    np.testing.assert_allclose(agg.aggregate(emb, np.ones((5, 3))), mean_pool(emb), atol=1e-5)
    save_aggregator(tmp_path / "a.pt", agg, "backbone@1", {"note": "test"})
    loaded, meta = load_aggregator(tmp_path / "a.pt", "backbone@1")
    assert meta["note"] == "test"
    from rnnface.errors import ModelError

    with pytest.raises(ModelError, match="trained on embeddings of backbone@1"):
        load_aggregator(tmp_path / "a.pt", "another@2")


def test_aggregator_training_steps_lower_the_loss():
    from rnnface.lab.evaluation.sets import SetData
    from rnnface.lab.training.aggregator import AggregatorTrainConfig, batch_of_sets, contrastive_loss

    rng = np.random.default_rng(0)
    people, per, dim = 24, 6, 16
    centres = rng.standard_normal((people, 1, 1, dim))
    noise_scale = np.array([0.5, 2.5])[None, None, :, None]  # variant 0 clean, variant 1 very noisy
    emb = centres + noise_scale * rng.standard_normal((people, per, 2, dim))
    emb = (emb / np.linalg.norm(emb, axis=-1, keepdims=True)).reshape(people * per, 2, dim).astype(np.float32)
    cues = np.zeros((people * per, 2, 3), np.float32)
    cues[:, 1, 2] = 1.0  # the noisy variant is flagged by a cue, as blur is
    person_of = np.repeat([f"p{i}" for i in range(people)], per)
    data = SetData(emb, cues, person_of, {f"p{i}": np.arange(i * per, (i + 1) * per) for i in range(people)})
    cfg = AggregatorTrainConfig(backbone="unused", people=16, max_set=6, hidden=16, lr=3e-3)
    torch.manual_seed(0)
    model = RecurrentAggregator(AggregatorConfig(embed_dim=dim, hidden=16))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    names = sorted(data.images_of)
    fixed = [batch_of_sets(data, names, cfg, np.random.default_rng(100 + i)) for i in range(4)]

    def eval_loss() -> float:
        with torch.no_grad():
            return float(np.mean([contrastive_loss(model(*b), cfg.scale) for b in fixed]))

    before = eval_loss()
    for _ in range(150):
        loss = contrastive_loss(model(*batch_of_sets(data, names, cfg, rng)), cfg.scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert eval_loss() < before - 0.05


def test_tracker_reembeds_continuing_faces_every_nth_step():
    from rnnface.detection import Face
    from rnnface.video.tracker import Tracker

    def face(x: float) -> Face:
        return Face(np.array([x, 10.0, x + 50, 60.0]), 0.99, np.zeros((5, 2)))

    tracker, cue = Tracker(), np.zeros(3)
    embedded = []
    for step in range(6):
        faces = [face(10 + step), face(300)] if step < 3 else [face(10 + step), face(300), face(150)]
        vecs = np.eye(4)[: len(faces)]  # three different people
        need = tracker.needs_embedding(faces, reembed=2)
        embedded.append(need)
        tracker.update(
            step, float(step), faces, [v if n else None for v, n in zip(vecs, need)], [cue if n else None for n in need]
        )
    # first sight embeds; a continuing face every 2nd step; a new face (step 3) at once
    assert embedded[0] == [True, True] and embedded[1] == [False, False] and embedded[2] == [True, True]
    assert embedded[3] == [False, False, True]
    tracks = tracker.finish()
    assert (
        len(tracks) == 3
        and [len(t.embeddings) for t in tracks] == [3, 3, 2]
        and [len(t.frames) for t in tracks] == [6, 6, 3]
    )
    assert Tracker().needs_embedding([face(0)], reembed=1) == [True]


def test_a_continuing_face_that_looks_different_is_embedded_again():
    """A box in the same place whose face no longer looks like the track's last one (its grey thumbnail's
    correlation below SAME_LOOK) is embedded, however plainly its box continues the track."""
    from rnnface.detection import Face
    from rnnface.video.tracker import Tracker, appearance

    rng = np.random.default_rng(0)
    frame_a = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    frame_b = frame_a.copy()
    frame_b[20:80, 40:100] = rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)  # someone else under the box
    face = Face(np.array([40.0, 20.0, 100.0, 80.0]), 0.99, np.zeros((5, 2)))
    tracker, cue = Tracker(), np.zeros(3)
    look_a = [appearance(frame_a, face.box)]
    tracker.update(0, 0.0, [face], [np.eye(4)[0]], [cue], look_a)
    assert tracker.needs_embedding([face], reembed=2, looks=look_a) == [False]  # the same face: not again yet
    assert tracker.needs_embedding([face], reembed=2, looks=[appearance(frame_b, face.box)]) == [True]


@pytest.mark.slow
def test_native_video_warnings_stay_off_the_terminal(tmp_path):
    """FFmpeg's and OpenCV's own messages stay off the terminal: a bad video prints exactly one error line."""
    import subprocess
    import sys

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    script = Path(sys.executable).with_name("rnnface")  # the console script: native output goes to the real stderr
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}  # no user's gallery
    done = subprocess.run([str(script), "video", str(junk)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert lines == [f"error: {junk}: cannot open this file (not a video, or corrupt)"], lines


@pytest.mark.slow
def test_http_stream_that_stalls_is_reported(tmp_path, lfw_images):
    """An HTTP stream that stalls a third of the way through is reported (exit 2), with the frames received."""
    import http.server
    import subprocess
    import sys
    import threading

    import cv2

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    face = cv2.resize(cv2.imread(str(lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg")), (320, 240))
    for i in range(150):
        writer.write(np.roll(face, i, axis=1))
    writer.release()
    data = clip.read_bytes()

    class Stalling(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            self.send_response(200)
            self.send_header("Content-Type", "video/x-msvideo")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 3])
            self.wfile.flush()
            done.wait()  # then nothing more, until the test is over

        def log_message(self, *args):
            pass

    done = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        script = Path(sys.executable).with_name("rnnface")
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
        env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}  # no user's gallery: every track unknown
        finished = subprocess.run(
            [str(script), "video", url, "--pooling", "mean"], capture_output=True, text=True, timeout=300, env=env
        )
    finally:
        done.set()
        server.shutdown()
    assert finished.returncode == 2, finished.stdout + finished.stderr
    # FFmpeg may notice the stall itself (no frame within the read timeout) or end at the frames it had buffered
    err = finished.stderr
    assert (
        "the stream stalled: no frame for 5 s" in err or "ended early (50 of 150 frames): the stream stalled" in err
    ), err


def test_frames_over_the_image_limits_are_refused_before_decoding(tmp_path):
    """The image limits apply to every frame: a video whose frames are larger is refused from its header (a 4.6 MB
    MJPEG of 16,000 x 16,000 frames took 3.7 GB)."""
    from rnnface.video.source import VideoError, open_source

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    for _ in range(5):
        writer.write(np.zeros((480, 640, 3), np.uint8))
    writer.release()
    with pytest.raises(VideoError, match=r"frames of 640x480 = 307,200 pixels, over the limit of 100,000"):
        open_source(str(clip), max_pixels=100_000)
    with pytest.raises(VideoError, match="over the limit"):
        open_source(str(clip), max_side=600)
    source = open_source(str(clip))  # within the default limits
    assert sum(1 for _ in source) == 5
    source.close()


def test_a_track_never_crosses_a_shot_cut(tmp_path, lfw_images):
    """A cut from one person to a stranger on the same spot: two tracks, the stranger `unknown` (the track of the
    first shot went on into the second and gave the stranger the first person's name)."""
    from rnnface.video.synthetic import Shot, write_shots

    bush = sorted((lfw_images / "George_W_Bush").iterdir())
    stranger = load_image(sorted((lfw_images / "Colin_Powell").iterdir())[0])
    spot = (245, 165)
    shots = [
        Shot(3, [Actor("George_W_Bush", load_image(bush[0]), 0, 3, spot, (251, 165))], background=1),
        Shot(3, [Actor("Colin_Powell", stranger, 0, 3, spot, (251, 165))], background=2),
    ]
    clip = tmp_path / "cut.mp4"
    write_shots(clip, shots)
    g = tmp_path / "g.db"
    assert run("enroll", "George_W_Bush", *bush[1:4], gallery=g).exit_code == 0
    result = run("video", clip, "--pooling", "mean", "--out-json", tmp_path / "t.json", gallery=g)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "t.json").read_text())
    assert report["cuts"] == [75]
    tracks = report["tracks"]
    assert [(t["track"], t["person"], t["shot"]) for t in tracks] == [(1, "George_W_Bush", 0), (2, "unknown #1", 1)], (
        tracks
    )
    assert tracks[0]["last_time"] < 3.0 <= tracks[1]["first_time"]


def test_a_stranger_who_comes_back_in_a_later_shot_is_the_same_unknown(tmp_path, lfw_images):
    from rnnface.io import load_image
    from rnnface.video.synthetic import Actor, Shot, write_shots

    powell = sorted((lfw_images / "Colin_Powell").iterdir())
    serena = sorted((lfw_images / "Serena_Williams").iterdir())
    bush = sorted((lfw_images / "George_W_Bush").iterdir())
    spot = (245, 165)
    shots = [
        Shot(3, [Actor("Colin_Powell", load_image(powell[0]), 0, 3, spot, (251, 165))], background=1),
        Shot(3, [Actor("Serena_Williams", load_image(serena[0]), 0, 3, spot, (251, 165))], background=2),
        Shot(3, [Actor("Colin_Powell", load_image(powell[1]), 0, 3, spot, (239, 165))], background=3),
    ]
    clip = tmp_path / "back.mp4"
    write_shots(clip, shots)
    g = tmp_path / "g.db"
    assert run("enroll", "George_W_Bush", *bush[1:4], gallery=g).exit_code == 0
    result = run("video", clip, "--pooling", "mean", "--out-json", tmp_path / "t.json", gallery=g)
    assert result.exit_code == 0, result.output
    tracks = json.loads((tmp_path / "t.json").read_text())["tracks"]
    assert [t["person"] for t in tracks] == ["unknown #1", "unknown #2", "unknown #1"], tracks
    assert tracks[0]["last_time"] < 3.0 <= tracks[1]["first_time"] < 6.0 <= tracks[2]["first_time"]


def test_a_jump_cut_to_someone_else_on_the_same_background_carries_no_name(tmp_path, lfw_images, monkeypatch):
    """Someone else in the same place on the same background (a cut the shot detector cannot see, since the frame
    around the face stays), between two detection steps: no face of the second person is given the first one's
    track, not even the first one (a continuing box was not looked at again), and no frame of the annotated video
    shows the first one's name on the second one (a label was carried over until the next detection)."""
    import rnnface.video.process as process
    from rnnface.video.process import process_video
    from rnnface.video.source import open_source
    from rnnface.video.synthetic import Shot, write_shots

    bush = sorted((lfw_images / "George_W_Bush").iterdir())
    powell = sorted((lfw_images / "Colin_Powell").iterdir())
    spot = (245, 165)
    shots = [
        Shot(3.04, [Actor("George_W_Bush", load_image(bush[0]), 0, 3.04, spot, spot)], background=1),  # to frame 75
        Shot(3, [Actor("Colin_Powell", load_image(powell[0]), 0, 3, spot, spot)], background=1),  # 76: no detection
    ]
    clip = tmp_path / "jump.mp4"
    truth = write_shots(clip, shots)
    g = tmp_path / "g.db"
    assert run("enroll", "George_W_Bush", *bush[1:4], gallery=g).exit_code == 0
    assert run("enroll", "Colin_Powell", *powell[1:4], gallery=g).exit_code == 0
    from rnnface.gallery import open_gallery
    from rnnface.recognition.pipeline import FacePipeline

    labels: list[list[str]] = []
    drawn = process.draw_tracks
    monkeypatch.setattr(
        process, "draw_tracks", lambda frame, tracks: labels.append([t.label for t in tracks]) or drawn(frame, tracks)
    )
    source = open_source(str(clip))
    try:
        with open_gallery(g) as gallery:
            report = process_video(
                source, FacePipeline(), gallery, writer=SimpleNamespace(write=lambda f: None), progress=False
            )
    finally:
        source.close()
    who = {t.frame: t.person for t in truth}
    assert who[76] == "Colin_Powell" and 76 % 3
    assert not [f for f, shown in enumerate(labels) if who.get(f) == "Colin_Powell" and any("Bush" in x for x in shown)]
    for track in report.tracks:
        people = {who[f] for f in track.frames if f in who}
        assert len(people) == 1, (track.id, track.person, people)
        assert track.person == people.pop()


def test_a_face_that_disagrees_with_its_track_starts_another():
    """Two people swap places under one box (a crossing, a box sliding onto a neighbour): the face whose embedding
    disagrees with the track starts a new track instead of continuing it."""
    from rnnface.detection import Face
    from rnnface.video.tracker import Tracker

    rng = np.random.default_rng(0)
    a, b = (v / np.linalg.norm(v) for v in rng.standard_normal((2, 32)))
    box = np.array([100.0, 100.0, 200.0, 200.0])
    face = Face(box, 0.99, np.zeros((5, 2)))
    cue = np.zeros(3, np.float32)
    tracker = Tracker()
    first = tracker.update(0, 0.0, [face], [a], [cue])[0]
    assert tracker.update(3, 0.1, [face], [a], [cue])[0] is first
    other = tracker.update(6, 0.2, [face], [b], [cue])[0]  # the same box, another person
    assert other is not first and other.embeddings[0] is b
    assert Tracker(split_below=None).update(0, 0.0, [face], [a], [cue])[0] is not None  # the old rule still exists


def test_a_segment_too_short_to_decide_is_unknown(tmp_path):
    from rnnface.gallery import FaceRecord, open_gallery
    from rnnface.video.process import TrackingRules, _results
    from rnnface.video.tracker import Track

    rng = np.random.default_rng(1)
    person = rng.standard_normal(16).astype(np.float32)
    person /= np.linalg.norm(person)
    with open_gallery(tmp_path / "g.db") as g:
        g.enroll("Ada", [FaceRecord(person)], "m")
        tracks = []
        for n in (1, 2, 3):
            track = Track(n, 0.0, 1.0, np.zeros(4))
            track.embeddings, track.cues = [person] * n, [np.zeros(3, np.float32)] * n
            tracks.append(track)
        results, _ = _results(tracks, g, mean_pool_cues, 0.5, TrackingRules(), {})
    assert [(r.id, r.person, r.frames_used) for r in results] == [(1, "unknown", 2), (2, "Ada", 3)]


def test_unnamed_groups_are_drawn_in_muted_colours():
    """issue 31 §21: `unknown #k` tracks are muted (as the README says), named people strong, in video and timeline."""
    import colorsys

    from rnnface.video.render import PALETTE, _colour

    def saturation(rgb):
        return colorsys.rgb_to_hsv(*(c / 255 for c in rgb))[1]

    strongest_muted = max(saturation(_colour(f"unknown #{k}")) for k in range(1, 40))
    assert strongest_muted < min(saturation(c) for c in PALETTE) / 2
    assert _colour("Colin Powell") in PALETTE and saturation(_colour("unknown")) == 0


def test_bench_video_times_a_real_clip_beside_the_synthetic_one(clip, lfw_root, tmp_path):
    """`bench video --clip` reports both clips from one run: size, frames, speed and the most faces seen at once."""
    out = tmp_path / "bench.json"
    result = run_cli("bench", "video", "--data", lfw_root, "--seconds", 1, "--faces", 1, "--clip", clip, "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["synthetic"]["faces"] == 1 and report["synthetic"]["most_faces"] == 1
    assert (report["clip"]["path"], report["clip"]["width"], report["clip"]["height"]) == ("clip.mp4", 640, 480)
    assert report["clip"]["most_faces"] == 3 and report["clip"]["frames"] == 100
    assert report["clip"]["fps"] > 0 and "clip.mp4, 640x480, up to 3 face(s) at once" in result.output
    missing = run_cli("bench", "video", "--data", lfw_root, "--clip", tmp_path / "none.mp4", "--out", out)
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_two_faces_on_screen_at_once_are_two_strangers_even_when_they_look_alike(tmp_path, lfw_images):
    """Two photos of one man side by side for the whole clip: their tracks look alike, yet two faces seen in the same
    frame are two people, so they are two strangers, not one `unknown #1` twice."""
    from rnnface.video.process import apart

    powell = sorted((lfw_images / "Colin_Powell").iterdir())
    actors = [
        Actor("Colin_Powell", load_image(powell[0]), 0.0, 3.0, (40, 120), (60, 120)),
        Actor("Colin_Powell", load_image(powell[1]), 0.0, 3.0, (380, 120), (360, 120)),
    ]
    clip = write_video(tmp_path / "twins.mp4", actors, seconds=3.0)
    result = run_without_gallery("video", clip, "--out-json", tmp_path / "t.json", home=tmp_path)
    assert result.exit_code == 0, result.output
    tracks = json.loads((tmp_path / "t.json").read_text())["tracks"]
    assert sorted(t["person"] for t in tracks) == ["unknown #1", "unknown #2"], tracks
    # the rule alone: a group of three where 0 and 1 share a frame splits, and 2 joins the part it is closer to
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 0.99]])
    labels = apart(np.zeros(3, int), [{1, 2}, {2, 3}, {9}], vectors)
    assert labels[0] != labels[1] and labels[2] == labels[1]
    np.testing.assert_array_equal(apart(np.array([0, 0, 1]), [{1}, {2}, {1}], vectors), [0, 0, 1])  # no clash
