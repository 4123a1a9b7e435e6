"""Typed settings read from `RNNFACE_*` environment variables (command-line options override them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rnnface.errors import ModelError

#: Where LFW sits beside a checkout of this repository (see README: how to get LFW).
DEFAULT_DATA = Path("../shared/data/lfw")
#: The gallery used when neither --gallery nor RNNFACE_GALLERY names one (XDG data home).
def default_gallery(environ: Mapping[str, str] = os.environ) -> str:
    data_home = Path(environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return str(data_home / "rnnface" / "gallery.db")


#: What can run the embedding network: PyTorch, or onnxruntime on the network exported in memory.
RUNTIMES: tuple[str, ...] = ("torch", "onnx")

#: The checkpoint shipped inside the package, once one has been trained (rnnface train).
PACKAGED_MODEL = "default.pt"


@dataclass(frozen=True)
class Settings:
    """Paths rnnface needs; every field has an environment variable of the same name in capitals."""

    data: Path = DEFAULT_DATA  # RNNFACE_DATA: LFW root (holding lfw/ and pairs.txt) or an image tree
    model: Path | None = None  # RNNFACE_MODEL: checkpoint used by embed/verify
    gallery: str = ""  # RNNFACE_GALLERY: gallery path or URI (milvus://host:port/collection); default under XDG_DATA_HOME
    runtime: str = "torch"  # RNNFACE_RUNTIME: what runs the embedding network, torch or onnx (onnxruntime)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        model = environ.get("RNNFACE_MODEL")
        runtime = environ.get("RNNFACE_RUNTIME", "torch")
        if runtime not in RUNTIMES:
            raise ModelError(f"RNNFACE_RUNTIME={runtime!r}: choose one of {', '.join(RUNTIMES)}")
        return cls(
            data=Path(environ.get("RNNFACE_DATA", str(DEFAULT_DATA))),
            model=Path(model) if model else None,
            gallery=environ.get("RNNFACE_GALLERY") or default_gallery(environ),
            runtime=runtime,
        )


def packaged_model() -> Path | None:
    """The checkpoint shipped in the package, or None while none has been trained."""
    path = Path(str(resources.files("rnnface.weights").joinpath(PACKAGED_MODEL)))
    return path if path.is_file() else None


def resolve_model(model: str | os.PathLike | None, settings: Settings | None = None) -> Path:
    """The checkpoint to use: explicit path, else $RNNFACE_MODEL, else the packaged default."""
    if model is not None:
        return Path(model)
    settings = settings or Settings.from_env()
    if settings.model is not None:
        return settings.model
    shipped = packaged_model()
    if shipped is None:
        raise ModelError(
            "no trained model is available: this version of rnnface ships no checkpoint yet, and "
            "random weights would give meaningless answers. Pass --model PATH (or set RNNFACE_MODEL) "
            "to a checkpoint trained with rnnface."
        )
    return shipped
