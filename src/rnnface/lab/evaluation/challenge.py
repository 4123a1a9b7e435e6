"""The directed head-turn challenge measured (`rnnface eval challenge`): people asked for the turns they make,
the same recorded turns replayed against challenges they were not recorded for, and printed photos turned in
front of a camera.

Live turns come from CFP, whose people were photographed frontal and in profile to both sides: a clip is a frontal
photo, the person's profile photos of the side asked (each held for two frames, as a turned head is held), another
frontal photo, and so on for each turn. Each profile's side, and how far it is turned, is read from that photo
alone (its nose's offset from the eyes' midpoint), not from the parallax the check measures; a turn shows its
profiles from the least turned to the most, as a turning head passes through them. A replay passes a fresh
challenge only when the challenge happens to ask for the turns it shows, so each replay is judged against every
possible challenge of its length and its pass share is the share of those it passes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rnnface.lab.evaluation.report import Report
from rnnface.liveness.active import LEFT, RIGHT, TURNS, check_turn

HOLD = 2  # frames each profile photo is held for
Landmarks = np.ndarray  # (5, 2)


@dataclass
class ChallengeRow:
    name: str
    turns: int  # turns asked (0: any turn)
    should_pass: bool
    clips: int
    judged: int  # clips with enough frames with a face to be judged
    passed: float  # the share of clips that passed (of clip and challenge pairs, for replays)

    @property
    def error(self) -> float:
        """Live clips refused (BPCER), or replays let through (APCER)."""
        return 1 - self.passed if self.should_pass else self.passed


@dataclass(frozen=True)
class TurnClip:
    person: str
    turns: tuple[str, ...]  # the turns it shows
    landmarks: list[Landmarks]


def offset(landmarks: Landmarks) -> float:
    """How far a face is turned, from its own landmarks: the nose's offset from the eyes' midpoint along the image's
    x axis, in eye distances (positive: to the image's right)."""
    eyes = np.linalg.norm(landmarks[1] - landmarks[0])
    return float((landmarks[2, 0] - (landmarks[0, 0] + landmarks[1, 0]) / 2) / max(eyes, 1e-6))


def side(landmarks: Landmarks) -> str:
    """The side a face is turned to: the nose right of the eyes' midpoint in the image is the person's own left
    (frames as a camera sees them)."""
    return LEFT if offset(landmarks) > 0 else RIGHT


def turn_clips(frontal: Sequence[Landmarks], profiles: Sequence[Landmarks], person: str, count: int) -> list[TurnClip]:
    """Every clip of `count` turns one person's photos can make, each turn to a side they have profiles of, with a
    rest pose before, between and after the turns (their frontal photos in turn). A turn's profiles come in the
    order a turning head passes through them, the least turned first."""
    turned = sorted(profiles, key=lambda p: abs(offset(p)))
    by_side = {s: [p for p in turned for _ in range(HOLD) if side(p) == s] for s in TURNS}
    clips = []
    for turns in itertools.product(TURNS, repeat=count):
        if not all(by_side[s] for s in turns):
            continue
        frames = [frontal[0]]
        for i, s in enumerate(turns):
            frames += [*by_side[s], frontal[(i + 1) % len(frontal)]]
        clips.append(TurnClip(person, turns, frames))
    return clips


def _turns(count: int) -> str:
    return f"{count} turn{'s' if count > 1 else ''}"


def _judge(clips: Sequence[list[Landmarks]], challenges: Sequence[Sequence[str] | None]) -> tuple[int, float]:
    """Clips judged, and the share of (clip, challenge) pairs passed (a challenge of None: any turn)."""
    judged, passed = 0, 0
    for clip in clips:
        results = [check_turn(clip, c) for c in challenges]
        judged += bool(results[0].parallax)
        passed += sum(r.passed for r in results)
    return judged, passed / (len(clips) * len(challenges)) if clips else float("nan")


def challenge_rows(
    live: dict[int, list[TurnClip]], printed: Sequence[list[Landmarks]], counts: Sequence[int]
) -> list[ChallengeRow]:
    """The table: live clips asked for their own turns, the same clips and the printed replays against every
    challenge of each length, and both under the any-turn check."""
    rows = []
    for k in counts:
        clips = live[k]
        judged = sum(bool(check_turn(c.landmarks).parallax) for c in clips)
        passed = np.mean([check_turn(c.landmarks, c.turns).passed for c in clips]) if clips else float("nan")
        name = f"live: CFP people asked for the {_turns(k)} they make"
        rows.append(ChallengeRow(name, k, True, len(clips), judged, float(passed)))
    for k in counts:
        every = list(itertools.product(TURNS, repeat=k))
        judged, passed = _judge([c.landmarks for c in live[k]], every)
        rows.append(
            ChallengeRow(
                f"replay: those live clips of {_turns(k)}, against each of the {len(every)} challenges (chance "
                f"{100 / len(every):g} %)",
                k,
                False,
                len(live[k]),
                judged,
                passed,
            )
        )
    anyturn = [c.landmarks for k in counts for c in live[k]]
    judged, passed = _judge(anyturn, [None])
    rows.append(ChallengeRow("replay: those live clips, any-turn check", 0, False, len(anyturn), judged, passed))
    for k in [*counts, 0]:
        challenges: list[tuple[str, ...] | None] = [*itertools.product(TURNS, repeat=k)] if k else [None]
        judged, passed = _judge(printed, challenges)
        what = f"each of the {len(challenges)} {k}-turn challenges" if k else "the any-turn check"
        rows.append(
            ChallengeRow(
                f"replay: CFP frontal photos printed and turned to +-35 deg (simulated), against {what}",
                k,
                False,
                len(printed),
                judged,
                passed,
            )
        )
    return rows


def markdown(rows: Sequence[ChallengeRow]) -> str:
    lines = [
        "| clips | turns asked | should pass | clips | judged | passed % | wrong % |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.turns or 'any'} | {'yes' if r.should_pass else 'no'} | {r.clips} | {r.judged} | "
            f"{100 * r.passed:.1f} | {100 * r.error:.1f} |"
        )
    return "\n".join(lines) + "\n"


def run_challenge_eval(
    cfp_root: str,
    people: int | None = None,
    counts: Sequence[int] = (1, 2),
    frames: int = 12,
    echo: Callable[[str], None] | None = None,
) -> Report:
    """Detect each CFP photo once (3 frontal, 4 profile a person), build the clips, and judge them."""
    from rnnface.io import load_image
    from rnnface.lab.data.cfp import posed_photos
    from rnnface.lab.data.replay import replay_frames
    from rnnface.lab.evaluation.liveness import main_landmarks

    detect = main_landmarks()
    live: dict[int, list[TurnClip]] = {k: [] for k in counts}
    printed: list[list[Landmarks]] = []
    sides = {"0": 0, "1": 0, "2": 0}  # people by the number of sides their profiles show
    photos = posed_photos(cfp_root, people)
    for i, person in enumerate(photos):
        frontal_photos = [load_image(f) for f in person.frontal[:3]]
        frontal = [lm for f in frontal_photos if (lm := detect(f)) is not None]
        profiles = [lm for f in person.profile if (lm := detect(load_image(f))) is not None]
        sides[str(len({side(p) for p in profiles}))] += 1
        if frontal:
            for k in counts:
                live[k] += turn_clips(frontal, profiles, person.person, k)
        replay = replay_frames(frontal_photos[0], frames=frames, seed=i)
        printed.append([lm for f in replay if (lm := detect(f)) is not None])
        if echo is not None and (i + 1) % 25 == 0:
            echo(f"{i + 1}/{len(photos)} people")
    rows = challenge_rows(live, printed, counts)
    data = {
        "people": len(photos),
        "hold_frames": HOLD,
        "printed_frames": frames,
        "people_by_sides": sides,
        "rows": [{**asdict(r), "error": r.error} for r in rows],
    }
    text = (
        f"Directed head-turn challenge on CFP ({len(photos)} people; each profile photo held {HOLD} frames; printed "
        f"replays {frames} frames):\n\n" + markdown(rows)
    )
    return Report("challenge", data, text)
