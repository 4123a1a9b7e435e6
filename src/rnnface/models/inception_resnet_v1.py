"""Inception-ResNet-v1 (Szegedy et al. 2016) as FaceNet (Schroff et al. 2015; David Sandberg's VGGFace2 model)
built it, in PyTorch: 160 x 160 RGB in, `(x - 127.5) / 128`, a 512-d embedding out.

The modules are named after the TensorFlow scopes of that graph ("Repeat_1.block17_3.Branch_1.Conv2d_0b_1x7"), so
that weights read from the graph land by name (`rnnface.pretrained.facenet.torch_facenet`). Each convolution
carries a bias: the graph's batch norms are folded into its convolutions. Padding follows TensorFlow's: "VALID"
where the graph says so, else "SAME", which for these stride-1 odd kernels is symmetric.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rnnface.models.layers import last_output

#: Intermediate outputs by name (as `rnnface.models.frontends.FACENET` lists them), each after its block's ReLU.
OUTPUTS = ("block35", "block17", "bottleneck", "embedding")


def _conv(cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, same: bool = True) -> nn.Conv2d:
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return nn.Conv2d(cin, cout, (kh, kw), stride, padding=(kh // 2, kw // 2) if same else 0)


class _Branches(nn.Module):
    """An Inception block's parallel branches (each a chain of convolutions with ReLUs, or a max-pool), concatenated;
    each branch is an attribute named as its scope ("Branch_1")."""

    def __init__(self, branches: dict[str, dict[str, nn.Module]]) -> None:
        super().__init__()
        self.names = list(branches)
        for name, chain in branches.items():
            self.add_module(name, nn.ModuleDict(chain))

    def mixed(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for name in self.names:
            y = x
            for layer in getattr(self, name).values():
                y = layer(y) if isinstance(layer, nn.MaxPool2d) else F.relu(layer(y))
            outs.append(y)
        return torch.cat(outs, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mixed(x)


class _Residual(_Branches):
    """x + scale * up(branches(x)), then ReLU unless it is the last block."""

    def __init__(self, channels: int, branches: dict[str, dict[str, nn.Module]], mixed: int, scale: float, relu=True):
        super().__init__(branches)
        self.Conv2d_1x1 = nn.Conv2d(mixed, channels, 1)
        self.scale, self.relu = scale, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x + self.scale * self.Conv2d_1x1(self.mixed(x))
        return F.relu(out) if self.relu else out


def _block35() -> _Residual:
    return _Residual(
        256,
        {
            "Branch_0": {"Conv2d_1x1": _conv(256, 32, 1)},
            "Branch_1": {"Conv2d_0a_1x1": _conv(256, 32, 1), "Conv2d_0b_3x3": _conv(32, 32, 3)},
            "Branch_2": {
                "Conv2d_0a_1x1": _conv(256, 32, 1),
                "Conv2d_0b_3x3": _conv(32, 32, 3),
                "Conv2d_0c_3x3": _conv(32, 32, 3),
            },
        },
        96,
        0.17,
    )


def _factorised(channels: int, width: int, k: int, scale: float, relu: bool = True) -> _Residual:
    """Inception-B and -C's residual block: a 1x1 branch beside a 1x1 -> 1xk -> kx1 one, each `width` wide."""
    return _Residual(
        channels,
        {
            "Branch_0": {"Conv2d_1x1": _conv(channels, width, 1)},
            "Branch_1": {
                "Conv2d_0a_1x1": _conv(channels, width, 1),
                f"Conv2d_0b_1x{k}": _conv(width, width, (1, k)),
                f"Conv2d_0c_{k}x1": _conv(width, width, (k, 1)),
            },
        },
        2 * width,
        scale,
        relu,
    )


def _block17() -> _Residual:
    return _factorised(896, 128, 7, 0.10)


def _block8(scale: float = 0.20, relu: bool = True) -> _Residual:
    return _factorised(1792, 192, 3, scale, relu)


