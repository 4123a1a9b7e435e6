"""The presentation-attack detector: texture statistics of a pretrained face CNN, integrated over frames by a
GRU/LSTM.

A printed photo held to a camera keeps its paper texture (print grain, lost fine detail) and moves rigidly from
frame to frame; a live face does neither. Each 64x64 grey eye-aligned crop goes through the first three
convolutions of FaceNet (pretrained on VGGFace2, frozen, shared with the embedder): the mean and spread of each
of their 64 maps describe its local texture whatever the light (NUAA's training faces are lit unlike its test
faces: a CNN trained from scratch on its pixels learned the light, not the paper). A small trainable layer maps
those statistics to frame features; the recurrent cell reads the features and how they change. Step t's logit
("live" > 0) depends on frames up to t, so one model scores a single photo (T = 1) and any longer sequence.
`cell="none"` is the non-recurrent ablation: per-frame logits only.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnface.errors import ModelError
from rnnface.io.paths import atomic_output
from rnnface.models.layers import make_rnn

FORMAT = "rnnface-liveness/2"
#: Where our detector (YuNet) finds the two eyes of a NUAA normalized face (x, y in 64x64 pixels): the median
#: over NUAA training crops (`rnnface.lab.data.nuaa.measure_eyes`). `rnnface.liveness.crop` puts a detected
#: face's eyes there, so a camera frame is cut as NUAA cut its faces.
NUAA_EYES = ((14.15, 16.33), (48.8, 16.85))


@dataclass
class LivenessConfig:
    cell: str = "gru"  # gru | lstm | rnn | none (per-frame scores, no recurrence)
    features: int = 64  # per-frame feature size
    hidden: int = 32  # recurrent state size
    size: int = 64  # crop side in pixels
    eyes: tuple[tuple[float, float], tuple[float, float]] = field(default=NUAA_EYES)  # crop geometry
    frontends: tuple[str, ...] = ("texture",)  # what each frame vector holds (`rnnface.liveness.frontends`)

    def __post_init__(self) -> None:
        self.eyes = tuple(tuple(float(v) for v in e) for e in self.eyes)  # type: ignore[assignment]
        self.frontends = tuple(self.frontends)

    @property
    def reads_crops_only(self) -> bool:
        """The model reads nothing but the grey crop (its frame vectors can be computed from crops alone)."""
        from rnnface.liveness.frontends import reads_crops_only

        return reads_crops_only(self.frontends)


class LivenessNet(nn.Module):
    """(B, T, D) frame vectors of its front-ends -> (B, T) live logits, step t from frames 0..t (`forward` takes the
    texture model's (B, T, 1, S, S) grey crops in [0, 1]).

    The frozen front-ends are not submodules: a checkpoint stores only what was trained."""

    def __init__(self, config: LivenessConfig | None = None) -> None:
        from rnnface.liveness.frontends import frontend_dim

        super().__init__()
        self.config = config = config or LivenessConfig()
        dim = frontend_dim(config.frontends)
        self.embed = nn.Sequential(nn.BatchNorm1d(dim), nn.Dropout(0.2), nn.Linear(dim, config.features))
        self.frame_head = nn.Linear(config.features, 1)
        self.rnn = None if config.cell == "none" else make_rnn(config.cell, 2 * config.features, config.hidden)
        self.rnn_head = None if self.rnn is None else nn.Linear(config.hidden, 1)

    @property
    def recurrent(self) -> bool:
        return self.rnn is not None

    def stats(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) crops -> (N, D) frame vectors of its crop front-ends (frozen: no gradients)."""
        from rnnface.liveness.frontends import crop_features

        with torch.no_grad():
            return crop_features(self.config.frontends, frames)

    def integrate(self, stats: torch.Tensor) -> torch.Tensor:
        """(B, T, D) frame vectors -> (B, T) logits: each frame's own plus, when recurrent, what the cell
        saw so far (the frames' features and their change from one frame to the next)."""
        b, t = stats.shape[:2]
        features = self.embed(stats.reshape(b * t, -1)).reshape(b, t, -1)
        logits = self.frame_head(features).squeeze(-1)
        if self.rnn is None:
            return logits
        motion = torch.cat([torch.zeros_like(features[:, :1]), features[:, 1:] - features[:, :-1]], dim=1)
        states, _ = self.rnn(torch.cat([features, motion], dim=-1))
        assert self.rnn_head is not None  # made with the cell
        return logits + self.rnn_head(states).squeeze(-1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[:2]
        return self.integrate(self.stats(frames.flatten(0, 1)).reshape(b, t, -1))


@dataclass
class LivenessModel:
    """A loaded detector, its decision thresholds (on the live probability, by window length) and provenance."""

    net: LivenessNet
    thresholds: dict[int, float]
    meta: dict[str, Any]

    @property
    def config(self) -> LivenessConfig:
        return self.net.config


def save_liveness(
    path: str | os.PathLike, net: LivenessNet, thresholds: dict[int, float], meta: dict[str, Any]
) -> None:
    """Write a checkpoint that rebuilds its network alone (config beside the weights)."""
    blob = {
        "format": FORMAT,
        "config": asdict(net.config),
        "state_dict": net.state_dict(),
        "thresholds": {int(w): float(t) for w, t in thresholds.items()},
        "meta": meta,
    }
    with atomic_output(path) as tmp:
        torch.save(blob, tmp)


def load_liveness(path: str | os.PathLike) -> LivenessModel:
    """Rebuild a saved detector (eval mode); a missing, foreign or malformed file is one ModelError line."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such liveness model")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise ModelError(f"{path}: not a liveness model ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelError(f"{path}: not a liveness model (format {FORMAT} expected)")
    try:
        config = dict(blob["config"])
        if config.pop("texture_size", 160) != 160:  # older checkpoints name FaceNet's input side; it is fixed
            raise ValueError("texture_size other than FaceNet's 160")
        net = LivenessNet(LivenessConfig(**config))
        net.load_state_dict(blob["state_dict"])
        thresholds = {int(w): float(t) for w, t in blob["thresholds"].items()}
    except (TypeError, KeyError, RuntimeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{path}: malformed liveness model: {str(exc).splitlines()[0]}") from None
    if 1 not in thresholds:
        raise ModelError(f"{path}: malformed liveness model: no single-frame threshold")
    return LivenessModel(net.eval(), thresholds, dict(blob.get("meta", {})))
