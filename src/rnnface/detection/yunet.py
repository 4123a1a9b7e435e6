"""YuNet (libfacedetection.train, Apache-2.0) run by OpenCV's `cv2.FaceDetectorYN`: the default detector.

The ONNX file ships in `rnnface/weights/` (`yunet_s_640_640.onnx`, its licence in `LICENSE-yunet.txt`) and is
checked against its SHA-256 when first loaded. The original: github.com/ShiqiYu/libfacedetection.train at commit
0047ac24afb1a50a0c6105001c89d1b5b805dbf1, `onnx/yunet_s_640_640.onnx` (the same bytes as OpenCV Zoo's
`face_detection_yunet_2023mar.onnx`). YuNet-s rather than the larger -n: on this project's photo sets it
finds as many faces (more of the small grey NUAA crops), fires on fewer things that are not faces, and is faster.

YuNet's box is already in MTCNN's convention (IoU 0.89 with MTCNN's box of the same LFW face, 0.85 on CFP profiles;
a box fitted to the 5 landmarks gets 0.78 and 0.41), so FaceNet's box crop is cut from it as it is. Its landmarks
come in rnnface's order (the subject's right eye is the one on the image's left).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from rnnface.detection.base import DetectionSettings, Detector, Face, PyramidDetector, register_detector
from rnnface.errors import ModelError

MODEL = "yunet_s_640_640.onnx"
SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
#: YuNet's scores are lower than MTCNN's (faces 0.85-0.95): at 0.8 no photo of the sample photos without faces
#: keeps a false face (the highest, a motorcycle headlight, scores 0.76) and 95 % of CFP profiles are found
#: (`rnnface eval detector`).
MIN_SCORE = 0.8
#: Photos with a shorter side below this are enlarged to it: YuNet scores a face filling a small photo low (NUAA's
#: 64 x 64 crops: 38 of 511 below 0.8 as given, 3 once enlarged to 192).
MIN_SIDE = 192
#: The largest face YuNet finds well (its scores and boxes degrade past ~400 pixels); bigger faces are looked for on
#: copies of the photo halved until its shorter side is at most this.
MAX_FACE = 320
#: Bigger photos are downscaled to this side (MTCNN's 1280 suits its 12-pixel windows; YuNet wants faces of 30
#: pixels or more: a 60-pixel face in a 4000 x 3000 photo, 38 pixels here, is found in 30 of 30 photos, 10 at 1280,
#: in about MTCNN's time).
MAX_SIDE = 2560
NMS_IOU = 0.3
#: OpenCV's network keeps the buffers of the largest input it has run (330 MB after a 2560-pixel photo, never
#: shrunk): after an input of more pixels than this it is dropped and made again (5 ms) on the next photo.
KEEP_PIXELS = 1280 * 1280


def model_path() -> Path:
    """The ONNX file inside the installed package."""
    return Path(str(resources.files("rnnface.weights").joinpath(MODEL)))


@lru_cache(maxsize=4)
def _verified(path: Path, size: int, mtime: float) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        raise ModelError(f"YuNet model {path} has SHA-256 {digest[:16]}…, not {SHA256[:16]}…; reinstall rnnface")


def verify_model(path: Path) -> None:
    """Raise ModelError unless `path` is the shipped YuNet file (hashed once per file version)."""
    if not path.is_file():
        raise ModelError(f"YuNet model {path} is missing; reinstall rnnface")
    stat = path.stat()
    _verified(path, stat.st_size, stat.st_mtime)


class YuNet(PyramidDetector):
    """YuNet on the photo at its own size (setInputSize per call), small photos enlarged and big faces looked for on
    halved copies; the levels' faces are merged by non-maximum suppression."""

    default_min_score = MIN_SCORE

    def __init__(self, settings: DetectionSettings | None = None, max_side: int = MAX_SIDE) -> None:
        super().__init__(settings, max_side)
        self._net = None  # loaded on first use

    def _load(self):
        if self._net is None:
            path = model_path()
            verify_model(path)
            level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV 5 warns about DNN targets
            try:
                self._net = cv2.FaceDetectorYN.create(str(path), "", (MAX_FACE, MAX_FACE), self.min_score, NMS_IOU)
            finally:
                cv2.utils.logging.setLogLevel(level)
        return self._net

    def _levels(self, height: int, width: int) -> list[float]:
        """The scales YuNet sees the image at: enlarged to MIN_SIDE (within max_side), then halved while a face too
        big for the previous level could be there."""
        scales = [max(1.0, min(MIN_SIDE / min(height, width), self.max_side / max(height, width)))]
        while min(height, width) * scales[-1] > MAX_FACE:
            scales.append(scales[-1] / 2)
        return scales

    def _detect(self, image: np.ndarray, min_face: float) -> list[Face]:
        net = self._load()
        height, width = image.shape[:2]
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        rows = []
        for scale in self._levels(height, width):
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            level = bgr if scale == 1.0 else cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
            net.setInputSize(size)
            _, found = net.detect(level)
            if found is not None:
                back = np.tile([width / size[0], height / size[1]], 7)  # x, y, w, h, 5 landmarks
                rows += [np.concatenate([row[:14] * back, row[14:15]]) for row in found.astype(np.float64)]
        if width * height > KEEP_PIXELS:
            self._net = None
        if not rows:
            return []
        keep = cv2.dnn.NMSBoxes([r[:4].tolist() for r in rows], [float(r[14]) for r in rows], 0.0, NMS_IOU)
        return [_face(rows[i], width, height) for i in np.asarray(keep).ravel()]


def _face(row: np.ndarray, width: int, height: int) -> Face:
    x, y, w, h = row[:4]
    box = np.array([max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h)])
    return Face(box, float(row[14]), row[4:14].reshape(5, 2).copy())


@register_detector("yunet")
def yunet(**kwargs) -> Detector:
    """YuNet-s on OpenCV's FaceDetectorYN (default backend)."""
    return YuNet(**kwargs)
