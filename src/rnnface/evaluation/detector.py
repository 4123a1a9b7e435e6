"""`rnnface eval detector`: does the detector find the faces that are there, and only those?

Two detectors on the same photos: MTCNN as rnnface ran it before (score 0.9, a 20-pixel pyramid on the photo
downscaled to 1280 pixels, nothing else) and the detector users get now (`face_detector()`: the pyramid sized
for faces of 20 pixels in the photo as given, the FaceNet check, the padded retry). Photo sets:

- faces: LFW and CFP (frontal, profile) photos, whose labelled face is at the centre: found when a kept face's
  box holds the centre; other kept faces are counted per photo (bystanders, and ears, chins, hair);
- face crops: LFW faces cut tighter than the detector's box, in grey under a hard side light (as ID photos and
  crop datasets such as Extended Yale B are): found when any face is kept;
- small faces: an LFW face 60 pixels high in a 4000 x 3000 photo: found when a kept face holds its centre;
- no faces: the scikit-image and scikit-learn sample photos without a face, dark and noise frames, and LFW
  photos with every face blacked out: every kept face is false.

It also counts the CFP photos that enrollment would refuse as "several faces": before, any second face;
now, a second face not much smaller or weaker than the first (`rnnface.detection.main_faces`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rnnface.detection import DEFAULT_DETECTOR, DetectionSettings, Detector, Face, create_detector, main_faces
from rnnface.io import load_image


class Before(Detector):
    """MTCNN as it ran before: the photo downscaled to 1280 pixels, a 20-pixel pyramid, score 0.9, nothing else."""

    def __init__(self) -> None:
        super().__init__(DetectionSettings(check=False, pad=False))
        self.inner = create_detector(DEFAULT_DETECTOR, settings=self.settings)

    def detect(self, image: np.ndarray, trusted: Callable[[Face], bool] | None = None) -> list[Face]:
        scale = min(1.0, 1280 / max(image.shape[:2]))
        if scale == 1.0:
            return self.inner.detect(image)
        small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), cv2.INTER_AREA)
        return [Face(f.box / scale, f.score, f.landmarks / scale) for f in self.inner.detect(small)]


@dataclass(frozen=True)
class Photo:
    """One test photo: where its face is (None: it has none; a box: the face to find; `any`: any face counts)."""

    label: str
    load: Callable[[], np.ndarray]
    target: tuple[float, float] | None = None  # the point the labelled face's box must hold
    any_face: bool = False


def _holds(face: Face, point: tuple[float, float]) -> bool:
    x1, y1, x2, y2 = face.box
    return x1 <= point[0] <= x2 and y1 <= point[1] <= y2


def _centre_of(path: Path) -> Photo:
    from PIL import Image

    with Image.open(path) as header:  # the size from the header, without decoding
        width, height = header.size
    return Photo(str(path), lambda: load_image(path), (width / 2, height / 2))


def lfw_photos(root: Path, n: int, seed: int = 0) -> list[Photo]:
    people = sorted(p for p in root.iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(people), min(n, len(people)), replace=False)
    return [_centre_of(sorted(people[i].iterdir())[0]) for i in sorted(chosen)]


def cfp_photos(root: Path, pose: str, n: int, seed: int = 0) -> list[Photo]:
    from rnnface.data.cfp import cfp_images

    paths = [root / "Data" / "Images" / r.path for r in cfp_images(root) if f"/{pose}/" in r.path]
    rng = np.random.default_rng(seed)
    return [_centre_of(paths[i]) for i in sorted(rng.choice(len(paths), min(n, len(paths)), replace=False))]


def face_crops(photos: list[Photo], finder: Detector, n: int, seed: int = 0) -> list[Photo]:
    """Tight grey crops of LFW faces (0.8 of the detector box) under a hard side light, 168 x 192 pixels."""
    rng = np.random.default_rng(seed)
    out = []
    for photo in photos:
        if len(out) == n:
            break
        image = photo.load()
        faces = [f for f in finder.detect(image) if _holds(f, photo.target)]
        if not faces:
            continue
        x1, y1, x2, y2 = faces[0].box
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, 0.4 * (x2 - x1), 0.4 * (y2 - y1)
        crop = image[int(max(0, cy - hh)) : int(cy + hh), int(max(0, cx - hw)) : int(cx + hw)]
        grey = cv2.cvtColor(cv2.resize(crop, (168, 192)), cv2.COLOR_RGB2GRAY).astype(np.float32)
        light = np.linspace(rng.uniform(0.05, 0.3), 1.3, 168)[None, :]
        lit = np.clip(grey * (light if rng.random() < 0.5 else light[:, ::-1]), 0, 255).astype(np.uint8)
        pixels = cv2.cvtColor(lit, cv2.COLOR_GRAY2RGB)
        out.append(Photo(f"crop of {photo.label}", lambda p=pixels: p, any_face=True))
    return out


def small_faces(photos: list[Photo], backgrounds: list[np.ndarray], n: int, seed: int = 0) -> list[Photo]:
    """An LFW photo's centre (its face) scaled to 60 pixels high, pasted into a blurred 4000 x 3000 background."""
    rng = np.random.default_rng(seed)
    out = []
    for photo in photos[:n]:
        face = photo.load()[50:200, 50:200]  # LFW's face sits in the central 150 pixels
        small = cv2.resize(face, (90, 90), interpolation=cv2.INTER_AREA)  # the face itself is ~60 pixels high
        x, y = int(rng.integers(100, 3800)), int(rng.integers(100, 2800))
        background = backgrounds[len(out) % len(backgrounds)]

        def load(bg=background, small=small, x=x, y=y) -> np.ndarray:
            canvas = cv2.GaussianBlur(cv2.resize(bg, (4000, 3000)), (0, 0), 3)
            canvas[y : y + 90, x : x + 90] = small
            return canvas

        out.append(Photo(f"small face of {photo.label}", load, (x + 45.0, y + 45.0)))
    return out


