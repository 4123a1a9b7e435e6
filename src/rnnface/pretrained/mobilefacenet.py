"""MobileFaceNet as a runner of numpy crops: its feature maps and embedding for ArcFace-aligned 112-pixel faces.

The PyTorch network (`rnnface.models.mobilefacenet`, weights shipped in the package) in batches, without
gradients, at its trained preprocessing `(x - 127.5) / 128`. It is what feature caches and the MobileFaceNet peer
use; a model that contains MobileFaceNet runs it inside its own forward pass instead.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnface.models.frontends import MOBILEFACENET
from rnnface.models.mobilefacenet import OUTPUTS, pretrained_mobilefacenet


class MobileFaceNetRunner:
    """{output: (N, ...) float32} for (N, 112, 112, 3) uint8 RGB template crops."""

    spec = MOBILEFACENET
    name = MOBILEFACENET.name
    crop = MOBILEFACENET.crop

    def __init__(self, outputs: tuple[str, ...] = ("map7", "embedding"), threads: int | None = None, batch: int = 64):
        unknown = set(outputs) - set(OUTPUTS)
        if unknown:
            raise ValueError(f"MobileFaceNet has no output {sorted(unknown)}; known: {', '.join(OUTPUTS)}")
        self.outputs, self.batch = tuple(outputs), batch
        if threads:
            torch.set_num_threads(threads)
        self._net = pretrained_mobilefacenet()

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        crops = np.asarray(crops)
        size = self.crop.size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.dtype != np.uint8:
            raise ValueError(
                f"MobileFaceNet expects (N, {size}, {size}, 3) uint8 crops, got {crops.shape} {crops.dtype}"
            )
        parts = []
        for start in range(0, len(crops), self.batch):
            x = torch.from_numpy(np.ascontiguousarray(crops[start : start + self.batch])).permute(0, 3, 1, 2).float()
            parts.append(self._net((x - 127.5) / 128.0, self.outputs))
        return {o: torch.cat([p[o] for p in parts]).numpy() for o in self.outputs}
