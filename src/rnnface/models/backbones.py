"""The recurrent backbones. Each maps a (B, C, S, S) face crop in [-1, 1] to a unit embedding.

No classification or margin head lives here: that belongs to training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from rnnface.alignment import CropSpec
from rnnface.models.base import FaceModel, ModelConfig
from rnnface.models.frontends import FrontEndSpec, pixels
from rnnface.models.layers import AttentionPool, EmbeddingHead, PReLU, Sweep2D, make_rnn, run_sweeps, sweep_layers
from rnnface.models.registry import register_model


class PixelConfig(ModelConfig, Protocol):
    """What every pixel backbone's config holds."""

    @property
    def img_size(self) -> int: ...

    @property
    def in_chans(self) -> int: ...


class PixelBackbone(FaceModel):
    """A backbone that reads the aligned crop itself: 5-point template crops, resized to `img_size`."""

    config: PixelConfig
    crop = CropSpec()
    inputs: tuple[str, ...] = ("pixels",)
    reads_one_crop = True

    @property
    def frontend(self) -> FrontEndSpec:
        """Empty: pixels go straight in."""
        return pixels(self.crop, self.input_size)

    @property
    def input_size(self) -> int:
        return int(self.config.img_size)

    def example_input(self, batch: int) -> torch.Tensor:
        """Random pixels of the shape this backbone reads."""
        return torch.randn(batch, self.config.in_chans, self.config.img_size, self.config.img_size)

    def example_features(self, batch: int) -> dict[str, torch.Tensor]:
        return {"pixels": self.example_input(batch)}

    def embed_features(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The same as calling the backbone: its front-end is empty."""
        return self(features["pixels"])


@dataclass(frozen=True)
class RowRNNConfig:
    img_size: int = 64
    in_chans: int = 3
    cell: str = "lstm"
    hidden: int = 256
    num_layers: int = 2
    bidirectional: bool = False
    pool: str = "last"  # 'last' hidden state or 'mean' over rows
    embed_dim: int = 256


class RowRNN(PixelBackbone):
    """The seed design: each image row is one timestep of a stacked RNN."""

    config: RowRNNConfig

    def __init__(self, config: RowRNNConfig) -> None:
        super().__init__()
        if config.pool not in ("last", "mean"):
            raise ValueError(f"pool must be 'last' or 'mean', got {config.pool!r}")
        self.config = config
        self.rnn = make_rnn(
            config.cell, config.in_chans * config.img_size, config.hidden, config.num_layers, config.bidirectional
        )
        directions = 2 if config.bidirectional else 1
        self.head = EmbeddingHead(config.hidden * directions, config.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        rows = x.permute(0, 2, 1, 3).reshape(b, h, c * w)
        out, state = self.rnn(rows)
        if self.config.pool == "mean":
            feat = out.mean(dim=1)
        else:
            h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
            directions = 2 if self.config.bidirectional else 1
            feat = h_n[-directions:].permute(1, 0, 2).reshape(b, -1)  # last layer, all directions
        return self.head(feat)


@dataclass(frozen=True)
class ReNetConfig:
    img_size: int = 64
    in_chans: int = 3
    cell: str = "gru"
    patches: tuple[int, ...] = (4, 2)  # patch side flattened before each sweep layer
    hidden: tuple[int, ...] = (64, 128)  # hidden size of each sweep layer's RNNs
    embed_dim: int = 256


class ReNet(PixelBackbone):
    """ReNet (Visin et al. 2015): patch flattening + stacked 2-D bidirectional sweeps, no convolutions."""

    config: ReNetConfig

    def __init__(self, config: ReNetConfig) -> None:
        super().__init__()
        if len(config.patches) != len(config.hidden):
            raise ValueError("patches and hidden need one entry per sweep layer")
        self.config = config
        layers, channels = [], config.in_chans
        for patch, hidden in zip(config.patches, config.hidden):
            layers.append(Sweep2D(channels * patch * patch, hidden, config.cell))
            channels = 2 * hidden
        self.layers = nn.ModuleList(layers)
        self.head = EmbeddingHead(channels, config.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for patch, layer in zip(self.config.patches, self.layers):
            x = layer(F.pixel_unshuffle(x, patch))
        return self.head(x.mean(dim=(2, 3)))


@dataclass(frozen=True)
class ConvBiRNNConfig:
    img_size: int = 112
    in_chans: int = 3
    cell: str = "gru"
    stem: tuple[int, ...] = (32, 64, 64)  # channels of the stride-2 3x3 convolutions
    hidden: tuple[int, ...] = (128, 128)  # hidden size of each 2-D sweep layer
    heads: int = 1  # attention-pooling heads
    dropout: float = 0.0
    embed_dim: int = 256


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), PReLU(cout))


class ConvBiRNN(PixelBackbone):
    """A light convolutional stem, then 2-D bidirectional sweeps (rows, then columns) that carry the
    model, then attention pooling. Sweep layers after the first are residual."""

    config: ConvBiRNNConfig

    def __init__(self, config: ConvBiRNNConfig) -> None:
        super().__init__()
        self.config = config
        chans = (config.in_chans, *config.stem)
        self.stem = nn.Sequential(*(_conv_bn(a, b) for a, b in zip(chans[:-1], chans[1:])))
        self.sweeps, self.norms, channels = sweep_layers(chans[-1], config.hidden, config.cell)
        self.pool = AttentionPool(channels, config.heads)
        self.head = EmbeddingHead(self.pool.out_channels, config.embed_dim, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(run_sweeps(self.stem(x), self.sweeps, self.norms)))


@register_model
def seed_rowlstm(**kwargs) -> RowRNN:
    """Rows as timesteps of a 2-layer LSTM (the seed's baseline)."""
    return RowRNN(RowRNNConfig(**kwargs))


@register_model
def renet(**kwargs) -> ReNet:
    """ReNet: patches + stacked horizontal/vertical bidirectional sweeps, no convolutions."""
    return ReNet(ReNetConfig(**kwargs))


@register_model
def conv_birnn(**kwargs) -> ConvBiRNN:
    """Conv stem + 2-D bidirectional sweeps + attention pooling (the strongest pure recurrent backbone)."""
    return ConvBiRNN(ConvBiRNNConfig(**kwargs))
