"""Checkpoints that rebuild their own model: they store the registry name and config beside the weights."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnface.alignment import CropSpec
from rnnface.errors import ModelError
from rnnface.io.paths import atomic_output
from rnnface.models.frontends import FrontEndSpec
from rnnface.models.registry import create_model, example_input, model_args
from rnnface.similarity import check_threshold

FORMAT = "rnnface-backbone/1"


@dataclass
class Checkpoint:
    """A loaded model bundle: the backbone with what it needs at inference, its calibrated threshold and provenance."""

    model: nn.Module
    name: str
    args: dict[str, Any]
    threshold: float | None = None  # cosine similarity deciding "same person" in verify
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def frontend(self) -> FrontEndSpec | None:
        """The pretrained front-end a hybrid backbone reads (None: the backbone sees pixels)."""
        return self.model.frontend

    @property
    def crop(self) -> CropSpec:
        """How faces must be cut out for this model (the model says)."""
        return self.model.crop

    @property
    def input_size(self) -> int:
        """Side of the model's input in pixels (a hybrid's front-end input)."""
        return self.model.input_size

    @property
    def embed_dim(self) -> int:
        return int(self.model.config.embed_dim)

    @cached_property
    def model_id(self) -> str:
        """Name and version of the embedding space: registry name, cell, dimension and a hash of the weights.

        Embeddings are comparable only under the same id; a new threshold does not change it.
        """
        digest = hashlib.sha256()
        for key, tensor in sorted(self.model.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digest.update(str(self.args.get("frontend_sha256", "")).encode())
        cell = self.args.get("cell", "")
        return f"{self.name}-{cell}-d{self.args.get('embed_dim', '')}@{digest.hexdigest()[:12]}"


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    name: str,
    threshold: float | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write `model` (built by `create_model(name, ...)`) atomically to `path`."""
    payload = {
        "format": FORMAT,
        "model": name,
        "model_args": model_args(model),
        "state_dict": model.state_dict(),
        "threshold": threshold,
        # Plain JSON types only, so weights_only loading accepts it (numpy scalars would not be).
        "meta": json.loads(json.dumps(meta or {}, default=lambda v: v.item() if hasattr(v, "item") else str(v))),
    }
    with atomic_output(path, "checkpoint") as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> Checkpoint:
    """Rebuild the model stored at `path` (weights only: no pickled code is executed).

    Everything read is validated (format, model name and config, weights, threshold, metadata), and the
    rebuilt model must run on an example input: a bad checkpoint is a one-line ModelError, never a traceback.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; its multi-line advice is not for our users
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}{': ' + first if first else ''})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path}: not an rnnface backbone checkpoint (expected format {FORMAT})")
    name, args, meta = payload.get("model"), payload.get("model_args"), payload.get("meta", {})
    if not isinstance(name, str) or not isinstance(args, dict) or not isinstance(payload.get("state_dict"), dict):
        raise ModelError(f"{path}: malformed checkpoint (model name, model_args and state_dict are required)")
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: malformed checkpoint (meta must be a mapping, got {type(meta).__name__})")
    threshold = payload.get("threshold")
    if threshold is not None:
        try:
            threshold = check_threshold(threshold, "its threshold")
        except ModelError as exc:
            raise ModelError(f"{path}: malformed checkpoint ({exc})") from None
    try:
        model = create_model(name, **args)
        model.load_state_dict(payload["state_dict"])
        model.eval()
        with torch.no_grad():
            model(example_input(model, 1))
    except Exception as exc:  # any failure to rebuild or run the stored model
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(f"{path}: checkpoint does not match its model ({type(exc).__name__}: {first})") from None
    return Checkpoint(model=model, name=name, args=args, threshold=threshold, meta=meta)


def set_threshold(path: str | os.PathLike, threshold: float, meta_update: dict[str, Any] | None = None) -> None:
    """Store a calibrated verification threshold (and provenance) in an existing checkpoint."""
    ckpt = load_checkpoint(path)
    save_checkpoint(path, ckpt.model, ckpt.name, threshold=float(threshold), meta={**ckpt.meta, **(meta_update or {})})
