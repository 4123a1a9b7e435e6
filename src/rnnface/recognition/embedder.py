"""Run a checkpointed model on face crops: pixels in, embedding out, whatever the model is made of.

The runtime is swappable (`rnnface.recognition.runtimes`): PyTorch on a CPU or a GPU, or onnxruntime on the whole
model exported to ONNX (the same answers, tested to cosine 0.9999) on the CPU or CUDA, float32 or with its
front-end in int8. The model says how its faces are cut.
Embeddings of front-end outputs computed earlier (a feature cache) go through the model's head alone.
"""

from __future__ import annotations

import os
import re
from importlib.util import find_spec

import numpy as np
import torch

from rnnface.alignment import CropSpec
from rnnface.errors import ModelError
from rnnface.models.base import FaceModel
from rnnface.models.checkpoint import Checkpoint, load_checkpoint
from rnnface.models.preprocess import to_model_input
from rnnface.recognition.runtimes import Runtime, create_runtime
from rnnface.settings import DEVICES, RUNTIMES


def resolve_device(device: str) -> torch.device:
    """`auto` -> cuda when PyTorch sees a GPU, else cpu; `cuda:N` names one GPU; ModelError for cuda without one."""
    if device not in DEVICES and not re.fullmatch(r"cuda:\d+", device):
        raise ModelError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"--device {device}: PyTorch sees no GPU here (this torch build or machine has none)")
    return torch.device(device)


def resolve_runtime(runtime: str, device: torch.device) -> str:
    """`auto` -> onnx on a CPU when onnxruntime is installed, else torch (whether a runtime can run on the device
    is the runtime's to say, when it is built)."""
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime == "auto":
        return "onnx" if device.type == "cpu" and find_spec("onnxruntime") and find_spec("onnx") else "torch"
    return runtime


class Embedder:
    """Embeds crops (cut as `crop` says) with a checkpointed model, in batches, without gradients."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        batch_size: int = 64,
        flip: bool | None = None,
        device: str = "cpu",
        runtime: str = "torch",
    ) -> None:
        self.checkpoint = checkpoint
        self.device = resolve_device(device)
        self.runtime = resolve_runtime(runtime, self.device)
        self.batch_size = batch_size
        # Average with the mirrored crop (a little more accurate, twice the cost). Default: as when the
        # checkpoint's threshold was calibrated, so similarities match that threshold.
        self.flip = bool(checkpoint.meta.get("flip", False)) if flip is None else flip
        self.run: Runtime = create_runtime(self.runtime, checkpoint, self.device)

    @classmethod
    def from_path(cls, path: str | os.PathLike, **kwargs) -> Embedder:
        """Load the checkpoint at `path`."""
        return cls(load_checkpoint(path), **kwargs)

    @property
    def crop(self) -> CropSpec:
        """How faces must be cut out for this model."""
        return self.checkpoint.crop

    @property
    def model(self) -> FaceModel:
        """The PyTorch module (on the CPU unless the torch runtime moved it)."""
        return self.checkpoint.model

    def _embed(self, crops: np.ndarray) -> np.ndarray:
        x = to_model_input(crops, self.checkpoint.input_size).numpy()
        emb = self.run(x)
        if not self.flip:
            return emb
        both = emb + self.run(np.ascontiguousarray(x[..., ::-1]))
        return both / np.linalg.norm(both, axis=1, keepdims=True).clip(min=1e-12)

    @torch.inference_mode()
    def embed_features(self, features: dict[str, np.ndarray]) -> torch.Tensor:
        """The model's embeddings of its front-end's outputs {name: (N, ...)} (e.g. from a feature cache): the
        head alone, in PyTorch."""
        model = self.model.to(self.device).eval()
        tensors = {k: torch.from_numpy(np.array(features[k], dtype=np.float32)) for k in model.inputs}
        return model.embed_features({k: v.to(self.device) for k, v in tensors.items()}).cpu()

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 crops cut as `crop` says (template crops of any S are resized as in training)
        -> (N, D) float32 unit embeddings."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2] or crops.dtype != np.uint8:
            raise ValueError(f"expected (N, S, S, 3) uint8 crops, got {crops.shape} {crops.dtype}")
        if self.crop.method == "box" and crops.shape[1] != self.crop.size:
            raise ValueError(f"this model takes {self.crop.size}-pixel {self.crop.method} crops, got {crops.shape[1]}")
        out = [
            self._embed(crops[start : start + self.batch_size]).astype(np.float32, copy=False)
            for start in range(0, len(crops), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.checkpoint.embed_dim), dtype=np.float32)
