"""Hybrid backbones: a pretrained face CNN's feature maps, integrated by recurrent sweeps into the embedding.

The CNN (the front-end, FaceNet; see `rnnface.models.frontends`) is frozen and runs outside PyTorch; the
module here is only what is trained: it maps the front-end's outputs, a dict of tensors
{map name: (B, C, H, W), "embedding": (B, 512)}, to a unit embedding. With `residual`, the
recurrent branch adds a learnt correction to a linear map of the CNN's own embedding, both
initialised so that training starts exactly at the CNN's embedding; `hidden=()` replaces the
sweeps by average pooling (the non-recurrent head the ablations compare with).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnface.alignment import CropSpec
from rnnface.models.frontends import FACENET, FrontEndSpec, frontend_spec
from rnnface.models.layers import AttentionPool, run_sweeps, sweep_layers
from rnnface.models.registry import register_model


@dataclass(frozen=True)
class HybridConfig:
    frontend: str = "facenet"
    frontend_sha256: str = FACENET.sha256  # identity of the frozen front-end the head was trained on
    map: str = "block17"  # which front-end feature map the sweeps read
    cell: str = "gru"
    reduce: int = 256  # channels of the 1x1 convolution before the sweeps
    hidden: tuple[int, ...] = (128,)  # one 2-D bidirectional sweep layer per entry; () = average pooling
    residual: bool = True  # correct the CNN's own embedding instead of replacing it
    dropout: float = 0.1
    embed_dim: int = 512

    def __post_init__(self) -> None:
        spec = frontend_spec(self.frontend)
        if self.map not in spec.maps:
            raise ValueError(f"map must be a {spec.name} feature map ({', '.join(spec.maps)}), got {self.map!r}")
        if self.residual and self.embed_dim != spec.outputs["embedding"][0]:
            raise ValueError(f"a residual head keeps the CNN's {spec.outputs['embedding'][0]}-d embedding size")

    @property
    def inputs(self) -> tuple[str, ...]:
        """The front-end outputs this head reads."""
        return (self.map, "embedding") if self.residual else (self.map,)


class HybridHead(nn.Module):
    """Front-end feature map -> 1x1 reduction -> 2-D bidirectional sweeps -> attention pooling -> correction."""

    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend: FrontEndSpec = frontend_spec(config.frontend)
        channels = self.frontend.outputs[config.map][0]
        self.reduce = nn.Sequential(
            nn.Conv2d(channels, config.reduce, 1, bias=False), nn.BatchNorm2d(config.reduce), nn.PReLU(config.reduce)
        )
        self.sweeps, self.norms, width = sweep_layers(config.reduce, config.hidden, config.cell)
        self.pool = AttentionPool(width) if config.hidden else None
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(width, config.embed_dim)
        if config.residual:
            dim = config.embed_dim
            self.base = nn.Linear(dim, dim, bias=False)
            with torch.no_grad():  # start exactly at the CNN's embedding
                self.base.weight.copy_(torch.eye(dim))
                self.out.weight.zero_()
                self.out.bias.zero_()

    @property
    def crop(self) -> CropSpec:
        """Faces are cut as the front-end was trained on them."""
        return self.frontend.crop

    @property
    def input_size(self) -> int:
        return self.frontend.crop.size

    def example_input(self, batch: int) -> dict[str, torch.Tensor]:
        """Random front-end outputs of the shapes this head reads (unit-norm embedding)."""
        out = {name: torch.randn(batch, *self.frontend.outputs[name]).relu() for name in self.config.inputs}
        if "embedding" in out:
            out["embedding"] = F.normalize(torch.randn(batch, self.config.embed_dim), dim=-1)
        return out

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        x = run_sweeps(self.reduce(features[self.config.map].float()), self.sweeps, self.norms)
        pooled = self.pool(x) if self.pool is not None else x.mean(dim=(2, 3))
        out = self.out(self.dropout(pooled))
        if self.config.residual:
            out = out + self.base(features["embedding"].float())
        return F.normalize(out, dim=-1)


@register_model
def facenet_birnn(**kwargs) -> HybridHead:
    """Hybrid: FaceNet's Inception-B maps integrated by 2-D bidirectional sweeps, residual to its embedding."""
    if "hidden" in kwargs:
        kwargs["hidden"] = tuple(kwargs["hidden"])
    return HybridHead(HybridConfig(**kwargs))
