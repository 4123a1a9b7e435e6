"""timm-style model registry: `@register_model`, `create_model(name, **args)`, `list_models()`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from torch import nn

from rnnface.registry import Registry

_MODELS: Registry[nn.Module] = Registry("model")


def register_model(factory):
    """Register a backbone factory under its function name; duplicates raise ValueError."""
    return _MODELS.register()(factory)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the backbone `name` with config overrides; unknown names raise KeyError."""
    return _MODELS.get(name)(**kwargs)


def list_models() -> list[str]:
    """Registered backbone names."""
    return _MODELS.names()


def model_args(model: nn.Module) -> dict[str, Any]:
    """The config a backbone was built with, as plain values (what a checkpoint stores)."""
    return asdict(model.config)


def model_summary(name: str) -> str:
    """First docstring line of a registered factory."""
    return (_MODELS.get(name).__doc__ or "").strip().splitlines()[0]
