"""What the liveness model reads of each frame: frozen pretrained features of the face, one vector a frame.

- `texture`: the mean and spread of FaceNet's 64 low-level maps over the grey eye-aligned crop (NUAA's
  normalization): print grain and lost detail, whatever the light. 128 numbers.
- `lbp`: multi-scale uniform local binary patterns of the same crop (Maatta et al., IJCB 2011: the classic texture
  descriptor of print attacks), histograms of LBP(8,1) over the whole crop and each cell of a 3x3 grid, and of
  LBP(8,2) and LBP(16,2) over the whole crop: micro-texture a CNN's map statistics average away. 128 numbers.
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
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

from rnnface.detection import Face
from rnnface.registry import Registry


class Frontend(ABC):
    dim: int
    crop_only: bool = False  # reads nothing but the grey crop (`from_crops`): NUAA's crops serve it as they are

    @abstractmethod
    def features(self, photo: np.ndarray, face: Face, crop: np.ndarray) -> np.ndarray:
        """(dim,) float32 features of `face` in the RGB `photo`; `crop` is its (S, S) grey liveness crop."""


class CropFrontend(Frontend):
    """A front-end of the grey crop alone, batched."""

    crop_only = True

    @abstractmethod
    def from_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) grey crops in [0, 1] -> (N, dim) float32 features."""

    def features(self, photo: np.ndarray, face: Face, crop: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(crop)).float().div_(255.0)[None, None]
        with torch.inference_mode():
            return self.from_crops(x)[0].numpy()


_FRONTENDS: Registry[Frontend] = Registry("liveness front-end")
_built: dict[str, Frontend] = {}
_lock = threading.Lock()


@_FRONTENDS.register("texture")
class Texture(CropFrontend):
    dim = 128  # FaceNet's 64 low-level maps, the mean and standard deviation of each

    size = 160  # FaceNet's input side: the crop is resized to it

    def from_crops(self, crops: torch.Tensor) -> torch.Tensor:
        from rnnface.models.facenet_weights import pretrained_facenet

        x = F.interpolate(crops, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = ((x * 255.0 - 127.5) / 128.0).expand(-1, 3, -1, -1)  # standardized as FaceNet was trained
        maps = pretrained_facenet(str(crops.device)).low_level(x)
        return torch.cat([maps.mean(dim=(2, 3)), maps.std(dim=(2, 3))], dim=1)


@_FRONTENDS.register("lbp")
class LocalBinaryPatterns(CropFrontend):
    #: (points, radius, whole crop only): LBP(8,1) also on each cell of a 3x3 grid
    SCALES = ((8, 1, False), (8, 2, True), (16, 2, True))
    dim = sum((p + 2) * (1 if whole else 10) for p, _, whole in SCALES)

    def from_crops(self, crops: torch.Tensor) -> torch.Tensor:
        grey = (crops[:, 0] * 255.0).round().clamp_(0, 255).to(torch.uint8).numpy()
        return torch.from_numpy(np.stack([self._one(g) for g in grey]))

    def _one(self, grey: np.ndarray) -> np.ndarray:
        from skimage.feature import local_binary_pattern

        out = []
        for points, radius, whole in self.SCALES:
            codes = local_binary_pattern(grey, points, radius, "uniform").astype(np.int64)
            cells = [codes]
            if not whole:
                cells += [c for row in np.array_split(codes, 3, 0) for c in np.array_split(row, 3, 1)]
            out += [np.bincount(c.ravel(), minlength=points + 2) / c.size for c in cells]
        return np.concatenate(out).astype(np.float32)


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


def reads_crops_only(names: Sequence[str]) -> bool:
    """Whether the front-ends `names` read nothing but the grey crop (a class fact: nothing is built)."""
    return all(getattr(_FRONTENDS.get(n), "crop_only", False) for n in names)


def crop_features(names: Sequence[str], crops: torch.Tensor) -> torch.Tensor:
    """(N, 1, S, S) grey crops in [0, 1] -> (N, D) frame vectors of the crop front-ends `names`, joined in order."""
    built = [frontend(n) for n in names]
    if not all(isinstance(f, CropFrontend) for f in built):
        raise ValueError(f"front-ends {list(names)} read more than the crop")
    return torch.cat([cast(CropFrontend, f).from_crops(crops) for f in built], dim=1)


def frontend_dim(names: Sequence[str]) -> int:
    """The length of a frame vector joined from `names`."""
    return sum(frontend(n).dim for n in names)


def frame_features(names: Sequence[str], photo: np.ndarray, face: Face, crop: np.ndarray) -> np.ndarray:
    """One frame's vector: the front-ends `names`, joined in order."""
    return np.concatenate([frontend(n).features(photo, face, crop) for n in names])


def list_frontends() -> list[str]:
    return _FRONTENDS.names()
