"""Run a checkpointed backbone on face crops: pixels straight in, or through its pretrained front-end.

The runtime is swappable (PyTorch, or onnxruntime on the same network exported in memory); the
model itself says how its faces are cut and whether a front-end comes first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import numpy as np
import torch

from rnnface.alignment import CropSpec
from rnnface.errors import ModelError
from rnnface.models.checkpoint import Checkpoint, load_checkpoint
from rnnface.models.onnx import OnnxModel
from rnnface.models.preprocess import to_model_input
from rnnface.settings import RUNTIMES


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch threads, then restore the previous number."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Embedder:
    """Embeds crops (cut as `crop` says) with a checkpointed backbone, in batches, without gradients."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        batch_size: int = 64,
        flip: bool | None = None,
        device: str = "cpu",
        runtime: str = "torch",
    ) -> None:
        if runtime not in RUNTIMES:
            raise ModelError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
        self.checkpoint = checkpoint
        self.runtime = runtime
        self.batch_size = batch_size
        # Average with the mirrored crop (a little more accurate, twice the cost). Default: as when the
        # checkpoint's threshold was calibrated, so similarities match that threshold.
        self.flip = bool(checkpoint.meta.get("flip", False)) if flip is None else flip
        self.device = torch.device(device)
        model = checkpoint.model.to(self.device).eval()
        # onnxruntime runs the backbone exported in memory: the same weights, the same answers (tested to cosine 0.9999)
        self.run = model if runtime == "torch" else OnnxModel.from_checkpoint(checkpoint)

    @classmethod
    def from_path(cls, path: str | os.PathLike, **kwargs) -> Embedder:
        """Load the checkpoint at `path`."""
        return cls(load_checkpoint(path), **kwargs)

    @property
    def crop(self) -> CropSpec:
        """How faces must be cut out for this model."""
        return self.checkpoint.crop

    @cached_property
    def frontend(self):
        """The pretrained front-end of a hybrid backbone, loaded on first use (None for pixel backbones)."""
        spec = self.checkpoint.frontend
        if spec is None:
            return None
        from rnnface.pretrained.facenet import create_frontend

        config = self.checkpoint.model.config
        return create_frontend(spec, config.frontend_sha256, config.inputs)

    def _embed(self, crops: np.ndarray) -> torch.Tensor:
        if self.frontend is None:
            x = to_model_input(crops, self.checkpoint.input_size).to(self.device)
            emb = self.run(x)
            return torch.nn.functional.normalize(emb + self.run(x.flip(-1)), dim=-1) if self.flip else emb
        # The head is small: one torch thread, so torch's idle OpenMP workers do not spin against OpenCV's
        # threads running the front-end.
        with torch_threads(1):
            emb = self.embed_features(self._features(crops))
            if self.flip:
                emb = torch.nn.functional.normalize(
                    emb + self.embed_features(self._features(crops[:, :, ::-1])), dim=-1
                )
        return emb

    def _features(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """The front-end outputs this head reads (the shared front-end computes more, for the face check)."""
        out = self.frontend(crops)
        return {name: out[name] for name in self.checkpoint.model.config.inputs}

    @torch.inference_mode()
    def embed_features(self, features: dict[str, np.ndarray]) -> torch.Tensor:
        """A hybrid head's embeddings of front-end outputs {name: (N, ...)} (e.g. from a feature cache)."""
        return self.run(
            {k: torch.from_numpy(np.array(v, dtype=np.float32)).to(self.device) for k, v in features.items()}
        )

    @torch.inference_mode()
    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 crops cut as `crop` says (template crops of any S are resized as in training)
        -> (N, D) float32 unit embeddings."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2] or crops.dtype != np.uint8:
            raise ValueError(f"expected (N, S, S, 3) uint8 crops, got {crops.shape} {crops.dtype}")
        if self.frontend is not None and crops.shape[1] != self.crop.size:
            raise ValueError(
                f"this model's front-end takes {self.crop.size}-pixel {self.crop.method} crops, got {crops.shape[1]}"
            )
        out = [
            self._embed(crops[start : start + self.batch_size]).float().cpu().numpy()
            for start in range(0, len(crops), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.checkpoint.embed_dim), dtype=np.float32)
