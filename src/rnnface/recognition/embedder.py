"""Run a recurrent backbone on aligned face crops."""

from __future__ import annotations

import os

import numpy as np
import torch

from rnnface.models.checkpoint import Checkpoint, load_checkpoint
from rnnface.models.preprocess import to_model_input


class Embedder:
    """Embeds aligned crops with a checkpointed backbone, in batches, without gradients."""

    def __init__(self, checkpoint: Checkpoint, batch_size: int = 64, flip: bool | None = None, device: str = "cpu") -> None:
        self.checkpoint = checkpoint
        self.batch_size = batch_size
        # Average with the mirrored crop (a little more accurate, twice the cost). Default: as when the
        # checkpoint's threshold was calibrated, so similarities match that threshold.
        self.flip = bool(checkpoint.meta.get("flip", False)) if flip is None else flip
        self.device = torch.device(device)
        self.model = checkpoint.model.to(self.device).eval()

    @classmethod
    def from_path(cls, path: str | os.PathLike, **kwargs) -> Embedder:
        """Load the checkpoint at `path`."""
        return cls(load_checkpoint(path), **kwargs)

    @property
    def input_size(self) -> int:
        return self.checkpoint.input_size

    @property
    def threshold(self) -> float | None:
        return self.checkpoint.threshold

    @torch.inference_mode()
    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 aligned crops (any S; resized as in training) -> (N, D) float32 unit embeddings."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2] or crops.dtype != np.uint8:
            raise ValueError(f"expected (N, S, S, 3) uint8 crops, got {crops.shape} {crops.dtype}")
        out = []
        for start in range(0, len(crops), self.batch_size):
            x = to_model_input(crops[start : start + self.batch_size], self.input_size).to(self.device)
            emb = self.model(x)
            if self.flip:
                emb = torch.nn.functional.normalize(emb + self.model(x.flip(-1)), dim=-1)
            out.append(emb.float().cpu().numpy())
        if not out:
            dim = int(self.checkpoint.args.get("embed_dim", 0))
            return np.zeros((0, dim), dtype=np.float32)
        return np.concatenate(out)
