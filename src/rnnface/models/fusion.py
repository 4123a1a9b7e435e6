"""A head that fuses two pretrained face CNNs at the feature level: each CNN's map is swept by its own 2-D
bidirectional recurrent branch, and one linear layer reads both branches beside both CNNs' embeddings.

It is the ablation's "head reading both maps" (beside score-level fusion, the sum of two models' cosines). Each CNN
reads the crop it was trained on (MobileFaceNet the 112-pixel ArcFace template, FaceNet its 160-pixel box crop), so
the model takes one crop per CNN: it trains and is scored on joint feature caches (`rnnface features --join`);
the photo pipeline, which cuts one crop a face, cannot run it (`reads_one_crop` is False). With `residual`, training
starts exactly at the first CNN's embedding; the second CNN's embedding and both branches add what they learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnface.errors import ModelError
from rnnface.models.frontends import MOBILEFACENET_FACENET, FrontEndSpec, frontend_spec
from rnnface.models.hybrid import FrontendHead, run_frontend
from rnnface.models.layers import AttentionPool, reduction, run_sweeps, sweep_layers
from rnnface.models.registry import register_model


@dataclass(frozen=True)
class FusionConfig:
    frontend: str = MOBILEFACENET_FACENET.name
    frontend_sha256: str = MOBILEFACENET_FACENET.sha256
    maps: tuple[str, ...] = ("mobilefacenet.map7", "facenet.block17")  # one recurrent branch per map
    cell: str = "gru"
    reduce: int = 128
    hidden: tuple[int, ...] = (96,)
    residual: bool = True
    dropout: float = 0.1
    embed_dim: int = 192

    def __post_init__(self) -> None:
        spec = frontend_spec(self.frontend)
        bad = [m for m in self.maps if m not in spec.maps]
        if bad or not self.maps:
            raise ValueError(f"maps must be {spec.name} feature maps ({', '.join(spec.maps)}), got {list(self.maps)}")
        first = spec.outputs[f"{spec.parts[0]}.embedding"][0]
        if self.residual and self.embed_dim != first:
            raise ValueError(f"a residual fusion head keeps the first CNN's {first}-d embedding size")

    @property
    def embeddings(self) -> tuple[str, ...]:
        return tuple(f"{part}.embedding" for part in frontend_spec(self.frontend).parts)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.maps + (self.embeddings if self.residual else ())


class Branch(nn.Module):
    """One CNN's map -> 1x1 reduction -> sweeps -> attention pooling (or average pooling without sweeps)."""

    def __init__(self, channels: int, reduce: int, hidden: tuple[int, ...], cell: str) -> None:
        super().__init__()
        self.reduce = reduction(channels, reduce)
        self.sweeps, self.norms, self.width = sweep_layers(reduce, hidden, cell)
        self.pool = AttentionPool(self.width) if hidden else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = run_sweeps(self.reduce(x.float()), self.sweeps, self.norms)
        return self.pool(x) if self.pool is not None else x.mean(dim=(2, 3))


class FusionNet(FrontendHead):
    """Each CNN's crop -> its map -> its branch; both branches and both embeddings -> one unit embedding; `crop` is
    the first CNN's (each reads its own: see `parts`)."""

    config: FusionConfig
    reads_one_crop = False

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend: FrontEndSpec = frontend_spec(config.frontend)
        outputs = self.frontend.outputs
        branches = [Branch(outputs[m][0], config.reduce, config.hidden, config.cell) for m in config.maps]
        self.branches = nn.ModuleList(branches)
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(sum(b.width for b in branches), config.embed_dim)
        if config.residual:
            dims = [outputs[e][0] for e in config.embeddings]
            self.base = nn.Linear(sum(dims), config.embed_dim, bias=False)
            with torch.no_grad():  # start exactly at the first CNN's embedding; the others' start at zero
                self.base.weight.zero_()
                self.base.weight[:, : dims[0]].copy_(torch.eye(config.embed_dim))
                self.out.weight.zero_()
                self.out.bias.zero_()

    @property
    def parts(self) -> tuple[FrontEndSpec, ...]:
        return tuple(frontend_spec(p) for p in self.frontend.parts)

    def example_input(self, batch: int) -> dict[str, torch.Tensor]:
        """Random pixels of each CNN's crop: {front-end: (B, 3, S, S)}."""
        return {p.name: torch.randn(batch, 3, p.crop.size, p.crop.size).clamp(-1, 1) for p in self.parts}

    def example_features(self, batch: int) -> dict[str, torch.Tensor]:
        out = {name: torch.randn(batch, *self.frontend.outputs[name]).relu() for name in self.inputs}
        for name in self.config.embeddings:
            if name in out:
                out[name] = F.normalize(torch.randn_like(out[name]), dim=-1)
        return out

    def forward(self, pixels: dict[str, torch.Tensor]) -> torch.Tensor:
        """{front-end: (B, 3, S, S) crops in [-1, 1], cut as that CNN's crop} -> (B, D) unit embeddings."""
        if not isinstance(pixels, dict):
            raise ModelError(
                f"a {self.frontend.name} fusion head reads one crop per CNN; the photo pipeline cuts one, so it is "
                "scored on joint feature caches (`rnnface eval backbones`)"
            )
        features: dict[str, torch.Tensor] = {}
        for part in self.parts:
            wanted = tuple(n.split(".", 1)[1] for n in self.inputs if n.startswith(f"{part.name}."))
            features |= {f"{part.name}.{k}": v for k, v in run_frontend(part, pixels[part.name], wanted).items()}
        return self.embed_features(features)

    def embed_features(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The head alone: the CNNs' outputs {"<part>.<output>": tensor} -> (B, D) unit embeddings."""
        pooled = torch.cat([b(features[m]) for b, m in zip(self.branches, self.config.maps)], dim=1)
        out = self.out(self.dropout(pooled))
        if self.config.residual:
            out = out + self.base(torch.cat([features[e].float() for e in self.config.embeddings], dim=1))
        return F.normalize(out, dim=-1)


@register_model
def fusion_birnn(**kwargs) -> FusionNet:
    """Fusion: MobileFaceNet's 7x7 and FaceNet's 8x8 maps, each swept by 2-D bidirectional recurrence, residual to
    MobileFaceNet's embedding (reads one crop per CNN: an ablation row, scored on joint feature caches)."""
    for key in ("hidden", "maps"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    return FusionNet(FusionConfig(**kwargs))
