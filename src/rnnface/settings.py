"""Typed settings from `RNNFACE_*` environment variables, for the library, the CLI and the service alike.

One pydantic-settings object (as immich keeps one for its whole process): command-line options
override it, and a malformed variable is one `SettingsError` line naming it. Read on first use,
never at import.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rnnface.errors import ModelError, RnnfaceError, ThresholdError
from rnnface.operating import AUTHENTICATE_DEFAULT, THRESHOLD_HELP, parse_threshold

#: Where LFW and CFP sit beside a checkout of this repository (see README: how to get them).
DEFAULT_DATA = Path("../shared/data/lfw")
DEFAULT_CFP = Path("../shared/data/cfp")
DEFAULT_NUAA = Path("../shared/data/nuaa")
DEFAULT_PEERS = Path("../shared/models")
#: What can run the embedding network: PyTorch, onnxruntime on the whole network exported to ONNX (float32, or int8
#: with the front-end quantized), or auto (onnx on a CPU when onnxruntime is installed, else torch).
RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnx", "int8")
#: Where the embedding network runs: auto is cuda when PyTorch sees a GPU, else cpu.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: The checkpoint shipped inside the package.
PACKAGED_MODEL = "default.pt"
#: The checkpoints shipped in the package, by the name `--model` takes: the default, and the FaceNet hybrid that was
#: the default before it (for galleries made with it).
SHIPPED_MODELS = {"default": PACKAGED_MODEL, "facenet-hybrid": "facenet-hybrid.pt"}


class SettingsError(RnnfaceError):
    """An RNNFACE_* setting is malformed."""


def default_gallery() -> str:
    """The gallery used when neither --gallery nor RNNFACE_GALLERY names one (under XDG_DATA_HOME)."""
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return str(data_home / "rnnface" / "gallery.db")


class Settings(BaseSettings):
    """Everything rnnface can be told; each field is the variable RNNFACE_<FIELD>, e.g. RNNFACE_API_KEY=..."""

    model_config = SettingsConfigDict(env_prefix="RNNFACE_", frozen=True, extra="ignore")

    # -- the pipeline -------------------------------------------------------------------------------
    data: Path = Field(
        DEFAULT_DATA, description="LFW root (holding lfw/ and pairs.txt) or an identity-folder image tree."
    )
    cfp: Path = Field(DEFAULT_CFP, description="CFP root (holding Data/ and Protocol/), for `rnnface eval cfp`.")
    nuaa: Path = Field(DEFAULT_NUAA, description="NUAA Photograph Imposter Database root, for `rnnface eval liveness`.")
    liveness_peers: Path = Field(
        DEFAULT_PEERS, description="The pretrained liveness peers' files, for `rnnface eval liveness --other`."
    )
    model: Path | None = Field(
        None, description="Checkpoint used by embed, verify, identify (default: the shipped one)."
    )
    gallery: str = Field(
        default_factory=default_gallery, description="Gallery path, milvus:FILE.db or milvus://HOST:PORT/COLLECTION."
    )
    facenet_runtime: Literal["auto", "opencv", "onnx"] = Field(
        "auto",
        description="What runs FaceNet (the hybrid's front-end and the face check): opencv, onnx (onnxruntime, "
        "batched), or auto (onnx when installed).",
    )
    runtime: Literal["auto", "torch", "onnx", "int8"] = Field(
        "auto",
        description="What runs the embedding network: torch, onnx (onnxruntime, the whole model exported once into "
        "the user cache), int8 (the same with FaceNet quantized), or auto (onnx on a CPU when installed, else torch).",
    )
    device: str = Field(
        "auto",
        description="Where the embedding network runs: cpu, cuda (or cuda:N), or auto (cuda when there is a GPU).",
    )
    pooling: str = Field(
        "auto", description="Template pooling at enrollment: auto (shipped aggregator), mean, or a checkpoint path."
    )
    min_score: float | None = Field(
        None, ge=0, le=1, description="Lowest detector score kept as a face (default: the detector's, 0.8 for YuNet)."
    )
    min_face: int | None = Field(
        None, ge=1, description="Smallest face kept, in pixels of its box's shorter side (default: 20)."
    )
    authenticate_challenge: bool = Field(
        True,
        description="`authenticate` requires the head-turn challenge (a replayed photo cannot turn its head); "
        "off, the passive liveness score alone decides, which is weaker: a replayed clip of the person can pass.",
    )
    challenge_turns: int = Field(
        2,
        ge=0,
        le=3,  # the page films 9 frames a turn: 3 fit in max_frames
        description="Head turns the service's challenge asks for, each to a side it draws at random "
        "(POST /api/v1/challenge; /authenticate then needs its token): a replayed clip of the person turning passes "
        "1 time in 2**n. 0: any head turn and no token, which is weaker: such a replay always passes.",
    )
    challenge_ttl_s: float = Field(
        60.0, gt=0, le=3600, description="Seconds a challenge's token stays valid (each token is good for one try)."
    )
    authenticate_threshold: str = Field(
        AUTHENTICATE_DEFAULT,
        description=f"The loosest identity threshold `authenticate` decides at: {THRESHOLD_HELP}. A request or "
        "--threshold may ask for a stricter one, never a looser one.",
    )

    # -- the HTTP service ---------------------------------------------------------------------------
    api_key: SecretStr | None = Field(
        None, description="Key for write routes (X-API-Key header); unset: writes are refused."
    )
    open_reads: bool = Field(
        True, description="Read routes (detect, embed, verify, identify, people) work without the key."
    )
    max_upload_bytes: int = Field(10 * 2**20, gt=0, description="Largest accepted image file.")
    max_images: int = Field(8, gt=0, description="Most images in one enrollment or clustering request.")
    max_frames: int = Field(32, gt=0, description="Most frames in one liveness or authentication request.")
    cluster_runs: int = Field(
        8, gt=0, description="Clustering runs open at once (a selection sent over several requests, grouped as one)."
    )
    cluster_run_faces: int = Field(10_000, gt=0, description="Most faces one clustering run holds (~2 KB each).")
    cluster_run_idle_s: float = Field(600.0, gt=0, description="A clustering run left idle this long is dropped.")
    max_frame_bytes: int = Field(2 * 2**20, gt=0, description="Largest accepted frame file of a clip.")
    max_pixels: int = Field(40_000_000, gt=0, description="Largest accepted image, in pixels.")
    max_decoded_bytes: int = Field(
        500_000_000, gt=0, description="Most memory one image may take to decode (estimated from its header)."
    )
    max_concurrent_images: int = Field(
        2,
        gt=0,
        description="Images decoded and being worked on at once; others wait (memory: this x max_decoded_bytes).",
    )
    max_connections: int = Field(32, gt=0, description="Connections each server process serves at once; more get 503.")
    request_timeout_s: float = Field(30.0, gt=0, description="Longest a read request may compute before a 504.")
    body_timeout_s: float = Field(
        10.0, gt=0, description="Longest a whole request body may take to arrive before a 408."
    )

    @field_validator("authenticate_threshold")
    @classmethod
    def _a_threshold(cls, value: str) -> str:
        try:
            return str(parse_threshold(value))
        except ThresholdError as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """The settings from the environment (`overrides` win); a malformed variable is one SettingsError line."""
        try:
            values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{cls.model_config['env_prefix']}{'_'.join(map(str, e['loc'])).upper()}={e.get('input')!r}: {e['msg']}"
                for e in exc.errors()
            )
            raise SettingsError(f"malformed setting: {problems}") from None


def packaged_model() -> Path | None:
    """The checkpoint shipped in the package as the default, or None when the package was built without one."""
    return shipped_model("default")


def shipped_model(name: str) -> Path | None:
    """The checkpoint shipped in the package under `name` (see `SHIPPED_MODELS`), or None."""
    file = SHIPPED_MODELS.get(name)
    path = None if file is None else Path(str(resources.files("rnnface.weights").joinpath(file)))
    return path if path is not None and path.is_file() else None


def resolve_model(model: str | os.PathLike | None, settings: Settings | None = None) -> Path:
    """The checkpoint to use: `model` (a path, or the name of a shipped one), else $RNNFACE_MODEL (likewise), else
    the packaged default."""
    chosen = model if model is not None else (settings or Settings.from_env()).model
    if chosen is not None:
        named = None if Path(chosen).exists() else shipped_model(str(chosen))
        return named or Path(chosen)
    shipped = packaged_model()
    if shipped is None:
        raise ModelError(
            "no trained model is available: this installation ships no checkpoint, and random weights would give "
            "meaningless answers. Pass --model PATH (or set RNNFACE_MODEL) to a checkpoint trained with rnnface."
        )
    return shipped
