"""Sets of presentations (photos or clips, bona fide and attack) judged by every judge in one run: ours and the peers.

A set is a folder with `live/` and `attack/` below it (photos and video files, any depth; each file one
presentation), or one of the sets built from the data at hand: NUAA's test frames as camera frames, and LFW
photos beside their simulated printed replays. A presentation in which a judge finds no face counts as not
live for that judge (a rejection: an error on a bona fide presentation, none on an attack), and is counted.
Each judge decides by its own rule; EER is over its scores (no face: below all of them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rnnface.errors import DataError
from rnnface.lab.data import nuaa
from rnnface.lab.evaluation.liveness_peers import Judge
from rnnface.lab.evaluation.pad_metrics import eer

# loads one presentation's RGB frames when it is judged, called without arguments (`...`: mypy cannot match the
# loaders, `lambda p=p: ...`, to `[]`)
Frames = Callable[..., list[np.ndarray]]


@dataclass
class PresentationSet:
    name: str
    live: list[Frames]
    attack: list[Frames]

    def presentations(self) -> Iterator[tuple[bool, Frames]]:
        yield from ((True, f) for f in self.live)
        yield from ((False, f) for f in self.attack)

    def __len__(self) -> int:
        return len(self.live) + len(self.attack)


def folder_set(root: str | Path, name: str | None = None, most: int | None = None) -> PresentationSet:
    """`root/live/**` and `root/attack/**`: each photo or video file one presentation (a clip: up to 32 frames);
    at most `most` of each kind, spread evenly over the sorted files (a folder of video frames is a sequence)."""
    from rnnface.io.folders import IMAGE_SUFFIXES, VIDEO_SUFFIXES
    from rnnface.liveness.clip import read_clip

    root = Path(root)
    for kind in ("live", "attack"):
        if not (root / kind).is_dir():
            raise DataError(f"{root}: a presentation set needs the folders live/ and attack/ ({kind}/ is missing)")
    found = {}
    for kind in ("live", "attack"):
        folder = root / kind
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        media = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES or p.suffix.lower() in VIDEO_SUFFIXES]
        if not media:
            raise DataError(f"{folder}: no photos or video files")
        if most is not None and len(media) > most:
            media = [media[i] for i in np.linspace(0, len(media) - 1, most).round().astype(int)]
        found[kind] = [lambda p=p: read_clip(p) for p in media]
    return PresentationSet(name or root.name, found["live"], found["attack"])


def nuaa_set(root: str | Path, every: int = 8) -> PresentationSet:
    """NUAA's official test split, every `every`-th frame of each capture, each crop made a camera frame
    (`nuaa.as_photo`) and judged alone. The crops are 64x64 grey and cut tight: peers that want colour and
    context get neither, so this set measures them outside what they were made for."""
    live: list[Frames] = []
    attack: list[Frames] = []
    for capture in nuaa.captures(root, "test"):
        for rel in capture.files[::every]:
            (live if capture.live else attack).append(lambda rel=rel: [nuaa.as_photo(nuaa.load_frame(root, rel))])
    return PresentationSet(f"NUAA test split (every {every}th frame, as camera frames)", live, attack)


def nuaa_split_name(split: str) -> str:
    return f"NUAA {split} split"


def nuaa_capture_set(root: str | Path, split: str, every: int = 1) -> PresentationSet:
    """NUAA's `split` ("train" or "test"), each capture one presentation: every `every`-th of its frames, each
    made a camera frame (`nuaa.as_photo`)."""
    live: list[Frames] = []
    attack: list[Frames] = []
    for capture in nuaa.captures(root, split):
        files = capture.files[::every]
        (live if capture.live else attack).append(
            lambda files=files: [nuaa.as_photo(nuaa.load_frame(root, rel)) for rel in files]
        )
    return PresentationSet(nuaa_split_name(split), live, attack)


def lfw_replay_set(lfw_images: str | Path, people: int = 200, frames: int = 8, seed: int = 0) -> PresentationSet:
    """One LFW photo each of `people` people (live faces taken by news cameras), and each of those photos printed
    and turned before a camera (`replay_frames`, simulated: `frames` frames)."""
    from rnnface.io import load_image
    from rnnface.lab.data.replay import replay_frames

    folders = sorted(p for p in Path(lfw_images).iterdir() if p.is_dir())
    pick = np.random.default_rng(seed).choice(len(folders), size=min(people, len(folders)), replace=False)
    photos = [sorted(folders[i].glob("*.jpg"))[0] for i in sorted(pick)]
    live = [lambda p=p: [load_image(p)] for p in photos]
    attack = [lambda p=p, i=i: replay_frames(load_image(p), frames=frames, seed=i) for i, p in enumerate(photos)]
    return PresentationSet(f"LFW photos / each printed and turned ({frames} frames, simulated)", live, attack)


@dataclass
class SetRow:
    set: str
    judge: str
    live: int
    attacks: int
    no_face_live: int
    no_face_attacks: int
    apcer: float
    bpcer: float
    eer: float

    @property
    def hter(self) -> float:
        return (self.apcer + self.bpcer) / 2

    def to_dict(self) -> dict:
        return {**asdict(self), "hter": self.hter}


def set_row(name: str, judge: str, score: np.ndarray, accepted: np.ndarray, live: np.ndarray) -> SetRow:
    """A judge's row on one set from each presentation's score (NaN: no face, below every score for the EER) and
    decision."""
    no_face = np.isnan(score)
    floor = (score[~no_face].min() - 1.0) if (~no_face).any() else 0.0
    return SetRow(
        name,
        judge,
        int(live.sum()),
        int((~live).sum()),
        int(no_face[live].sum()),
        int(no_face[~live].sum()),
        float(accepted[~live].mean()),
        float((~accepted[live]).mean()),
        eer(np.where(no_face, floor, score), live),
    )


def judge_sets(sets: Sequence[PresentationSet], judges: Sequence[Judge]) -> list[SetRow]:
    """Every judge on every presentation of every set (each presentation's frames loaded once for all judges); a
    progress bar on a terminal."""
    from rnnface.progress import progress_bar

    bar = progress_bar(total=sum(len(s) for s in sets), desc="presentations", unit="presentation", leave=False)
    rows = []
    for s in sets:
        labels: list[bool] = []
        scores: dict[str, list[float]] = {j.name: [] for j in judges}
        accepted: dict[str, list[bool]] = {j.name: [] for j in judges}
        for live, load in s.presentations():
            frames = load()
            labels.append(live)
            for j in judges:
                verdict = j.judge(frames)
                scores[j.name].append(np.nan if verdict is None else verdict.score)  # NaN: no face
                accepted[j.name].append(verdict is not None and verdict.live)
            bar.update()
        is_live = np.array(labels)
        for j in judges:
            rows.append(
                set_row(s.name, j.name, np.array(scores[j.name], np.float64), np.array(accepted[j.name]), is_live)
            )
    bar.close()
    return rows


def sets_markdown(rows: Sequence[SetRow]) -> str:
    lines = [
        "| set | judge | bona fide | attacks | no face (bona fide / attack) | APCER % | BPCER % | HTER % | EER % |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.set} | {r.judge} | {r.live} | {r.attacks} | {r.no_face_live} / {r.no_face_attacks} | "
            f"{100 * r.apcer:.1f} | {100 * r.bpcer:.1f} | {100 * r.hter:.1f} | {100 * r.eer:.1f} |"
        )
    lines.append("")
    lines.append(
        "Each judge at its own rule: ours at the threshold chosen on NUAA's training split (a clip also fails when "
        "its frames do not change), MiniFASNet by its argmax, FaceAntiSpoofing below 0.2. No face counts as not "
        "live."
    )
    return "\n".join(lines)


def still_clips(photo: np.ndarray, frames: int = 16, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """A photo replayed without motion: the same frame `frames` times, and the same with a camera's sensor noise
    (sigma 2 grey levels) and each frame JPEG-compressed at quality 70-95 (near-identical frames)."""
    import cv2

    rng = np.random.default_rng(seed)
    noisy = []
    for _ in range(frames):
        frame = np.clip(photo + rng.normal(0, 2, photo.shape), 0, 255).astype(np.uint8)
        quality = int(rng.integers(70, 96))
        ok, buf = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        assert decoded is not None  # a JPEG just encoded decodes
        noisy.append(decoded[..., ::-1].copy())
    return {"identical frames": [photo] * frames, "near-identical frames (noise, JPEG)": noisy}


@dataclass
class StillRow:
    kind: str
    judge: str
    clips: int
    judged: int  # clips with a face
    accepted: int


def judge_stills(lfw_images: str | Path, judges: Sequence[Judge], people: int = 50, seed: int = 1) -> list[StillRow]:
    """Static replays of one LFW photo each of `people` people (`still_clips`), judged by every judge: any clip
    accepted as live is an error."""
    from rnnface.io import load_image

    folders = sorted(p for p in Path(lfw_images).iterdir() if p.is_dir())
    pick = np.random.default_rng(seed).choice(len(folders), size=min(people, len(folders)), replace=False)
    counts: dict[tuple[str, str], list[int]] = {}
    for i in sorted(pick):
        for kind, frames in still_clips(load_image(sorted(folders[i].glob("*.jpg"))[0]), seed=int(i)).items():
            for j in judges:
                verdict = j.judge(frames)
                c = counts.setdefault((kind, j.name), [0, 0, 0])
                c[0] += 1
                c[1] += verdict is not None
                c[2] += verdict is not None and verdict.live
    return [StillRow(kind, judge, *c) for (kind, judge), c in counts.items()]


def stills_markdown(rows: Sequence[StillRow]) -> str:
    lines = ["| static replay | judge | clips | with a face | accepted as live |", "| --- | --- | ---: | ---: | ---: |"]
    lines += [f"| {r.kind} | {r.judge} | {r.clips} | {r.judged} | {r.accepted} |" for r in rows]
    return "\n".join(lines)