class InceptionResnetV1(nn.Module):
    """FaceNet's network. `forward` returns the named outputs asked for (`OUTPUTS`), computing no further than
    the last of them."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _conv(3, 32, 3, stride=2, same=False)
        self.Conv2d_2a_3x3 = _conv(32, 32, 3, same=False)
        self.Conv2d_2b_3x3 = _conv(32, 64, 3)
        self.Conv2d_3b_1x1 = _conv(64, 80, 1, same=False)
        self.Conv2d_4a_3x3 = _conv(80, 192, 3, same=False)
        self.Conv2d_4b_3x3 = _conv(192, 256, 3, stride=2, same=False)
        self.Repeat = nn.ModuleDict({f"block35_{i}": _block35() for i in range(1, 6)})
        self.Mixed_6a = _Branches(
            {
                "Branch_0": {"Conv2d_1a_3x3": _conv(256, 384, 3, stride=2, same=False)},
                "Branch_1": {
                    "Conv2d_0a_1x1": _conv(256, 192, 1),
                    "Conv2d_0b_3x3": _conv(192, 192, 3),
                    "Conv2d_1a_3x3": _conv(192, 256, 3, stride=2, same=False),
                },
                "Branch_2": {"MaxPool_1a_3x3": nn.MaxPool2d(3, 2)},
            }
        )
        self.Repeat_1 = nn.ModuleDict({f"block17_{i}": _block17() for i in range(1, 11)})
        self.Mixed_7a = _Branches(
            {
                "Branch_0": {
                    "Conv2d_0a_1x1": _conv(896, 256, 1),
                    "Conv2d_1a_3x3": _conv(256, 384, 3, stride=2, same=False),
                },
                "Branch_1": {
                    "Conv2d_0a_1x1": _conv(896, 256, 1),
                    "Conv2d_1a_3x3": _conv(256, 256, 3, stride=2, same=False),
                },
                "Branch_2": {
                    "Conv2d_0a_1x1": _conv(896, 256, 1),
                    "Conv2d_0b_3x3": _conv(256, 256, 3),
                    "Conv2d_1a_3x3": _conv(256, 256, 3, stride=2, same=False),
                },
                "Branch_3": {"MaxPool_1a_3x3": nn.MaxPool2d(3, 2)},
            }
        )
        self.Repeat_2 = nn.ModuleDict({f"block8_{i}": _block8() for i in range(1, 6)})
        self.Block8 = _block8(scale=1.0, relu=False)
        self.Bottleneck = nn.Linear(1792, 512, bias=False)
        self.BatchNorm = nn.BatchNorm1d(512, eps=1e-3, affine=False)
        self.beta = nn.Parameter(torch.zeros(512))  # the bottleneck's batch norm is centred, not scaled

    def low_level(self, x: torch.Tensor) -> torch.Tensor:
        """The first three convolutions: (N, 3, H, W) -> (N, 64, ~H/2, ~W/2) maps of local texture (edges, grain)."""
        for layer in (self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3):
            x = F.relu(layer(x))
        return x

    def forward(self, x: torch.Tensor, outputs: tuple[str, ...] = ("embedding",)) -> dict[str, torch.Tensor]:
        """(N, 3, 160, 160) standardised RGB -> {name: output} for each of `outputs`."""
        last = last_output("InceptionResnetV1", outputs, OUTPUTS)
        out: dict[str, torch.Tensor] = {}
        x = F.max_pool2d(self.low_level(x), 3, 2)
        for layer in (self.Conv2d_3b_1x1, self.Conv2d_4a_3x3, self.Conv2d_4b_3x3):
            x = F.relu(layer(x))
        for block in self.Repeat.values():
            x = block(x)
        out["block35"] = x
        if last > 0:
            x = self.Mixed_6a(x)
            for block in self.Repeat_1.values():
                x = block(x)
            out["block17"] = x
        if last > 1:
            x = self.Mixed_7a(x)
            for block in self.Repeat_2.values():
                x = block(x)
            x = self.Block8(x).mean(dim=(2, 3))
            out["bottleneck"] = self.BatchNorm(self.Bottleneck(x)) + self.beta
        if last > 2:
            out["embedding"] = F.normalize(out["bottleneck"], dim=1, eps=1e-10)
        return {name: out[name] for name in outputs}
