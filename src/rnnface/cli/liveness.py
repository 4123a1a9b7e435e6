"""Liveness commands: `liveness` (is this face live?) and `authenticate` (live, and this enrolled person?)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from rnnface.cli.inputs import Rows, attempt, expand_images, output_mode, progress
from rnnface.cli.options import (
    TYPER,
    CsvOpt,
    DeviceOpt,
    GalleryOpt,
    JsonOpt,
    MinScoreOpt,
    ModelOpt,
    RuntimeOpt,
    detector,
    pipeline,
    print_json,
    threshold_option,
)
from rnnface.errors import RnnfaceError
from rnnface.io.folders import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from rnnface.liveness.active import Challenge, check_turns, random_turns
from rnnface.operating import THRESHOLD_HELP
from rnnface.settings import Settings

app = typer.Typer(**TYPER)

LivenessModelOpt = Annotated[
    Path | None, typer.Option("--liveness-model", help="Liveness checkpoint (default: the shipped one).")
]
AuthThresholdOpt = Annotated[
    str | None,
    typer.Option(
        "--threshold",
        help=f"A stricter identity threshold than the operator's: {THRESHOLD_HELP}. The default and the loosest "
        "allowed is RNNFACE_AUTHENTICATE_THRESHOLD (strict, FAR 1e-4, unless the operator set another); a looser "
        "one is refused.",
        callback=lambda value: threshold_option(value),
    ),
]
CameraOpt = Annotated[int | None, typer.Option("--camera", help="Read this camera (index) instead of a file.")]
AuthChallengeOpt = Annotated[
    bool | None,
    typer.Option(
        "--challenge/--no-challenge",
        help="Require a head turn (ask the person to turn their head): on unless RNNFACE_AUTHENTICATE_CHALLENGE=false. "
        "--no-challenge is weaker: the passive score alone decides, and a replayed clip of the person can pass.",
        show_default=False,
    ),
]
ChallengeOpt = Annotated[
    bool, typer.Option("--challenge", help="Also require a head turn (ask the person to turn their head).")
]
TurnsOpt = Annotated[
    str | None,
    typer.Option(
        "--turns",
        help="The head turns the person was asked for, in order, comma-separated: left, right (their own). The clip "
        "must show them. Default with --camera: RNNFACE_CHALLENGE_TURNS turns drawn at random, prompted while "
        "filming; for a file: any turn, which is weaker (a replayed clip of the person turning passes).",
        show_default=False,
    ),
]
EveryOpt = Annotated[int, typer.Option(min=1, help="Read every Nth frame of a video.")]
FramesOpt = Annotated[int, typer.Option("--frames", min=1, help="Most frames read (after --every).")]


def _source(path: Path | None, camera: int | None) -> str | int:
    if (path is None) == (camera is None):
        raise typer.BadParameter("give a photo or video file, or --camera N (one of them)")
    return camera if camera is not None else str(path)


def _asked(challenge: bool, turns: str | None, camera: int | None) -> Challenge:
    """What the clip must show: the --turns given (which imply the challenge); else, filming with the challenge
    on, turns drawn at random now; else any turn (a file) or none."""
    if turns is not None:
        if not challenge:
            raise typer.BadParameter("--turns asks for the head-turn challenge that --no-challenge turns off")
        try:
            return check_turns([t.strip() for t in turns.split(",") if t.strip()]) or True
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--turns") from None
    if challenge and camera is not None:
        return random_turns(Settings.from_env().challenge_turns) or True
    return challenge


def _prompts(asked: Challenge, frames: int) -> list[str]:
    """What to tell the person filmed, frame by frame: look at the camera, then make each turn asked and look back."""
    if not asked:
        return ["Look at the camera"] * frames
    steps = ["to one side"] if asked is True else [f"to your {turn}" for turn in asked]
    lead = max(1, frames // 8)  # the face at rest: the reference the turns are measured from
    per_turn = max(1, (frames - lead) // len(steps))
    prompts = ["Look at the camera"] * lead
    prompts += [f"Turn your head slowly {step}, and back" for step in steps for _ in range(per_turn)]
    return prompts + prompts[-1:] * (frames - len(prompts))


def _prompter(asked: Challenge, frames: int) -> Callable[[int], None]:
    """`read_clip`'s on_frame for a camera: each new prompt on stderr as the frames come."""
    prompts, said = _prompts(asked, frames), [""]

    def on_frame(kept: int) -> None:
        if kept < len(prompts) and prompts[kept] != said[0]:
            said[0] = prompts[kept]
            typer.echo(f"{said[0]}…", err=True)

    return on_frame


def _read(source: str | int, every: int, frames: int, asked: Challenge) -> list:
    """The clip: a camera's frames, the person prompted as they come, or a file's."""
    from rnnface.liveness.clip import read_clip

    if isinstance(source, int):
        return read_clip(source, every, frames, _prompter(asked, frames))
    return read_clip(source, every, frames)


def _checker(liveness_model: Path | None, min_score: float | None, embedder: tuple | None = None):
    """The liveness checker, its model loaded now (and, for `embedder` = (model, runtime, device), the
    embedding model too), so a missing model fails before a clip is read."""
    from rnnface.liveness.check import LivenessChecker
    from rnnface.recognition.pipeline import FacePipeline

    faces = detector(min_score, None, False)
    pipe = FacePipeline(detector=faces) if embedder is None else pipeline(embedder[0], embedder[1], faces, embedder[2])
    checker = LivenessChecker(pipe, liveness_model)
    checker.load()
    return checker


