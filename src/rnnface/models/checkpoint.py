"""Checkpoints that rebuild their own model: they store the registry name and config beside the weights."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from rnnface.alignment import CropSpec
from rnnface.errors import ModelError
from rnnface.io.paths import atomic_output
from rnnface.models.base import FaceModel
from rnnface.models.frontends import FrontEndSpec
from rnnface.models.registry import create_model, model_args
from rnnface.operating import Calibration
from rnnface.similarity import check_threshold

FORMAT = "rnnface-backbone/1"


@dataclass
class Checkpoint:
    """A loaded model bundle: the backbone with what it needs at inference, its operating points and provenance."""

    model: FaceModel
    name: str
    args: dict[str, Any]
    threshold: float | None = None  # a single threshold deciding "same person", for a model with no calibration
    meta: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None  # its false-accept curve and named points (rnnface.operating)

    @property
    def frontend(self) -> FrontEndSpec:
        """What runs before the trained part (a pretrained CNN, or the empty front-end of a pixel backbone)."""
        return self.model.frontend

    @property
    def crop(self) -> CropSpec:
        """How faces must be cut out for this model (the model says)."""
        return self.model.crop

    @property
    def input_size(self) -> int:
        """Side of the model's input in pixels."""
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
    model: FaceModel,
    name: str,
    threshold: float | None = None,
    meta: dict[str, Any] | None = None,
    calibration: Calibration | None = None,
) -> None:
    """Write `model` (built by `create_model(name, ...)`) atomically to `path`."""
    payload = {
        "format": FORMAT,
        "model": name,
        "model_args": model_args(model),
        "state_dict": model.state_dict(),
        "threshold": threshold,
        "calibration": None if calibration is None else calibration.to_dict(),
        # Plain JSON types only, so weights_only loading accepts it (numpy scalars would not be).
        "meta": json.loads(json.dumps(meta or {}, default=lambda v: v.item() if hasattr(v, "item") else str(v))),
    }
    with atomic_output(path, "checkpoint") as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> Checkpoint:
    """Rebuild the model stored at `path` (weights only: no pickled code is executed).

    Everything read is validated (format, model name and config, front-end, weights and their values, threshold,
    metadata), and the rebuilt model must run on an example input: a bad checkpoint is a one-line ModelError
    naming the file, never a traceback.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    payload = _read(path, device)
    name, args, meta = payload.get("model"), payload.get("model_args"), payload.get("meta", {})
    weights = payload.get("state_dict")
    if not isinstance(name, str) or not isinstance(args, dict) or not isinstance(weights, dict):
        raise ModelError(f"{path}: malformed checkpoint (model name, model_args and state_dict are required)")
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: malformed checkpoint (meta must be a mapping, got {type(meta).__name__})")
    threshold, calibration = payload.get("threshold"), payload.get("calibration")
    try:
        threshold = None if threshold is None else check_threshold(threshold, "its threshold")
        calibration = None if calibration is None else Calibration.from_dict(calibration)
    except ModelError as exc:
        raise ModelError(f"{path}: malformed checkpoint ({exc})") from None
    try:
        model = create_model(name, **args)
    except Exception as exc:  # an unknown name, front-end or config value
        raise ModelError(f"{path}: checkpoint of a model this rnnface cannot build ({first_line(exc)})") from None
    _check_frontend(path, model, args)
    _load_weights(path, model, weights)
    try:
        model.eval()
        with torch.no_grad():
            model.embed_features(model.example_features(1))  # the stored part; the front-end is not stored
    except Exception as exc:  # the stored model does not run
        raise ModelError(
            f"{path}: checkpoint does not match its model ({type(exc).__name__}: {first_line(exc)})"
        ) from None
    return Checkpoint(model=model, name=name, args=args, threshold=threshold, meta=meta, calibration=calibration)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters (for a one-line error)."""
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _read(path: Path, device: str) -> dict:
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):  # torch advises loading it unsafely: not advice for our users
            raise ModelError(
                f"{path}: not a checkpoint rnnface can load safely (it holds Python objects besides weights, and "
                "loading it would run their code)"
            ) from None
        raise ModelError(f"{path}: not a readable checkpoint (damaged, or not a checkpoint)") from None
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path}: not an rnnface backbone checkpoint (expected format {FORMAT})")
    return payload


def _check_frontend(path: Path, model: FaceModel, args: dict) -> None:
    """A hybrid's front-end must be the very graph it was trained on (its hash is in the checkpoint)."""
    spec = model.frontend
    trained = args.get("frontend_sha256", "")
    if trained != spec.sha256:
        raise ModelError(
            f"{path}: trained on a {spec.name} graph with SHA-256 {str(trained)[:16]}…; the installed {spec.package} "
            f"has {spec.sha256[:16]}…"
        )


def _load_weights(path: Path, model: FaceModel, weights: dict) -> None:
    """Load `weights` into `model`, saying exactly what does not fit, and refuse NaN or infinite values."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    wrong = [
        f"{k} ({tuple(weights[k].shape)} stored, {tuple(v.shape)} expected)"
        for k, v in expected.items()
        if k in weights and (not isinstance(weights[k], torch.Tensor) or weights[k].shape != v.shape)
    ]
    problems = [
        f"{label}: {', '.join(items[:3])}{f' and {len(items) - 3} more' if len(items) > 3 else ''}"
        for label, items in (("missing weights", missing), ("unexpected weights", unexpected), ("wrong shapes", wrong))
        if items
    ]
    if problems:
        raise ModelError(f"{path}: checkpoint does not match its model ({'; '.join(problems)})")
    bad = [k for k, t in weights.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ModelError(f"{path}: weights hold NaN or infinite values ({', '.join(bad[:3])})")
    model.load_state_dict(weights)


def set_calibration(
    path: str | os.PathLike, calibration: Calibration, meta_update: dict[str, Any] | None = None
) -> None:
    """Store a calibration (it replaces any single threshold) and its provenance in an existing checkpoint."""
    ckpt = load_checkpoint(path)
    meta = {**ckpt.meta, **(meta_update or {})}
    save_checkpoint(path, ckpt.model, ckpt.name, meta=meta, calibration=calibration)
