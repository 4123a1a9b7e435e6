"""MobileFaceNet (Chen et al. 2018) as sirius-ai/MobileFaceNet_TF built it, in PyTorch: 112 x 112 RGB aligned on the
ArcFace 5-point template, `(x - 127.5) / 128`, a 192-d embedding out.

The layers follow the TFLite graph `MobileFaceNet.tflite` (its batch norms folded into the convolutions, PReLU
everywhere but the linear projections): a 3 x 3 stem, a depthwise-separable unit, five stages of inverted
residual bottlenecks, a 1 x 1 expansion to the 7 x 7 x 512 map, the global depthwise convolution (GDC) and two
linear 1 x 1 projections. Padding follows TensorFlow's "SAME", which for the stride-2 layers pads only the right
and bottom. The weights are derived from the TFLite file once (`rnnface.models.mobilefacenet_tflite`) and shipped
in the package (`rnnface/weights/mobilefacenet.pt`, see its model card); `pretrained_mobilefacenet()` is the
process's one frozen copy, which every hybrid model on it shares as its front-end.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnnface.errors import ModelError
from rnnface.models.checkpoint import first_line
from rnnface.models.frontends import MOBILEFACENET
from rnnface.models.layers import PReLU, last_output

#: Intermediate outputs by name, in the order the network computes them: the 14 x 14 map after the fourth stage,
#: the 7 x 7 map before the GDC, and the unit embedding.
OUTPUTS = ("map14", "map7", "embedding")

#: The stages of inverted residual bottlenecks: (expanded channels, output channels, blocks, first stride).
STAGES = ((128, 64, 5, 2), (256, 128, 1, 2), (256, 128, 6, 1), (512, 128, 1, 2), (256, 128, 2, 1))

#: The derived weights inside the package, and the format tag they are stored under.
WEIGHTS = "mobilefacenet.pt"
FORMAT = "rnnface-frontend/1"


class Unit(nn.Module):
    """A convolution with its batch norm folded in, TensorFlow "SAME" padding, and a PReLU unless linear."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, depthwise: bool = False, act: bool = True):
        super().__init__()
        # "SAME" at stride 1 is the conv's own symmetric padding; at stride 2 it pads only the right and bottom of
        # an even map, which forward does (a Pad operator in an exported graph, against one per 3 x 3 layer)
        padding = kernel // 2 if stride == 1 else 0
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=padding, groups=cin if depthwise else 1)
        self.act = PReLU(cout) if act else nn.Identity()
        self.same = kernel > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.conv.kernel_size[0], self.conv.stride[0]
        if self.same and s > 1:
            size = int(x.shape[-1])  # a constant in an exported graph
            total = max((-(-size // s) - 1) * s + k - size, 0)
            x = F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
        return self.act(self.conv(x))


class Bottleneck(nn.Module):
    """Inverted residual: 1 x 1 expansion, 3 x 3 depthwise (strided), linear 1 x 1 projection, skip when shapes
    allow."""

    def __init__(self, cin: int, expand: int, cout: int, stride: int) -> None:
        super().__init__()
        self.expand = Unit(cin, expand, 1)
        self.depthwise = Unit(expand, expand, 3, stride, depthwise=True)
        self.project = Unit(expand, cout, 1, act=False)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.skip else out


class MobileFaceNet(nn.Module):
    """MobileFaceNet. `forward` returns the named outputs asked for (`OUTPUTS`), computing no further than the last."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(Unit(3, 64, 3, 2), Unit(64, 64, 3, depthwise=True), Unit(64, 64, 1, act=False))
        stages, cin = [], 64
        for expand, cout, blocks, stride in STAGES:
            stages.append(
                nn.Sequential(
                    *(Bottleneck(cin if i == 0 else cout, expand, cout, stride if i == 0 else 1) for i in range(blocks))
                )
            )
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.conv7 = Unit(128, 512, 1)
        self.gdc = nn.Conv2d(512, 512, 7, groups=512)
        self.logits = nn.Sequential(nn.Conv2d(512, 512, 1), nn.Conv2d(512, 192, 1))

    def forward(self, x: torch.Tensor, outputs: tuple[str, ...] = ("embedding",)) -> dict[str, torch.Tensor]:
        """(N, 3, 112, 112) standardised RGB -> {name: output} for each of `outputs`."""
        last = last_output("MobileFaceNet", outputs, OUTPUTS)
        out: dict[str, torch.Tensor] = {}
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == 2:
                out["map14"] = x
        if last >= 1:
            out["map7"] = x = self.conv7(x)
        if last >= 2:
            out["embedding"] = F.normalize(self.logits(self.gdc(x)).flatten(1), dim=-1)
        return {name: out[name] for name in outputs}


def weights_path() -> Path:
    """The derived weights shipped in the package."""
    return Path(str(resources.files("rnnface.weights").joinpath(WEIGHTS)))


def torch_mobilefacenet(path: Path | None = None) -> MobileFaceNet:
    """A new MobileFaceNet holding the shipped weights (derived from `MobileFaceNet.tflite`), in eval mode."""
    path = path or weights_path()
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: MobileFaceNet's weights are missing; reinstall rnnface") from None
    except Exception as exc:  # torch raises many types for a damaged file
        raise ModelError(f"{path}: MobileFaceNet's weights are not readable ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path}: not rnnface's MobileFaceNet weights (expected format {FORMAT})")
    if payload.get("source_sha256") != MOBILEFACENET.sha256:
        raise ModelError(
            f"{path}: derived from a MobileFaceNet file with SHA-256 {str(payload.get('source_sha256'))[:16]}…, "
            f"not {MOBILEFACENET.sha256[:16]}…"
        )
    model = MobileFaceNet()
    try:
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError) as exc:
        raise ModelError(f"{path}: MobileFaceNet's weights do not fit the network ({first_line(exc)})") from None
    return model.eval()


@lru_cache(maxsize=4)
def pretrained_mobilefacenet(device: str = "cpu") -> MobileFaceNet:
    """The process's one frozen MobileFaceNet on `device` (no gradients), shared by every model that reads it."""
    return torch_mobilefacenet().requires_grad_(False).to(device)
