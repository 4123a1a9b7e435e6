"""MobileFaceNet as a runner of numpy crops: its feature maps and embedding for ArcFace-aligned 112-pixel faces.

The PyTorch network (`rnnface.models.mobilefacenet`, weights shipped in the package) in batches, without
gradients, fed as every model's input is (`to_model_input`, then the front-end's own scaling: `run_frontend`).
It is what feature caches and the MobileFaceNet peer use; a model that contains MobileFaceNet runs it inside its
own forward pass instead.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnface.models.frontends import MOBILEFACENET
from rnnface.models.hybrid import run_frontend
from rnnface.models.layers import last_output
from rnnface.models.mobilefacenet import OUTPUTS
from rnnface.models.preprocess import to_model_input


class MobileFaceNetRunner:
    """{output: (N, ...) float32} for (N, 112, 112, 3) uint8 RGB template crops."""

    spec = MOBILEFACENET
    name = MOBILEFACENET.name
    crop = MOBILEFACENET.crop

    def __init__(self, outputs: tuple[str, ...] = ("map7", "embedding"), threads: int | None = None, batch: int = 64):
        last_output("MobileFaceNet", outputs, OUTPUTS)  # an unknown output fails here, not at the first call
        self.outputs, self.batch = tuple(outputs), batch
        if threads:
            torch.set_num_threads(threads)

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        crops = np.asarray(crops)
        size = self.crop.size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.dtype != np.uint8:
            raise ValueError(
                f"MobileFaceNet expects (N, {size}, {size}, 3) uint8 crops, got {crops.shape} {crops.dtype}"
            )
        parts = [
            run_frontend(self.spec, to_model_input(crops[start : start + self.batch], size), self.outputs)
            for start in range(0, len(crops), self.batch)
        ]
        return {o: torch.cat([p[o] for p in parts]).numpy() for o in self.outputs}