@app.command()
def liveness(
    sources: Annotated[
        list[Path] | None, typer.Argument(help="Photos, video files, or folders of them (or --camera N).")
    ] = None,
    camera: CameraOpt = None,
    challenge: ChallengeOpt = False,
    turns: TurnsOpt = None,
    every: EveryOpt = 3,
    frames: FramesOpt = 32,
    liveness_model: LivenessModelOpt = None,
    min_score: MinScoreOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Is the face live or a printed photo? A photo is judged alone, a clip by its frames together (per-frame
    scores with --json); many photos, clips and folders in one call, a row each (--csv, --json), the model loaded
    once. Exit 0 live (every one), 1 not live (any), 2 when one cannot be judged."""

    if (camera is None) == (not sources):
        raise typer.BadParameter("give photos, video files or folders, or --camera N (one of them)")
    mode = output_mode(as_json, as_csv)
    given: Sequence[int | Path]
    if camera is not None:
        given, single = [camera], True
    else:
        assert sources is not None  # the check above
        given = expand_images(sources, IMAGE_SUFFIXES | VIDEO_SUFFIXES, "photos or videos")
        single = len(sources) == 1 and not sources[0].is_dir()
    asked = _asked(challenge or turns is not None, turns, camera)
    checker = _checker(liveness_model, min_score)
    columns = ["source", "live", "reason", "live_score", "threshold", "window", "frames", "frames_with_face", "change"]
    rows, not_live = Rows(mode, [*columns, "error"], single), 0

    def judge(source):
        clip = _read(source if isinstance(source, int) else str(source), every, frames, asked)
        try:
            return checker.check(clip, challenge=asked)[0], len(clip)
        except RnnfaceError as exc:  # what could not be judged names its file, as a file that cannot be read does
            if single and not isinstance(source, int):
                exc.args = (f"{source}: {exc}", *exc.args[1:])
            raise

    for source in progress(given, "liveness"):
        result = attempt(single, partial(judge, source))
        if isinstance(result, Exception):
            rows.add({"source": str(source), "error": str(result)})
            continue
        judged, count = result
        not_live += not judged.live
        record = {"source": str(source), **judged.to_dict()}
        flat = {**{k: record.get(k) for k in columns}, "frames": count}
        rows.add(record, _liveness_text(judged, count, None if single else source), [flat])
    rows.finish(len(given), "source")
    raise typer.Exit(1 if not_live else 0)


def _liveness_text(result, frames: int, source) -> str:
    line = _verdict_text(result, f"{result.window}-frame windows, {len(result.faces)} of {frames} frames with a face")
    if result.challenge is not None:
        line += f"\n{_turn_text(result.challenge)}"
    return line if source is None else f"{source}: {line}"


def _verdict_text(result, details: str) -> str:
    """The verdict, its reason, then the score and threshold (unless the reason gives them) and `details`."""
    score = (
        "" if "live score" in result.reason else f"live score {result.score:.3f}, threshold {result.threshold:.3f}, "
    )
    verdict = "live" if result.live else "not live"
    return f"{verdict}: {result.reason} ({score}{details})"


def _turn_text(turn) -> str:
    if turn.asked:
        return f"head turns: {'as asked' if turn.passed else 'not as asked'}: {turn.reason}"
    return f"head turn: {'seen' if turn.passed else 'not seen'}: {turn.reason}"


@app.command()
def authenticate(
    name: Annotated[str, typer.Argument(help="The enrolled person to authenticate as.")],
    source: Annotated[Path | None, typer.Argument(help="A video file of the person (or --camera N).")] = None,
    camera: CameraOpt = None,
    gallery: GalleryOpt = None,
    threshold: AuthThresholdOpt = None,
    challenge: AuthChallengeOpt = None,
    turns: TurnsOpt = None,
    every: EveryOpt = 3,
    frames: FramesOpt = 32,
    model: ModelOpt = None,
    liveness_model: LivenessModelOpt = None,
    runtime: RuntimeOpt = None,
    device: DeviceOpt = None,
    min_score: MinScoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Is this NAME, live? Liveness with the head-turn challenge (with --camera: turns drawn at random and
    prompted on stderr as it films), then 1:1 against NAME's gallery template at the
    operator's threshold (RNNFACE_AUTHENTICATE_THRESHOLD, strict: FAR 1e-4) or a stricter --threshold. Nothing is
    enrolled or changed. Exit 0 accepted, 1 rejected, 2 when it cannot be judged."""
    from rnnface.gallery import open_gallery
    from rnnface.liveness.authenticate import authenticate_frames

    settings = Settings.from_env()
    asked = _asked(settings.authenticate_challenge if challenge is None else challenge, turns, camera)
    checker = _checker(liveness_model, min_score, (model, runtime, device))
    with open_gallery(gallery, create=False) as g:
        clip = _read(_source(source, camera), every, frames, asked)
        floor = settings.authenticate_threshold
        result = authenticate_frames(g, checker, name, clip, threshold, asked, floor=floor)
    if as_json:
        print_json(result.to_dict())
    else:
        live = result.liveness
        typer.echo(f"{result.decision}: {name}")
        typer.echo(f"  liveness: {_verdict_text(live, f'{len(live.faces)} frames with a face')}")
        turn = live.challenge
        typer.echo(
            "  head turn: off (weaker: a replayed clip of the person can pass)"
            if turn is None
            else f"  {_turn_text(turn)}"
        )
        typer.echo(
            f"  identity: similarity {result.similarity:.4f} to {name}'s template, threshold "
            f"{result.threshold.value:.4f} ({result.threshold.describe()})"
        )
    raise typer.Exit(0 if result.accepted else 1)
