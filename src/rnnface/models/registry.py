"""timm-style model registry: `@register_model`, `create_model(name, **args)`, `list_models()`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

from rnnface.models.base import FaceModel
from rnnface.registry import Registry

_MODELS: Registry[FaceModel] = Registry("model")

F = TypeVar("F", bound=Callable[..., FaceModel])


def register_model(factory: F) -> F:
    """Register a backbone factory under its function name; duplicates raise ValueError."""
    _MODELS.register()(factory)  # returns `factory` itself
    return factory


def create_model(name: str, **kwargs: Any) -> FaceModel:
    """Build the backbone `name` with config overrides; unknown names raise KeyError."""
    return _MODELS.get(name)(**kwargs)


def list_models() -> list[str]:
    """Registered backbone names."""
    return _MODELS.names()


def model_args(model: FaceModel) -> dict[str, Any]:
    """The config a backbone was built with, as plain values (what a checkpoint stores)."""
    return asdict(model.config)


def model_summary(name: str) -> str:
    """First docstring line of a registered factory."""
    return (_MODELS.get(name).__doc__ or "").strip().splitlines()[0]
