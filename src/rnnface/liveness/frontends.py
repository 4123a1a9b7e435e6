"""What the liveness model reads of each frame: frozen pretrained features of the face, one vector a frame.

- `texture`: the mean and spread of FaceNet's 64 low-level maps over the grey eye-aligned crop (NUAA's
  normalization): print grain and lost detail, whatever the light. 128 numbers.
- `minifasnet`: MiniFASNet V2 + V1SE (Silent-Face-Anti-Spoofing, Apache-2.0, shipped in `rnnface.weights`) on
  their own colour context crops (2.7x and 4.0x the face box): their two 128-number embeddings and their mean
  (print, real, replay) probabilities. Colour and what surrounds the face (bezel, paper edge, glare, moire).
  259 numbers.
- `geometry`: where the face is and how its 5 landmarks sit once a similarity has put them on the ArcFace
  template (the residuals, in template pixels), with the box's size and centre in the frame. One frame says
  little; their change from frame to frame is the motion a recurrent model reads (a head turning moves its nose
  against its eyes, a flat print moves as a plane). 14 numbers.

A model names the front-ends it reads (`LivenessConfig.frontends`); its frame vector is theirs joined in order.
Each front-end is built once per process, on first use.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from importlib import resources

import numpy as np

from rnnface.detection import Face
from rnnface.registry import Registry


class Frontend(ABC):
    dim: int

    @abstractmethod
    def features(self, photo: np.ndarray, face: Face, crop: np.ndarray) -> np.ndarray:
        """(dim,) float32 features of `face` in the RGB `photo`; `crop` is its (S, S) grey liveness crop."""


_FRONTENDS: Registry[Frontend] = Registry("liveness front-end")
_built: dict[str, Frontend] = {}
_lock = threading.Lock()


@_FRONTENDS.register("texture")
class Texture(Frontend):
    dim = 128  # FaceNet's 64 low-level maps, the mean and standard deviation of each

    def features(self, photo: np.ndarray, face: Face, crop: np.ndarray) -> np.ndarray:
        import torch

        from rnnface.liveness.model import texture_stats

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(crop)).float().div_(255.0)[None, None]
            return texture_stats(x)[0].numpy()


@_FRONTENDS.register("minifasnet")
class MiniFASNetFeatures(Frontend):
    dim = 259

    def __init__(self) -> None:
        from rnnface.liveness.minifasnet import MiniFASNetRunner

        self.runner = MiniFASNetRunner(str(resources.files("rnnface.weights")))

    def features(self, photo: np.ndarray, face: Face, crop: np.ndarray) -> np.ndarray:
        probabilities, embeddings = self.runner.run(photo, face)
        return np.concatenate([embeddings, probabilities]).astype(np.float32)


@_FRONTENDS.register("geometry")
class Geometry(Frontend):
    dim = 14

    def features(self, photo: np.ndarray, face: Face, crop: np.ndarray) -> np.ndarray:
        from rnnface.alignment.transform import estimate_similarity, template

        points = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
        target = template()
        matrix = estimate_similarity(points, target)
        placed = points @ matrix[:, :2].T + matrix[:, 2]
        height, width = photo.shape[:2]
        x0, y0, x1, y1 = face.box
        where = [np.log(max(x1 - x0, 1.0) / width), np.log(max(y1 - y0, 1.0) / height)]
        where += [(x0 + x1) / (2 * width), (y0 + y1) / (2 * height)]
        return np.concatenate([(placed - target).ravel(), where]).astype(np.float32)


def frontend(name: str) -> Frontend:
    """The front-end registered as `name`, built once."""
    cls = _FRONTENDS.get(name)
    with _lock:
        if name not in _built:
            _built[name] = cls()
        return _built[name]


def frontend_dim(names: Sequence[str]) -> int:
    """The length of a frame vector joined from `names`."""
    return sum(frontend(n).dim for n in names)


def frame_features(names: Sequence[str], photo: np.ndarray, face: Face, crop: np.ndarray) -> np.ndarray:
    """One frame's vector: the front-ends `names`, joined in order."""
    return np.concatenate([frontend(n).features(photo, face, crop) for n in names])


def list_frontends() -> list[str]:
    return _FRONTENDS.names()
