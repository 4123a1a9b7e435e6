"""The false-positive filter: a detection stays a face only if the recognizer sees one in it.

MTCNN's last stage also fires, at scores up to 0.99, on ears, chins and hair beside a face (profile photos
above all) and on some dark textures; its landmarks then still sit where a face's would, so their geometry
does not tell (measured on CFP). What does is a recognizer's own quality signal: FaceNet's embedding before
normalisation (its `bottleneck` output) is long for faces and short for what merely looks like one, the
property MagFace trains for. It is off by default (`DetectionSettings.check`): a short bottleneck also comes from
real faces FaceNet judges poorly (it dropped 7 photos of two women of colour in one trial), and YuNet, the default
detector, does not fire on ears and hair as MTCNN does. `rnnface eval detector` measures it on every detector:
recall and the faces it drops on each face set, false faces per image on photos without faces.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from rnnface.detection import DEFAULT_DETECTOR, NO_DETECTOR, DetectionSettings, Detector, Face, create_detector

#: The shortest FaceNet bottleneck a face may have. On CFP's 7,000 photos (MTCNN at 0.9), 99.6 % of the labelled
#: frontal faces and 99.7 % of the profile ones are longer, and 6 of the 10 other detections (ears, a chin, hair,
#: a blurred face behind) shorter.
MIN_NORM = 16.0


class FaceCheck:
    """FaceNet's bottleneck norm of detected faces (the graph loads on first use, once per process)."""

    def __init__(self, min_norm: float = MIN_NORM) -> None:
        self.min_norm = min_norm

    def norms(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        """(N,) bottleneck norms of `faces`, cut from `image` as FaceNet was trained (the process's shared FaceNet,
        which keeps the pass for the hybrid's embedding of the same faces)."""
        if not faces:
            return np.zeros(0, np.float32)
        from rnnface.pretrained.facenet import shared_facenet

        net = shared_facenet()
        crops = np.stack([net.crop.crop(image, f.box, None).image for f in faces])
        return np.linalg.norm(net(crops)["bottleneck"], axis=1)

    def keep_mask(self, image: np.ndarray, faces: list[Face]) -> list[bool]:
        """Whether each of `faces` passes."""
        return [bool(n >= self.min_norm) for n in self.norms(image, faces)]


@lru_cache(maxsize=1)
def shared_check() -> FaceCheck:
    """The process's one FaceCheck (its graph is loaded once, however many detectors use it)."""
    return FaceCheck()


class CheckedDetector(Detector):
    """A detector whose faces pass the FaceNet check."""

    def __init__(self, inner: Detector, check: FaceCheck | None = None) -> None:
        super().__init__(inner.settings)
        self.inner, self.check = inner, check or shared_check()

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detect_known(image, lambda face: False)

    def detect_known(self, image: np.ndarray, trusted: Callable[[Face], bool]) -> list[Face]:
        faces = self.inner.detect(image)
        known = [trusted(f) for f in faces]
        checked = iter(self.check.keep_mask(image, [f for f, k in zip(faces, known) if not k]))
        return [f for f, k in zip(faces, known) if k or next(checked)]


def face_detector(
    settings: DetectionSettings | None = None, detect: bool = True, name: str = DEFAULT_DETECTOR
) -> Detector:
    """The detector users get, assembled here and only here (the library, CLI and service all call this): the
    backend `name` (`detection.DEFAULT_DETECTOR`, YuNet) with `settings`, checked only when `settings.check` asks
    for it; with `detect` False, none (the photo is the face)."""
    settings = settings or DetectionSettings()
    if not detect:
        return create_detector(NO_DETECTOR, settings=settings)
    inner = create_detector(name, settings=settings)
    return CheckedDetector(inner) if settings.check else inner
