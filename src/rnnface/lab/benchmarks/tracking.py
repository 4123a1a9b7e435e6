"""`rnnface bench tracking`: identity switches, IDF1 and wrong-name seconds of `rnnface video` on multi-shot videos of
real LFW faces (cuts, crossings, occlusions), with the tracking rules of before (no cuts, no identity check) and of
now, on the same videos.

Each scenario enrols some of its people (from photos other than the one on screen) into a fresh gallery; the others
are strangers. At every detection step, a reported track's box is matched to the visible face whose patch holds its
centre (the nearest one if several do). IDF1 is the share of matched detections under the best one-to-one pairing of
people and tracks within each shot; an identity switch is a person's matched track changing within a shot; merged
counts tracks that hold several people; a wrong-name second is a second of a person's face labelled with another
person's name (an enrolled person shown as `unknown` is a miss, not wrong).
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from rnnface.aggregation.pooling import MEAN
from rnnface.gallery import open_gallery
from rnnface.gallery.enroll import enroll_images
from rnnface.gallery.records import UNKNOWN, is_unnamed
from rnnface.io import load_image
from rnnface.recognition.pipeline import FacePipeline
from rnnface.video.process import TrackingRules, VideoReport, process_video
from rnnface.video.source import open_source
from rnnface.video.synthetic import Actor, Scenario, Shot, Truth, write_shots

FPS, SIZE, EVERY = 25.0, (640, 480), 3
RULES = {"before (no cuts, no identity check)": TrackingRules(cuts=False, split_below=None), "now": TrackingRules()}


def scenarios(root: Path) -> tuple[list[Scenario], dict[str, list[Path]]]:
    """The test videos, built from LFW people with at least 5 photos (the first on screen, the next 3 enrolled)."""
    people = sorted(p.name for p in root.iterdir() if p.is_dir() and len(list(p.iterdir())) >= 5)[:6]
    a, b, c, d, e, f = people
    photos = {p: sorted((root / p).iterdir()) for p in people}
    face = {p: load_image(photos[p][0]) for p in people}
    centre, left, right = (245, 165), (60, 165), (430, 165)

    def still(person: str, spot: tuple[int, int], seconds: float) -> Actor:
        return Actor(person, face[person], 0.0, seconds, spot, (spot[0] + 6, spot[1]))

    out = [
        Scenario(
            "cut to someone else on the same spot",
            [Shot(3, [still(a, centre, 3)], 1), Shot(3, [still(b, centre, 3)], 2)],
            [a, b],
        ),
        Scenario(
            "jump cut: someone else, same background",
            [Shot(3, [still(a, centre, 3)], 12), Shot(3, [still(b, centre, 3)], 12)],
            [a, b],
        ),
        Scenario(
            "cut to a stranger on the same spot",
            [Shot(3, [still(a, centre, 3)], 3), Shot(3, [still(c, centre, 3)], 4)],
            [a],
        ),
        Scenario(
            "two people cross",
            [
                Shot(
                    5,
                    [Actor(a, face[a], 0, 5, (20, 165), (470, 165)), Actor(d, face[d], 0, 5, (470, 175), (20, 175))],
                    5,
                )
            ],
            [a, d],
        ),
        Scenario(
            "one steps out, another steps in (no cut)",
            [Shot(4, [Actor(b, face[b], 0, 1.9, centre, centre), Actor(e, face[e], 2.1, 4, centre, centre)], 11)],
            [b, e],
        ),
        Scenario(
            "an occluder passes over two people",
            [Shot(5, [still(e, left, 5), still(f, right, 5)], 6, occluder=(-200, 640, 140, 190, 200))],
            [e, f],
        ),
        Scenario(
            "four shots, back and forth",
            [
                Shot(2, [still(a, centre, 2)], 7),
                Shot(2, [still(b, centre, 2)], 8),
                Shot(2, [still(a, centre, 2)], 9),
                Shot(2, [still(c, centre, 2)], 10),
            ],  # fmt: skip
            [a, b],
        ),
    ]
    return out, {p: photos[p][1:4] for p in people}


def score(report: VideoReport, truth: list[Truth], enrolled: set[str], cuts: list[int]) -> dict:
    """IDF1, identity switches and wrong-name seconds of one run against the ground truth."""
    faces_at: dict[int, list[Truth]] = defaultdict(list)
    for item in truth:
        faces_at[item.frame].append(item)
    steps = sorted({f for f in range(report.frames) if f % EVERY == 0} | set(cuts))  # the detection steps
    matched: list[tuple[int, str, int, str]] = []  # (frame, person, track, its name)
    for track in report.tracks:
        for frame, box in zip(track.frames, track.boxes):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            holders = [t for t in faces_at.get(frame, []) if t.box[0] <= cx <= t.box[2] and t.box[1] <= cy <= t.box[3]]
            owner = min(holders, key=lambda t: abs(t.box[0] + t.box[2] - 2 * cx), default=None)
            if owner is not None:
                named = UNKNOWN if is_unnamed(track.person) else track.person  # a numbered stranger is no name
                matched.append((frame, owner.person, track.id, named))
    visible = sum(len(faces_at[f]) for f in steps) or 1
    shot_of = lambda frame: sum(frame >= c for c in cuts)  # noqa: E731 - a one-line helper
    # tracks end at cuts by design: people and tracks are paired within each shot (naming spans the shots)
    pairs = Counter((shot_of(f), person, track) for f, person, track, _ in matched)
    idtp = sum(
        _best_pairing(Counter({(p, t): n for (s, p, t), n in pairs.items() if s == shot}))
        for shot in {s for s, _, _ in pairs}
    )
    tracked = sum(len(t.frames) for t in report.tracks)
    idf1 = 2 * idtp / (visible + tracked) if visible + tracked else 1.0
    switches = 0
    for person in {p for _, p, _, _ in matched}:
        seq = [(shot_of(f), tr) for f, p, tr, _ in sorted(matched) if p == person]
        switches += sum(1 for (s0, t0), (s1, t1) in zip(seq, seq[1:]) if s0 == s1 and t0 != t1)
    carried = defaultdict(set)  # a track that holds several people carries a name onto someone else
    for _, person, track_id, _ in matched:
        carried[track_id].add(person)
    merged = sum(len(people) > 1 for people in carried.values())
    wrong = sum(
        1
        for _, person, _, name in matched
        if name not in (UNKNOWN, person) or (person not in enrolled and name != UNKNOWN)
    )
    right = sum(1 for _, person, _, name in matched if name == (person if person in enrolled else UNKNOWN))
    return {
        "idf1": idf1,
        "identity_switches": switches,
        "tracks_over_people": merged,
        "wrong_name_seconds": wrong * EVERY / FPS,
        "right_name_share": right / visible,
        "tracks": len(report.tracks),
        "people": len({t.person for t in truth}),
    }


def _best_pairing(pairs: Counter) -> int:
    """Matched detections under the best one-to-one pairing of people and tracks (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    if not pairs:
        return 0
    people = sorted({p for p, _ in pairs})
    tracks = sorted({t for _, t in pairs})
    counts = np.zeros((len(people), len(tracks)))
    for (p, t), n in pairs.items():
        counts[people.index(p), tracks.index(t)] = n
    rows, cols = linear_sum_assignment(-counts)
    return int(counts[rows, cols].sum())


def run_tracking_bench(root: Path, echo=print) -> dict:
    """Every scenario under the rules of before and of now; the figures per scenario and in total."""
    pipeline = FacePipeline()
    built, enroll_photos = scenarios(root)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rnnface-tracking-") as tmp:
        for k, scenario in enumerate(built):
            clip = Path(tmp) / f"{k}.mp4"
            truth = write_shots(clip, scenario.shots, FPS, SIZE)
            cuts = list(np.cumsum([int(round(s.seconds * FPS)) for s in scenario.shots])[:-1])
            with open_gallery(Path(tmp) / f"{k}.db") as gallery:
                for person in scenario.enrolled:
                    enroll_images(gallery, pipeline, person, enroll_photos[person], largest=True)
                for label, rules in RULES.items():
                    source = open_source(str(clip))
                    try:
                        report = process_video(
                            source,
                            pipeline,
                            gallery,
                            MEAN,
                            EVERY,
                            None,  # the default: set for the gallery's size
                            progress=False,
                            rules=rules,
                        )
                    finally:
                        source.close()
                    row = {
                        "scenario": scenario.name,
                        "rules": label,
                        **score(report, truth, set(scenario.enrolled), cuts),
                    }
                    rows.append(row)
                    echo(format_row(row))
    totals = {}
    for label in RULES:
        mine = [r for r in rows if r["rules"] == label]
        totals[label] = {
            "idf1": float(np.mean([r["idf1"] for r in mine])),
            "identity_switches": sum(r["identity_switches"] for r in mine),
            "tracks_over_people": sum(r["tracks_over_people"] for r in mine),
            "wrong_name_seconds": sum(r["wrong_name_seconds"] for r in mine),
            "right_name_share": float(np.mean([r["right_name_share"] for r in mine])),
        }
    return {"fps": FPS, "size": SIZE, "detect_every": EVERY, "rows": rows, "totals": totals}


HEADER = f"{'scenario':<42}{'rules':<37}{'IDF1':>6}{'switches':>10}{'merged':>8}{'wrong-name s':>14}{'right name':>12}"


def format_row(r: dict) -> str:
    return (
        f"{r['scenario']:<42}{r['rules']:<37}{r['idf1']:>6.2f}{r['identity_switches']:>10}{r['tracks_over_people']:>8}"
        f"{r['wrong_name_seconds']:>14.1f}{100 * r['right_name_share']:>11.0f}%"
    )
