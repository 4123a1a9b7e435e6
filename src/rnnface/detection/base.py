"""The detector interface, the Face record it returns, and the backend registry."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from rnnface.registry import Registry

#: Landmark order used everywhere in rnnface (and by ArcFace): eye centres, nose tip, mouth corners,
#: "left"/"right" as seen in the image.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the image it was found in."""

    box: np.ndarray  # (4,) float: x1, y1, x2, y2, in MTCNN's convention (the box FaceNet's crop was trained on)
    score: float
    landmarks: np.ndarray  # (5, 2) float, in LANDMARK_NAMES order

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return float(max(0.0, x2 - x1) * max(0.0, y2 - y1))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": {
                name: [round(float(x), 2), round(float(y), 2)] for name, (x, y) in zip(LANDMARK_NAMES, self.landmarks)
            },
        }


@dataclass(frozen=True)
class DetectionSettings:
    """What counts as a face, for every command, the API and the service alike.

    `min_score` (None: the backend's own, `Detector.default_min_score`, as scores differ between detectors) and
    `min_face` (pixels of the box's shorter side, in the photo as given) drop weak and tiny detections; `check` asks
    for the false-positive filter (`rnnface.recognition.faceness`; off by default, as it drops some real faces);
    `pad` looks again on a padded canvas when nothing is found, for photos that are already tight face crops (ID
    photos, datasets).
    """

    min_score: float | None = None
    min_face: int = 20
    check: bool = False
    pad: bool = True

    def __post_init__(self) -> None:
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must lie in [0, 1], got {self.min_score}")
        if self.min_face < 1:
            raise ValueError(f"min_face must be at least 1 pixel, got {self.min_face}")


#: Where the 5 landmarks sit in an MTCNN box, as fractions of its width and height: the mean over 200 LFW
#: photos (`tests/test_detection.py` checks it against MTCNN's own landmarks). For a face given only as a box.
TYPICAL_LANDMARKS = np.array([[0.29, 0.39], [0.735, 0.382], [0.517, 0.581], [0.328, 0.764], [0.712, 0.756]])
#: The padded canvas's border on each side, as a share of the photo's size (measured: see `rnnface eval detector`).
PAD_SHARE = 0.5


def face_at(box: np.ndarray | tuple[float, float, float, float], score: float = 1.0) -> Face:
    """A face known only by its box (x1, y1, x2, y2), with its landmarks where they typically sit in such a box."""
    box = np.asarray(box, dtype=np.float64)
    x1, y1, x2, y2 = box
    landmarks = np.array([x1, y1]) + TYPICAL_LANDMARKS * np.array([x2 - x1, y2 - y1])
    return Face(box, float(score), landmarks)


def whole_image(image: np.ndarray) -> Face:
    """The photo itself as the face (a face crop given as it is)."""
    height, width = image.shape[:2]
    return face_at((0.0, 0.0, float(width), float(height)))