def sample_photos_without_faces() -> list[Photo]:
    """The scikit-image and scikit-learn sample photos that show no face (astronaut, camera and the LFW subset do)."""
    import skimage
    from sklearn.datasets import load_sample_images

    folder = Path(skimage.__file__).parent / "data"
    faces = {"astronaut", "camera", "lfw_subset", "no_time_for_that_tiny"}
    out = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in (".png", ".jpg") and path.stem not in faces:
            out.append(Photo(f"scikit-image {path.stem}", lambda p=path: load_image(p)))
    for name, pixels in zip(("china", "flower"), load_sample_images().images):
        out.append(Photo(f"scikit-learn {name}", lambda p=pixels: p))
    return out


def dark_and_noise_frames(n: int, seed: int = 0) -> list[Photo]:
    """Camera-like frames with nothing in them: dark, noisy, blurred by a random amount, 640 x 480."""

    def load(k: int) -> np.ndarray:
        rng = np.random.default_rng(seed * 1000 + k)
        base, noise = rng.uniform(0, 60), rng.uniform(3, 30)
        frame = np.clip(base + rng.normal(0, noise, (480, 640, 3)), 0, 255).astype(np.uint8)
        return cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.5, 4))

    return [Photo(f"dark frame {k}", lambda k=k: load(k)) for k in range(n)]


def blacked_out(photos: list[Photo], finder: Detector) -> list[Photo]:
    """LFW photos with every face MTCNN finds even at score 0.5 blacked out (each box grown by 30 %)."""

    def load(photo: Photo) -> np.ndarray:
        image = photo.load().copy()
        for f in finder.detect(image):
            x1, y1, x2, y2 = f.box
            w, h = x2 - x1, y2 - y1
            image[max(0, int(y1 - 0.3 * h)) : int(y2 + 0.3 * h), max(0, int(x1 - 0.3 * w)) : int(x2 + 0.3 * w)] = 0
        return image

    return [Photo(f"blacked-out {p.label}", lambda p=p: load(p)) for p in photos]


@dataclass
class SetScore:
    photos: int = 0
    found: int = 0  # photos whose face was found (face sets)
    other: int = 0  # kept faces besides the labelled one (face sets), or all kept faces (no-face sets)
    several: int = 0  # photos enrollment would refuse as "several faces"

    def to_dict(self, faces: bool) -> dict:
        n = max(self.photos, 1)
        out = {"photos": self.photos, "faces_per_photo" if not faces else "other_faces_per_photo": self.other / n}
        if faces:
            out.update(recall=self.found / n, several_faces=self.several)
        return out


