"""The one preprocessing path shared by training and inference: uint8 crops -> backbone input."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def to_model_input(crops: torch.Tensor | np.ndarray, size: int, augment: nn.Module | None = None) -> torch.Tensor:
    """(B, S, S, 3) uint8 RGB crops -> (B, 3, size, size) floats in [-1, 1]: antialiased resize, optional augmenting."""
    if isinstance(crops, np.ndarray):
        crops = np.ascontiguousarray(crops)
        crops = torch.from_numpy(crops if crops.flags.writeable else crops.copy())
    x = crops.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != size:
        x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if augment is not None:
        x = augment(x)
    return x.mul_(2.0).sub_(1.0)
