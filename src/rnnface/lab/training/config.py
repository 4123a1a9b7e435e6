"""The training configuration: one frozen dataclass, loaded from YAML plus `key=value` overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from rnnface.errors import RnnfaceError
from rnnface.io.paths import atomic_output

#: (m1, m2, m3) of the combined margin cos(m1 * theta + m2) - m3 for each named loss.
LOSS_MARGINS: dict[str, tuple[float, float, float]] = {
    "softmax": (1.0, 0.0, 0.0),  # normalised softmax, no margin
    "cosface": (1.0, 0.0, 0.35),
    "arcface": (1.0, 0.5, 0.0),
}


class ConfigError(RnnfaceError):
    """A training config file or override is malformed."""


@dataclass(frozen=True)
class TrainConfig:
    cache: str = "cache/lfw112"  # aligned-face cache made by `rnnface prepare`
    out: str = "runs/default"  # checkpoints, metrics.csv and config.yaml go here
    model: str = "conv_birnn"
    model_args: dict[str, Any] = field(default_factory=lambda: {"img_size": 64})
    also: tuple[str, ...] = ()  # more face caches to train on (e.g. CFP's), their features made the same way
    # Folds whose people are left out of training, in every set (LFW View-2 fold k, CFP split k + 1).
    exclude_folds: tuple[int, ...] = ()
    pairs: str | None = None  # pairs.txt (default: found beside the cache's dataset)
    min_images: int = 2  # people with fewer cached faces are not used as classes
    loss: str = "arcface"  # softmax | cosface | arcface
    margins: tuple[float, float, float] | None = None  # overrides the loss's (m1, m2, m3)
    scale: float = 32.0
    sampler: str = "balanced"  # balanced: P people x K images per batch; uniform: shuffled images
    p: int = 32
    k: int = 4
    augment: bool = True
    optimizer: str = "adamw"  # adamw | sgd (Nesterov)
    lr: float = 2e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    epochs: int = 20
    warmup_epochs: float = 1.0
    grad_clip: float | None = 5.0  # max gradient norm; None disables clipping
    teacher: str | None = None  # distil from a pretrained embedder or an ensemble (see rnnface.lab.data.teachers)
    distill_weight: float = 1.0  # weight of the distillation loss beside the margin loss
    frontal_targets: bool = False  # profile photos learn their person's mean frontal teacher target
    seed: int = 0
    device: str = "cpu"
    amp: bool = True  # bfloat16 autocast, on CUDA only

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    @property
    def resolved_margins(self) -> tuple[float, ...]:
        return tuple(self.margins) if self.margins is not None else LOSS_MARGINS[self.loss]

    def validate(self) -> TrainConfig:
        if self.loss not in LOSS_MARGINS:
            raise ConfigError(f"loss must be one of {sorted(LOSS_MARGINS)}, got {self.loss!r}")
        if self.sampler not in ("balanced", "uniform"):
            raise ConfigError(f"sampler must be 'balanced' or 'uniform', got {self.sampler!r}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if not set(self.exclude_folds) <= set(range(10)):
            raise ConfigError(f"exclude_folds must be folds 0-9, got {self.exclude_folds}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = {f.name for f in fields(TrainConfig)}


def _coerce(data: dict[str, Any]) -> dict[str, Any]:
    unknown = set(data) - _FIELDS
    if unknown:
        raise ConfigError(f"unknown config keys: {', '.join(sorted(unknown))}")
    out = dict(data)
    for key in ("exclude_folds", "margins", "also"):
        if out.get(key) is not None:
            out[key] = tuple(out[key])
    return out


def apply_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Return a new config with `key=value` overrides (values parsed as YAML; `model_args.cell=lstm` nests)."""
    changes: dict[str, Any] = {}
    model_args = dict(config.model_args)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not key=value")
        value = yaml.safe_load(raw)
        if key.startswith("model_args."):
            model_args[key.split(".", 1)[1]] = value
        else:
            changes[key] = value
    changes["model_args"] = model_args
    return replace(config, **_coerce(changes)).validate()


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults, then the YAML file at `path`, then the overrides."""
    config = TrainConfig()
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read config ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
        config = replace(config, **_coerce(data))
    return apply_overrides(config, overrides or [])


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the config as YAML (what `--config` reads back), whole or not at all."""
    data = config.to_dict()
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
    with atomic_output(path, "config") as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