class Detector(ABC):
    """Finds faces in RGB uint8 images, as its settings say what counts as one."""

    #: False for a backend that takes the photo as the face (nothing to check).
    finds_faces = True
    #: The lowest score kept when the settings name none (each backend's scores have their own scale).
    default_min_score = 0.9

    def __init__(self, settings: DetectionSettings | None = None) -> None:
        self.settings = settings or DetectionSettings()

    @property
    def min_score(self) -> float:
        """The lowest score kept: the settings', else the backend's own."""
        return self.default_min_score if self.settings.min_score is None else self.settings.min_score

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces that pass the settings, largest first (in the pixel coordinates of `image`)."""

    def detect_known(self, image: np.ndarray, trusted: Callable[[Face], bool]) -> list[Face]:
        """`detect`, where a face `trusted` says is already known (one continuing a verified video track) may skip
        a false-positive check; a detector without such a check (every backend) just detects."""
        return self.detect(image)

    @staticmethod
    def check_image(image: np.ndarray) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")


class PyramidDetector(Detector):
    """A detector that scans an image pyramid (MTCNN, YuNet), with the settings applied around it.

    Subclasses implement `_detect` on an image no larger than `max_side`, looking for faces of at least a given
    size; `detect` downscales bigger images first (asking for correspondingly smaller faces, so a face of
    `min_face` pixels in the photo is still looked for) and maps the results back, so a 24-megapixel photo costs
    no more than a 1280-pixel one. One instance may be shared by threads: calls to `_detect` are serialized,
    because backends such as OpenCV's DNN networks keep per-call state.
    """

    #: The smallest face the backend can find in the image it is given, in pixels.
    smallest: int = 12

    def __init__(self, settings: DetectionSettings | None = None, max_side: int = 1280) -> None:
        super().__init__(settings)
        self.max_side = max_side
        self._lock = threading.Lock()

    @abstractmethod
    def _detect(self, image: np.ndarray, min_face: float) -> list[Face]:
        """Faces of at least `min_face` pixels in an RGB uint8 image of at most `max_side` pixels a side."""

    def detect(self, image: np.ndarray) -> list[Face]:
        self.check_image(image)
        faces = self._find(image)
        if not faces and self.settings.pad:
            faces = self._find_padded(image)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def _find(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        with self._lock:
            found = self._detect(small, max(float(self.smallest), self.settings.min_face * scale))
        if scale < 1.0:
            found = [Face(f.box / scale, f.score, f.landmarks / scale) for f in found]
        return [f for f in found if f.score >= self.min_score and _side(f) >= self.settings.min_face]

    def _find_padded(self, image: np.ndarray) -> list[Face]:
        """Faces found on the photo framed by a border of its own edge pixels, mapped back and clipped."""
        height, width = image.shape[:2]
        px, py = round(width * PAD_SHARE), round(height * PAD_SHARE)
        canvas = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REPLICATE)
        faces = []
        for f in self._find(canvas):
            box = f.box - np.array([px, py, px, py])
            clipped = np.clip(box, 0, [width, height, width, height])
            if clipped[2] - clipped[0] >= 0.5 * (box[2] - box[0]) and clipped[3] - clipped[1] >= 0.5 * (
                box[3] - box[1]
            ):
                faces.append(Face(clipped, f.score, f.landmarks - np.array([px, py])))  # mostly inside the photo
        return faces


def _side(face: Face) -> float:
    x1, y1, x2, y2 = face.box
    return float(min(x2 - x1, y2 - y1))


def main_faces(faces: list[Face], size_share: float = 0.25, score_margin: float = 0.05) -> list[Face]:
    """The faces that count in a photo of one person: those at least `size_share` of the largest face's area and
    not much weaker than it (within `score_margin` of its score); the rest are bystanders or background."""
    if not faces:
        return []
    largest = max(faces, key=lambda f: f.area)
    return [f for f in faces if f.area >= size_share * largest.area and f.score >= largest.score - score_margin]


def plausible_landmarks(face: Face) -> bool:
    """Whether the 5 landmarks are laid out as a face's are: the mouth on the chin's side of the eye line, at 0.3-3
    eye distances from the eyes (generous: tilted, turned and profile faces pass; a pattern on a shirt that a
    detector scored as a face often does not)."""
    eyes, mouth = face.landmarks[:2], face.landmarks[3:5]
    axis = eyes[1] - eyes[0]
    gap = float(np.hypot(*axis))
    if gap < 1e-6:
        return False
    down = mouth.mean(axis=0) - eyes.mean(axis=0)
    below = (axis[0] * down[1] - axis[1] * down[0]) / gap  # the mouth's distance past the eye line, chin-wards
    return 0.3 * gap <= below <= 3 * gap


def most_face_like(faces: list[Face], size_share: float = 0.25, score_margin: float = 0.05) -> tuple[int, str]:
    """The face a one-face command uses, and why: the largest, unless its landmarks are not laid out as a face's
    or another face at least `size_share` of its area scores more than `score_margin` higher (the largest box can
    be a pattern on clothing); then the best-scoring such face whose landmarks are. `faces` are sorted largest
    first."""
    if len(faces) == 1:
        return 0, "the only face"
    large = [i for i, f in enumerate(faces) if f.area >= size_share * faces[0].area and plausible_landmarks(f)]
    best = max(large, key=lambda i: (faces[i].score, -i), default=0)
    if plausible_landmarks(faces[0]) and faces[best].score <= faces[0].score + score_margin:
        return 0, "the largest face"
    if best == 0:
        return 0, "the largest face (no other is more face-like)"
    reason = "its landmarks are not laid out as a face's" if not plausible_landmarks(faces[0]) else "it scores lower"
    return best, (
        f"the most face-like of the large faces (detector score {faces[best].score:.3f} against "
        f"{faces[0].score:.3f} for the largest, and {reason})"
    )


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


_DETECTORS: Registry[Detector] = Registry("detector")
register_detector = _DETECTORS.register


def create_detector(name: str, **kwargs: Any) -> Detector:
    """Build the detector backend registered as `name`."""
    return _DETECTORS.get(name)(**kwargs)


def list_detectors() -> list[str]:
    """Names of the registered detector backends."""
    return _DETECTORS.names()