def score_set(photos: list[Photo], detectors: dict[str, tuple[Detector, Callable]]) -> dict[str, SetScore]:
    """Each detector on every photo of one set; `detectors` maps a name to (detector, several-faces rule)."""
    scores = {name: SetScore() for name in detectors}
    for photo in photos:
        image = photo.load()
        for name, (detector, several) in detectors.items():
            faces, score = detector.detect(image), scores[name]
            score.photos += 1
            if photo.target is None and not photo.any_face:
                score.other += len(faces)
                continue
            hits = faces if photo.any_face else [f for f in faces if _holds(f, photo.target)]
            score.found += bool(hits)
            score.other += len(faces) - min(1, len(hits))
            score.several += several(faces)
    return scores


def photo_sets(lfw: Path, cfp: Path | None, n: int) -> Iterator[tuple[str, bool, list[Photo]]]:
    """(name, has faces, photos) of each set; CFP's are left out without its root."""
    lfw_sample = lfw_photos(lfw, max(n, 300))
    finder = create_detector(DEFAULT_DETECTOR, settings=DetectionSettings(check=False, pad=False))
    low = create_detector(DEFAULT_DETECTOR, settings=DetectionSettings(min_score=0.5, min_face=12, pad=False))
    yield "LFW photos", True, lfw_sample[:n]
    if cfp is not None:
        yield "CFP frontal photos", True, cfp_photos(cfp, "frontal", n)
        yield "CFP profile photos", True, cfp_photos(cfp, "profile", n)
    yield "face crops, grey, hard light", True, face_crops(lfw_sample[::-1], finder, n // 2)
    backgrounds = [p.load() for p in sample_photos_without_faces()]
    yield "60-pixel faces in 4000 x 3000 photos", True, small_faces(lfw_sample, backgrounds, max(20, n // 6))
    yield "sample photos without faces", False, sample_photos_without_faces()
    yield "dark and noise frames", False, dark_and_noise_frames(max(20, n // 6))
    yield "LFW photos, faces blacked out", False, blacked_out(lfw_sample[:n], low)


def run_detector_eval(lfw: Path, cfp: Path | None, n: int = 300, echo: Callable[[str], None] = print) -> dict:
    """Every set under both detectors; rows as they are scored."""
    from rnnface.recognition.faceness import face_detector

    detectors = {
        "before": (Before(), lambda faces: len(faces) > 1),
        "now": (face_detector(), lambda faces: len(main_faces(faces)) > 1),
    }
    rows = []
    for name, faces, photos in photo_sets(lfw, cfp, n):
        scores = score_set(photos, detectors)
        row = {"set": name, "faces": faces, **{k: v.to_dict(faces) for k, v in scores.items()}}
        rows.append(row)
        echo(format_row(row))
    return {"photos_per_set": n, "rows": rows}


HEADER = (
    f"{'photo set':<40}{'photos':>7}  {'recall before → now':>21}  {'other/false faces per photo':>29}  "
    f"{'several faces':>14}"
)


def format_row(row: dict) -> str:
    before, now = row["before"], row["now"]
    key = "other_faces_per_photo" if row["faces"] else "faces_per_photo"
    recall = f"{100 * before['recall']:6.1f}% → {100 * now['recall']:5.1f}%" if row["faces"] else "-"
    several = f"{before['several_faces']} → {now['several_faces']}" if row["faces"] else "-"
    return (
        f"{row['set']:<40}{before['photos']:>7}  {recall:>21}  {before[key]:>13.4f} → {now[key]:<13.4f}  {several:>14}"
    )


def markdown(report: dict) -> str:
    lines = [
        "| photo set | photos | recall, before | recall, now | other (or false) faces per photo, before | now | "
        "photos refused as several faces, before | now |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["rows"]:
        before, now = row["before"], row["now"]
        key = "other_faces_per_photo" if row["faces"] else "faces_per_photo"
        cells = [row["set"], str(before["photos"])]
        cells += [f"{100 * before['recall']:.1f}%", f"{100 * now['recall']:.1f}%"] if row["faces"] else ["-", "-"]
        cells += [f"{before[key]:.4f}", f"{now[key]:.4f}"]
        cells += [str(before["several_faces"]), str(now["several_faces"])] if row["faces"] else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def default_cfp() -> Path | None:
    from rnnface.settings import Settings

    root = Settings.from_env().cfp
    return root if (root / "Data" / "Images").is_dir() else None
